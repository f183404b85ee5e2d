// Millions of messages between two pinned threads through each cross-thread kind, across
// many wrap-arounds of a small ring: each arrives once, in order, with its bytes intact.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "channel_test_support.h"
#include "mk/channel.h"
#include "mk/slot_format.h"
#include "skb/host_line_size.h"
#include "test_scale.h"
#include "transport/channel_options.h"

namespace mk {
namespace {

using test::fill_pattern;
using test::matches_pattern;

/// What the receiving thread saw.
struct StreamCheck {
  std::uint64_t delivered = 0;
  std::uint64_t corrupt = 0;             ///< Wrong type, length or bytes.
  std::uint64_t first_bad = UINT64_MAX;  ///< Sequence of the first corrupt message.
  bool closed_after_all = false;
};

/// Sends `count` messages whose lengths come from `length_of(sequence)`, in batches of
/// `batch` (1: try_send), on a thread pinned to one CPU while another thread pinned to a
/// second CPU polls up to `poll_max` at a time and checks each message against its sequence.
template <class LengthOf>
StreamCheck stream(ChannelKind kind, std::size_t slots, std::uint64_t count, LengthOf length_of,
                   std::size_t batch, std::size_t poll_max) {
  auto ends = make_channel(kind, {.slots = slots});
  EXPECT_TRUE(ends.ok()) << ends.error().describe();
  if (!ends.ok()) return {};
  StreamCheck check;

  std::thread receiver([&, rx = std::move(ends->receiver)] {
    test::pin_to_nth_cpu(0);
    std::uint64_t expected = 0;
    auto on_message = [&](const MessageView& message) {
      const std::size_t length = length_of(expected);
      if (message.type != static_cast<MessageType>(expected) ||
          !matches_pattern(message.payload, expected, length)) {
        if (check.corrupt++ == 0) check.first_bad = expected;
      }
      ++expected;
    };
    while (!rx->closed()) {
      // Yield when idle: with more threads than cores the sender needs this CPU.
      if (rx->poll(on_message, poll_max) == 0) std::this_thread::yield();
    }
    check.delivered = expected;
    check.closed_after_all = !rx->has_message();
  });

  std::thread sender([&, tx = std::move(ends->sender)] {
    test::pin_to_nth_cpu(1);
    std::vector<std::vector<std::byte>> payloads(batch);
    std::vector<OutgoingMessage> messages(batch);
    std::uint64_t sequence = 0;
    while (sequence < count) {
      const std::size_t n = std::min<std::uint64_t>(batch, count - sequence);
      for (std::size_t i = 0; i < n; ++i) {
        payloads[i].resize(length_of(sequence + i));
        fill_pattern(payloads[i], sequence + i);
        messages[i] = {static_cast<MessageType>(sequence + i), payloads[i]};
      }
      std::size_t done = 0;
      while (done < n) {
        const std::size_t sent =
            batch == 1 ? (tx->try_send(messages[0].type, messages[0].payload) == SendStatus::ok)
                       : tx->try_send_batch(std::span(messages).subspan(done, n - done));
        done += sent;
        if (sent == 0) std::this_thread::yield();
      }
      sequence += n;
    }
    tx->close();
  });

  sender.join();
  receiver.join();
  return check;
}

void expect_all_intact(const StreamCheck& check, std::uint64_t count) {
  EXPECT_EQ(check.delivered, count);
  EXPECT_EQ(check.corrupt, 0u) << "first corrupt message: " << check.first_bad;
  EXPECT_TRUE(check.closed_after_all);
}

std::size_t payload_per_slot() {
  return detail::host_line_size() - transport::kHeaderSize;
}

/// The smallest ring the options allow (64 slots on 64-byte lines): the most laps per message.
std::size_t small_ring() {
  return transport::min_slots(detail::host_line_size());
}

class ChannelStream : public ::testing::TestWithParam<ChannelKind> {};

TEST_P(ChannelStream, MillionsOfOneSlotMessagesArriveOnceInOrderIntact) {
  const std::uint64_t count = test::scaled(3'000'000);
  const std::size_t per_slot = payload_per_slot();
  // Tens of thousands of laps, so every slot is reused across many epochs.
  auto check = stream(
      GetParam(), small_ring(), count, [per_slot](std::uint64_t s) { return s % (per_slot + 1); },
      1, 1);
  expect_all_intact(check, count);
}

TEST_P(ChannelStream, BatchedSendAndReceiveKeepOrderAndContents) {
  const std::uint64_t count = test::scaled(3'000'000);
  const std::size_t per_slot = payload_per_slot();
  auto check = stream(
      GetParam(), small_ring(), count,
      [per_slot](std::uint64_t s) { return (s * 7) % (per_slot + 1); }, 16, 32);
  expect_all_intact(check, count);
}

TEST_P(ChannelStream, EverySizeUpToTheMaximumInterleavedWithOneSlotMessages) {
  // Message 2k has size k % kMaxPayload + 1 (every size in each round), message 2k+1 fits one
  // slot; in the smallest ring the large ones straddle the ring's end at every offset.
  const std::uint64_t rounds = std::max<std::uint64_t>(1, test::scaled(30));
  const std::uint64_t count = rounds * 2 * kMaxPayload;
  const std::size_t per_slot = payload_per_slot();
  auto length_of = [per_slot](std::uint64_t s) -> std::size_t {
    return s % 2 == 0 ? (s / 2) % kMaxPayload + 1 : (s / 2) % (per_slot + 1);
  };
  for (std::size_t batch : {std::size_t{1}, std::size_t{8}}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    expect_all_intact(stream(GetParam(), small_ring(), count, length_of, batch, batch), count);
  }
}

INSTANTIATE_TEST_SUITE_P(CrossThread, ChannelStream, ::testing::ValuesIn(test::kCrossThreadKinds),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace mk
