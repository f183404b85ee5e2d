#include "host_costs.h"

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "mk/channel.h"
#include "mk/message_codec.h"
#include "pinned_threads.h"
#include "stats.h"

namespace mk::bench {
namespace {

// The size of a small protocol message: the envelope and a few words of header and op.
constexpr std::size_t kPayload = kEnvelopeSize + 32;
// Messages per timed batch of a stream.
constexpr std::size_t kBatch = 1024;

/// Median round trip over `rounds` ping-pongs between the two cores, or 0 on failure.
double rtt_ns(std::span<const CoreId> cores, std::size_t rounds) {
  auto there = make_channel(ChannelKind::urpc);
  auto back = make_channel(ChannelKind::urpc);
  if (!there || !back) return 0;
  std::vector<std::byte> payload(kPayload, std::byte{0x5a});
  std::vector<double> samples;
  samples.reserve(rounds);
  run_pinned(cores, [&](std::size_t i) {
    auto ignore = [](const MessageView&) {};
    if (i == 1) {
      auto& rx = *there->receiver;
      auto& tx = *back->sender;
      auto bounce = [&tx](const MessageView& m) {
        while (tx.try_send(m.type, m.payload) != SendStatus::ok) {
        }
      };
      for (std::size_t n = 0; n < rounds;)
        n += rx.poll(bounce, 1);
      return;
    }
    auto& tx = *there->sender;
    auto& rx = *back->receiver;
    for (std::size_t n = 0; n < rounds; ++n) {
      const auto t0 = Clock::now();
      while (tx.try_send(1, payload) != SendStatus::ok) {
      }
      while (rx.poll(ignore, 1) == 0) {
      }
      samples.push_back(ns_between(t0, Clock::now()));
    }
  });
  return median(samples);
}

/// ns per message of `count` messages streamed from the second core to the first: the median
/// over batches of kBatch messages as the receiver sees them, so that a batch in which either
/// side lost its CPU counts as one outlier. 0 on failure.
double stream_ns(std::span<const CoreId> cores, std::size_t count) {
  auto channel = make_channel(ChannelKind::urpc);
  if (!channel) return 0;
  std::vector<std::byte> payload(kPayload, std::byte{0x5a});
  std::vector<double> batches;
  batches.reserve(count / kBatch + 1);
  run_pinned(cores, [&](std::size_t i) {
    if (i == 0) {
      std::size_t received = 0;
      auto count_one = [&received](const MessageView&) { ++received; };
      auto t0 = Clock::now();
      std::size_t at_t0 = 0;
      while (received < count) {
        channel->receiver->poll(count_one, kBatch);
        if (received - at_t0 >= kBatch) {
          const auto t1 = Clock::now();
          batches.push_back(ns_between(t0, t1) / static_cast<double>(received - at_t0));
          t0 = t1;
          at_t0 = received;
        }
      }
      return;
    }
    for (std::size_t sent = 0; sent < count;) {
      if (channel->sender->try_send(1, payload) == SendStatus::ok) ++sent;
    }
  });
  return median(batches);
}

}  // namespace

std::optional<HostCosts> measure_host_costs(const Skb& skb, bool quick) {
  const auto& usable = skb.usable_cores();
  if (usable.size() < 2) {
    fmt::print(stderr, "mk-bench: one usable core; no message costs can be measured here\n");
    return std::nullopt;
  }
  const std::vector<CoreId> cores = {usable[0], usable[1]};
  const std::size_t repetitions = quick ? 3 : 5;
  std::vector<double> rtts, streams;
  for (std::size_t r = 0; r < repetitions; ++r) {
    rtts.push_back(rtt_ns(cores, quick ? 10'000 : 50'000));
    streams.push_back(stream_ns(cores, quick ? 200'000 : 1'000'000));
  }
  HostCosts host{median(rtts), median(streams)};
  if (host.rtt_ns <= 0 || host.per_message_ns <= 0) {
    fmt::print(stderr, "mk-bench: a urpc channel could not be made to measure message costs\n");
    return std::nullopt;
  }
  return host;
}

SimCosts sim_costs_from(const HostCosts& host) {
  SimCosts costs;
  auto ns = [](double value) {
    return std::chrono::nanoseconds(static_cast<std::int64_t>(value + 0.5));
  };
  costs.one_way_base = ns(host.rtt_ns / 2);
  costs.send = ns(host.per_message_ns);
  costs.receive = ns(host.per_message_ns);
  return costs;
}

std::string describe(const SimCosts& costs, bool measured) {
  return fmt::format(
      "{}: one-way latency {} ns at SKB distance 10 (scaled by distance), send {} ns and "
      "receive {} ns per message, {} ns per kernel turn, jitter up to {} ns",
      measured ? "costs measured on this machine by a urpc channel (one-way = round trip / 2; "
                 "send = receive = ns per message of a one-way stream); turn and jitter are the "
                 "simulator's defaults"
               : "the simulator's default costs (nothing could be measured here)",
      costs.one_way_base.count(), costs.send.count(), costs.receive.count(), costs.turn.count(),
      costs.jitter.count());
}

}  // namespace mk::bench
