// urpc's ends as their own types (mk/urpc.h): make_urpc_channel, and poll_each beside the
// virtual poll, on one thread and across two.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "channel_test_support.h"
#include "mk/channel.h"
#include "mk/urpc.h"

namespace mk {
namespace {

using test::fill_pattern;
using test::matches_pattern;

SendStatus send(UrpcSender& sender, std::uint64_t sequence, std::size_t length) {
  std::vector<std::byte> payload(length);
  fill_pattern(payload, sequence);
  return sender.try_send(static_cast<MessageType>(sequence), payload);
}

/// The length of message `sequence` in the mixes below: runs of 8-byte messages, lengths that
/// pack behind sub-headers, empty ones, and messages of several slots up to the largest.
std::size_t mixed_length(std::uint64_t sequence) {
  switch (sequence % 11) {
    case 0:
      return kMaxPayload;
    case 1:
      return 0;
    case 2:
    case 3:
      return 12;
    case 4:
      return 200 + sequence % 300;
    default:
      return 8;
  }
}

TEST(UrpcEnds, BadOptionsAreRefusedAsMakeChannelRefusesThem) {
  const ChannelOptions bad{.slots = 100};
  auto typed = make_urpc_channel(bad);
  auto virtual_ends = make_channel(ChannelKind::urpc, bad);
  ASSERT_FALSE(typed.ok());
  ASSERT_FALSE(virtual_ends.ok());
  EXPECT_EQ(typed.error().code, Errc::invalid_argument);
  EXPECT_EQ(typed.error().message, virtual_ends.error().message);
}

// poll_each and the virtual poll take turns on one receiver: they share its position, so every
// message arrives once, in order and intact, whichever of them takes it.
TEST(UrpcEnds, PollEachAndPollTakeTurnsWithoutLosingOrRepeatingAMessage) {
  auto ends = make_urpc_channel({.slots = 256});
  ASSERT_TRUE(ends.ok()) << ends.error().describe();
  UrpcSender& sender = *ends->sender;
  UrpcReceiver& receiver = *ends->receiver;
  ChannelReceiver& as_base = receiver;
  std::uint64_t sent = 0;
  std::uint64_t taken = 0;
  std::uint64_t wrong = 0;
  auto check = [&](const MessageView& message) {
    if (message.type != static_cast<MessageType>(taken) ||
        !matches_pattern(message.payload, taken, mixed_length(taken))) {
      ++wrong;
    }
    ++taken;
  };
  for (int round = 0; round < 200; ++round) {
    while (send(sender, sent, mixed_length(sent)) == SendStatus::ok)
      ++sent;
    // Alternate the two, a few messages at a time, until the ring is empty.
    for (bool typed = round % 2 == 0;; typed = !typed) {
      const std::size_t max = 1 + static_cast<std::size_t>(round % 5);
      if ((typed ? receiver.poll_each(check, max) : as_base.poll(check, max)) == 0) break;
    }
    ASSERT_EQ(taken, sent);
  }
  EXPECT_GT(sent, 1000u);
  EXPECT_EQ(wrong, 0u);
}

TEST(UrpcEnds, PollEachFromInsideItsCallbackDeliversNothing) {
  auto ends = make_urpc_channel();
  ASSERT_TRUE(ends.ok()) << ends.error().describe();
  ASSERT_EQ(send(*ends->sender, 1, 8), SendStatus::ok);
  ASSERT_EQ(send(*ends->sender, 2, 8), SendStatus::ok);
  std::vector<MessageType> order;
  std::size_t nested = 99;
  ends->receiver->poll_each(
      [&](const MessageView& message) {
        order.push_back(message.type);
        if (message.type == 1) {
          nested = ends->receiver->poll_each(
              [&](const MessageView& inner) { order.push_back(inner.type); }, 10);
        }
      },
      10);
  EXPECT_EQ(nested, 0u);
  EXPECT_EQ(order, (std::vector<MessageType>{1, 2}));
}

TEST(UrpcEnds, AMessageWhoseCallbackThrowsInPollEachIsNotDeliveredAgain) {
  auto ends = make_urpc_channel();
  ASSERT_TRUE(ends.ok()) << ends.error().describe();
  ASSERT_EQ(send(*ends->sender, 1, 8), SendStatus::ok);
  ASSERT_EQ(send(*ends->sender, 2, kMaxPayload), SendStatus::ok);
  ASSERT_EQ(send(*ends->sender, 3, 8), SendStatus::ok);
  std::vector<MessageType> seen;
  auto throw_on = [&seen](MessageType bad) {
    return [&seen, bad](const MessageView& message) {
      seen.push_back(message.type);
      if (message.type == bad) throw std::runtime_error("callback failed");
    };
  };
  EXPECT_THROW(ends->receiver->poll_each(throw_on(1), 10), std::runtime_error);
  EXPECT_THROW(ends->receiver->poll_each(throw_on(2), 10), std::runtime_error);
  EXPECT_EQ(ends->receiver->poll_each(throw_on(0), 10), 1u);
  EXPECT_EQ(seen, (std::vector<MessageType>{1, 2, 3}));
}

// The ends on two threads, the smallest ring so that the sender laps it thousands of times:
// what the typed sender writes, the typed receiver's poll_each takes once, in order, intact.
TEST(UrpcEnds, TwoThreadsThroughTheTypedEndsLoseNothing) {
  constexpr std::uint64_t kCount = 200'000;
  auto ends = make_urpc_channel({.slots = 64});
  ASSERT_TRUE(ends.ok()) << ends.error().describe();
  std::uint64_t taken = 0;
  std::uint64_t wrong = 0;
  std::thread receiver([&, rx = std::move(ends->receiver)] {
    test::pin_to_nth_cpu(0);
    auto check = [&](const MessageView& message) {
      if (message.type != static_cast<MessageType>(taken) ||
          !matches_pattern(message.payload, taken, mixed_length(taken))) {
        ++wrong;
      }
      ++taken;
    };
    while (!rx->closed()) {
      // Yield when idle: with more threads than cores the sender needs this CPU.
      if (rx->poll_each(check, 16) == 0) std::this_thread::yield();
    }
  });
  std::thread sender([&, tx = std::move(ends->sender)] {
    test::pin_to_nth_cpu(1);
    for (std::uint64_t sequence = 0; sequence < kCount; ++sequence) {
      while (send(*tx, sequence, mixed_length(sequence)) != SendStatus::ok)
        std::this_thread::yield();
    }
    tx->close();
  });
  sender.join();
  receiver.join();
  EXPECT_EQ(taken, kCount);
  EXPECT_EQ(wrong, 0u);
}

}  // namespace
}  // namespace mk
