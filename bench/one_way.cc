// One-way throughput of a channel between two pinned threads.
#include "one_way.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

namespace mk::bench {
namespace {

// Where the consumer's checksum goes, so that its reads of the payload stay in the program.
volatile std::uint64_t payload_sink = 0;

}  // namespace

double one_way_mps(ChannelKind kind, std::size_t payload_size, const CorePair& cores,
                   std::uint64_t count, std::size_t batch) {
  auto channel = make_channel(kind);
  if (!channel) {
    fmt::print(stderr, "mk-bench: {}\n", channel.error().describe());
    return 0.0;
  }
  std::vector<std::vector<std::byte>> payloads(batch, std::vector<std::byte>(payload_size));
  std::vector<OutgoingMessage> messages;
  for (std::size_t i = 0; i < batch; ++i) {
    payloads[i][0] = static_cast<std::byte>(i);
    messages.push_back({1, payloads[i]});
  }
  std::chrono::steady_clock::time_point start, end;
  std::uint64_t checksum = 0;
  run_pair(
      cores,
      [&] {
        ChannelReceiver& rx = *channel->receiver;
        std::uint64_t received = 0;
        // Reads the payload, as a real consumer would.
        auto consume = [&](const MessageView& message) {
          checksum += std::to_integer<std::uint64_t>(message.payload[0]);
          ++received;
        };
        while (received < count) {
          if (rx.poll(consume, batch) == 0) cpu_relax();
        }
        end = std::chrono::steady_clock::now();
      },
      [&] {
        ChannelSender& tx = *channel->sender;
        start = std::chrono::steady_clock::now();
        std::uint64_t sent = 0;
        while (sent < count) {
          if (batch == 1) {
            if (tx.try_send(1, payloads[0]) == SendStatus::ok) {
              ++sent;
            } else {
              cpu_relax();
            }
          } else {
            const std::size_t n = std::min<std::uint64_t>(batch, count - sent);
            const std::size_t done = tx.try_send_batch(std::span(messages).first(n));
            sent += done;
            if (done == 0) cpu_relax();
          }
        }
      });
  payload_sink = checksum;
  const double seconds = std::chrono::duration<double>(end - start).count();
  return static_cast<double>(count) / seconds / 1e6;
}

}  // namespace mk::bench
