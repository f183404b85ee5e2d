// Each documented result of every channel kind, with both ends driven from the test's thread.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "channel_test_support.h"
#include "mk/channel.h"
#include "skb/host_line_size.h"
#include "transport/channel_options.h"

namespace mk {
namespace {

using test::fill_pattern;
using test::matches_pattern;

/// Messages as received: sequence (from the type), length and whether the bytes matched.
struct Received {
  MessageType type;
  std::size_t length;
  bool intact;
};

class ChannelEdge : public ::testing::TestWithParam<ChannelKind> {
 protected:
  void make(std::size_t slots) {
    auto ends = make_channel(GetParam(), {.slots = slots});
    ASSERT_TRUE(ends.ok()) << ends.error().describe();
    sender_ = std::move(ends->sender);
    receiver_ = std::move(ends->receiver);
  }

  SendStatus send(MessageType sequence, std::size_t length) {
    std::vector<std::byte> payload(length);
    fill_pattern(payload, sequence);
    return sender_->try_send(sequence, payload);
  }

  std::vector<Received> drain(std::size_t max_messages = SIZE_MAX) {
    std::vector<Received> got;
    receiver_->poll(
        [&](const MessageView& message) {
          got.push_back({message.type, message.payload.size(),
                         matches_pattern(message.payload, message.type, message.payload.size())});
        },
        max_messages);
    return got;
  }

  static std::size_t payload_per_slot() {
    return detail::host_line_size() - transport::kHeaderSize;
  }

  std::unique_ptr<ChannelSender> sender_;
  std::unique_ptr<ChannelReceiver> receiver_;
};

TEST_P(ChannelEdge, FullRingSaysFullAtOnceAndWritesNothing) {
  const std::size_t slots = transport::min_slots(detail::host_line_size());
  make(slots);
  std::size_t sent = 0;
  // Sizes that leave no room for another message in their slot (urpc packs small ones).
  while (send(static_cast<MessageType>(sent), payload_per_slot() - sent % 4) == SendStatus::ok) {
    ++sent;
    ASSERT_LE(sent, slots) << "more one-slot messages fit than the ring has slots";
  }
  EXPECT_EQ(sent, slots);
  EXPECT_EQ(send(9999, 1), SendStatus::full);
  EXPECT_EQ(send(9999, kMaxPayload), SendStatus::full);

  auto got = drain();
  ASSERT_EQ(got.size(), sent);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].type, i);
    EXPECT_EQ(got[i].length, payload_per_slot() - i % 4);
    EXPECT_TRUE(got[i].intact) << i;
  }
  EXPECT_FALSE(receiver_->has_message());
  EXPECT_EQ(send(7, kMaxPayload), SendStatus::ok) << "a drained ring takes a maximal message";
}

TEST_P(ChannelEdge, OversizedPayloadIsRefusedAndWritesNothing) {
  make(256);
  EXPECT_EQ(send(1, kMaxPayload + 1), SendStatus::too_large);
  EXPECT_EQ(send(1, kMaxPayload * 10), SendStatus::too_large);
  EXPECT_FALSE(receiver_->has_message());
  ASSERT_EQ(send(2, kMaxPayload), SendStatus::ok);
  auto got = drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, 2);
  EXPECT_EQ(got[0].length, kMaxPayload);
  EXPECT_TRUE(got[0].intact);
}

TEST_P(ChannelEdge, APayloadSentInTwoPartsArrivesJoined) {
  make(256);
  // Splits of small messages (which urpc packs several to a slot), whole slots and messages
  // of several slots, at every kind of cut: nothing before it, nothing after it, between, and
  // at the end of the first slot.
  const std::size_t lengths[] = {
      0, 1, 8, 16, payload_per_slot(), payload_per_slot() + 1, 1000, kMaxPayload};
  MessageType sequence = 0;
  std::vector<std::size_t> sent_lengths;
  for (std::size_t length : lengths) {
    const std::size_t first_slot = std::min(length, payload_per_slot());
    for (std::size_t cut : {std::size_t{0}, length / 3, first_slot, length}) {
      std::vector<std::byte> joined(length);
      fill_pattern(joined, sequence);
      const std::span<const std::byte> whole(joined);
      ASSERT_EQ(sender_->try_send_parts(sequence, whole.first(cut), whole.subspan(cut)),
                SendStatus::ok)
          << length << " bytes cut at " << cut;
      sent_lengths.push_back(length);
      ++sequence;
      // Drained now and then: the largest messages fill a quarter of the ring.
      if (length >= 1000) {
        auto got = drain();
        ASSERT_EQ(got.size(), sent_lengths.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
          EXPECT_EQ(got[i].type, sequence - got.size() + i);
          EXPECT_EQ(got[i].length, sent_lengths[i]);
          EXPECT_TRUE(got[i].intact) << "message " << got[i].type;
        }
        sent_lengths.clear();
      }
    }
  }
}

TEST_P(ChannelEdge, TwoPartsLongerThanTheLargestPayloadAreRefusedAndWriteNothing) {
  make(256);
  const std::vector<std::byte> head(8);
  const std::vector<std::byte> body(kMaxPayload - 7);
  EXPECT_EQ(sender_->try_send_parts(1, head, body), SendStatus::too_large);
  EXPECT_FALSE(receiver_->has_message());
  ASSERT_EQ(sender_->try_send_parts(2, head, std::span(body).first(kMaxPayload - 8)),
            SendStatus::ok);
  auto got = drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, 2);
  EXPECT_EQ(got[0].length, kMaxPayload);
}

TEST_P(ChannelEdge, ZeroLengthPayloadArrivesAsZeroLength) {
  make(256);
  ASSERT_EQ(sender_->try_send(42, {}), SendStatus::ok);
  ASSERT_TRUE(receiver_->has_message());
  auto got = drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, 42);
  EXPECT_EQ(got[0].length, 0u);
}

TEST_P(ChannelEdge, SenderCloseDeliversEverythingSentBeforeThenReportsClosed) {
  make(256);
  for (MessageType i = 0; i < 10; ++i)
    ASSERT_EQ(send(i, i * 200), SendStatus::ok);
  sender_->close();
  EXPECT_EQ(send(11, 1), SendStatus::closed);
  EXPECT_FALSE(receiver_->closed()) << "closed before the messages were delivered";
  auto first = drain(4);
  EXPECT_EQ(first.size(), 4u);
  EXPECT_FALSE(receiver_->closed());
  auto rest = drain();
  ASSERT_EQ(rest.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(rest[i].type, i + 4);
    EXPECT_TRUE(rest[i].intact);
  }
  EXPECT_TRUE(receiver_->closed());
  EXPECT_TRUE(drain().empty());
}

TEST_P(ChannelEdge, DestroyingTheSenderClosesTheChannelAfterItsMessages) {
  make(256);
  ASSERT_EQ(send(1, 3), SendStatus::ok);
  sender_.reset();
  EXPECT_FALSE(receiver_->closed());
  auto got = drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].intact);
  EXPECT_TRUE(receiver_->closed());
}

TEST_P(ChannelEdge, DestroyingTheReceiverMakesSendsReportClosed) {
  make(256);
  EXPECT_FALSE(sender_->peer_closed());
  ASSERT_EQ(send(1, 3), SendStatus::ok);
  receiver_.reset();
  EXPECT_TRUE(sender_->peer_closed());
  EXPECT_EQ(send(2, 3), SendStatus::closed);
  EXPECT_EQ(send(3, kMaxPayload), SendStatus::closed);
  std::byte byte{};
  OutgoingMessage batch[] = {{4, {&byte, 1}}};
  EXPECT_EQ(sender_->try_send_batch(batch), 0u);
}

TEST_P(ChannelEdge, BatchSendStopsWhereTheRingIsFullAndPollDrainsAtMostMax) {
  const std::size_t slots = transport::min_slots(detail::host_line_size());
  const std::size_t quarter = slots / 4;
  make(slots);
  // A whole slot each: urpc would pack smaller ones several to a slot.
  std::vector<std::vector<std::byte>> payloads(slots + 2 * quarter,
                                               std::vector<std::byte>(payload_per_slot()));
  std::vector<OutgoingMessage> batch;
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    fill_pattern(payloads[i], i);
    batch.push_back({static_cast<MessageType>(i), payloads[i]});
  }
  EXPECT_EQ(sender_->try_send_batch(batch), slots);
  // A quarter ring read is what every kind promises to hand back to the sender.
  EXPECT_EQ(drain(quarter).size(), quarter);
  EXPECT_EQ(sender_->try_send_batch(std::span(batch).subspan(slots)), quarter);
  auto got = drain();
  ASSERT_EQ(got.size(), slots);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].type, i + quarter);
    EXPECT_TRUE(got[i].intact);
  }
}

TEST_P(ChannelEdge, BatchSendStopsAtAnOversizedMessage) {
  make(256);
  std::vector<std::byte> small(3), huge(kMaxPayload + 1);
  OutgoingMessage batch[] = {{1, small}, {2, huge}, {3, small}};
  EXPECT_EQ(sender_->try_send_batch(batch), 1u);
  EXPECT_EQ(sender_->try_send(2, huge), SendStatus::too_large);
}

TEST_P(ChannelEdge, MultiSlotMessagesStartingAtEverySlotOfTheRingArriveWhole) {
  const std::size_t slots = transport::min_slots(detail::host_line_size());
  make(slots);
  const std::size_t sizes[] = {kMaxPayload, payload_per_slot() + 1, 3 * payload_per_slot() + 5,
                               kMaxPayload - 1, 2 * payload_per_slot()};
  MessageType sequence = 0;
  // Each lap shifts the start of the next multi-slot message by one slot, through every slot.
  for (std::size_t offset = 0; offset < 2 * slots; ++offset) {
    ASSERT_EQ(send(sequence++, 1), SendStatus::ok);
    const std::size_t size = sizes[offset % std::size(sizes)];
    ASSERT_EQ(send(sequence++, size), SendStatus::ok) << offset;
    auto got = drain();
    ASSERT_EQ(got.size(), 2u) << offset;
    EXPECT_EQ(got[1].type, sequence - 1);
    EXPECT_EQ(got[1].length, size);
    EXPECT_TRUE(got[0].intact && got[1].intact) << "offset " << offset << " size " << size;
  }
}

TEST_P(ChannelEdge, PollFromInsideOnMessageDeliversNothing) {
  make(256);
  ASSERT_EQ(send(1, 3), SendStatus::ok);
  ASSERT_EQ(send(2, 3), SendStatus::ok);
  std::vector<MessageType> order;
  std::size_t nested = 99;
  receiver_->poll(
      [&](const MessageView& message) {
        order.push_back(message.type);
        if (message.type == 1) {
          nested = receiver_->poll([&](const MessageView& m) { order.push_back(m.type); }, 10);
        }
      },
      10);
  EXPECT_EQ(nested, 0u);
  EXPECT_EQ(order, (std::vector<MessageType>{1, 2}));
}

TEST_P(ChannelEdge, AMessageWhoseHandlerThrowsIsNotDeliveredAgain) {
  make(256);
  ASSERT_EQ(send(1, 3), SendStatus::ok);
  ASSERT_EQ(send(2, kMaxPayload), SendStatus::ok);
  ASSERT_EQ(send(3, 3), SendStatus::ok);
  auto throw_on = [&](MessageType bad, std::vector<MessageType>& seen) {
    return [&seen, bad](const MessageView& message) {
      seen.push_back(message.type);
      if (message.type == bad) throw std::runtime_error("handler failed");
    };
  };
  std::vector<MessageType> seen;
  EXPECT_THROW(receiver_->poll(throw_on(1, seen), 10), std::runtime_error);
  EXPECT_THROW(receiver_->poll(throw_on(2, seen), 10), std::runtime_error);
  EXPECT_EQ(receiver_->poll(throw_on(0, seen), 10), 1u);
  EXPECT_EQ(seen, (std::vector<MessageType>{1, 2, 3}));
}

// A sender waiting for room is woken only by a poll that showed it some (made_room): on
// every kind, the room a full ring's sender can use once made_room says so is really there.
TEST_P(ChannelEdge, MadeRoomMeansTheSenderOfAFullRingCanSendAgain) {
  make(64);
  std::size_t sent = 0;
  while (send(static_cast<MessageType>(sent), 8) == SendStatus::ok)
    ++sent;
  ASSERT_GT(sent, 0u);
  (void)receiver_->made_room();
  // One message at a time until the receiver says it made room: then the sender has some.
  bool room = false;
  for (std::size_t taken = 0; taken < sent && !room; ++taken) {
    ASSERT_EQ(drain(1).size(), 1u);
    room = receiver_->made_room();
    if (!room) {
      EXPECT_EQ(send(0, 8), SendStatus::full) << "room the receiver did not report";
    }
  }
  ASSERT_TRUE(room);
  EXPECT_EQ(send(1, 8), SendStatus::ok);
}

TEST(UrpcPacking, SmallMessagesShareSlotsAndArriveInOrder) {
  constexpr std::size_t kSlots = 64;
  auto ends = make_channel(ChannelKind::urpc, {.slots = kSlots});
  ASSERT_TRUE(ends.ok()) << ends.error().describe();
  std::size_t sent = 0;
  for (;; ++sent) {
    std::uint64_t value = sent;
    if (ends->sender->try_send(static_cast<MessageType>(sent % 7),
                               std::as_bytes(std::span(&value, 1))) != SendStatus::ok) {
      break;
    }
  }
  EXPECT_GT(sent, 2 * kSlots) << "8-byte messages each took a slot of their own";
  std::size_t got = 0;
  bool in_order = true;
  while (ends->receiver->poll(
             [&](const MessageView& message) {
               std::uint64_t value = ~std::uint64_t{0};
               if (message.payload.size() == sizeof value)
                 std::memcpy(&value, message.payload.data(), sizeof value);
               in_order &= value == got && message.type == got % 7;
               ++got;
             },
             16) != 0) {
  }
  EXPECT_EQ(got, sent);
  EXPECT_TRUE(in_order);
}

TEST(UrpcPacking, ARunOfOneTypeAndLengthFillsItsSlotsEndToEnd) {
  constexpr std::size_t kSlots = 64;
  const std::size_t payload = *single_slot_payload({.slots = kSlots});
  auto ends = make_channel(ChannelKind::urpc, {.slots = kSlots});
  ASSERT_TRUE(ends.ok()) << ends.error().describe();
  std::uint64_t sent = 0;
  while (ends->sender->try_send(9, std::as_bytes(std::span(&sent, 1))) == SendStatus::ok)
    ++sent;
  // No sub-headers: every byte of every slot's payload carries a message.
  EXPECT_EQ(sent, kSlots * (payload / sizeof sent));
  std::uint64_t got = 0;
  bool intact = true;
  while (ends->receiver->poll(
             [&](const MessageView& message) {
               std::uint64_t value = ~std::uint64_t{0};
               if (message.payload.size() == sizeof value)
                 std::memcpy(&value, message.payload.data(), sizeof value);
               intact &= value == got && message.type == 9;
               ++got;
             },
             16) != 0) {
  }
  EXPECT_EQ(got, sent);
  EXPECT_TRUE(intact);
}

TEST(UrpcPacking, RunsBrokenByOtherTypesAndLengthsArriveWholeAndInOrder) {
  auto ends = make_channel(ChannelKind::urpc, {.slots = 64});
  ASSERT_TRUE(ends.ok()) << ends.error().describe();
  // Runs of 1 to 9 messages, each run of one type and length (0 to 24 bytes), so that runs
  // end inside slots, fill them, and meet messages that must take sub-headers or a new slot.
  struct Sent {
    MessageType type;
    std::size_t length;
  };
  std::vector<Sent> sent;
  bool full = false;
  for (std::size_t run = 0; !full; ++run) {
    const Sent kind{static_cast<MessageType>(run % 3), (run * 4) % 28};
    for (std::size_t i = 0; i < run % 9 + 1 && !full; ++i) {
      std::vector<std::byte> payload(kind.length);
      fill_pattern(payload, static_cast<unsigned>(sent.size()));
      full = ends->sender->try_send(kind.type, payload) != SendStatus::ok;
      if (!full) sent.push_back(kind);
    }
  }
  std::size_t got = 0;
  std::size_t wrong = 0;
  while (ends->receiver->poll(
             [&](const MessageView& message) {
               if (got >= sent.size() || message.type != sent[got].type ||
                   message.payload.size() != sent[got].length ||
                   !matches_pattern(message.payload, static_cast<unsigned>(got),
                                    message.payload.size())) {
                 ++wrong;
               }
               ++got;
             },
             16) != 0) {
  }
  EXPECT_GT(sent.size(), 64u * 2) << "small messages each took a slot of their own";
  EXPECT_EQ(got, sent.size());
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(ends->receiver->fault(), nullptr);
}

TEST(UrpcMadeRoom, OnlyAPollThatToldTheSenderMakesRoom) {
  auto ends = make_channel(ChannelKind::urpc, {.slots = 64});
  ASSERT_TRUE(ends.ok()) << ends.error().describe();
  // A whole slot each, so that each message takes a slot of its own.
  const std::vector<std::byte> payload(*single_slot_payload({.slots = 64}));
  auto poll_one = [&] { return ends->receiver->poll([](const MessageView&) {}, 1); };
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(ends->sender->try_send(1, payload), SendStatus::ok);
  // The receiver tells the sender every quarter of the ring: 16 slots here.
  for (int i = 0; i < 15; ++i) {
    ASSERT_EQ(poll_one(), 1u);
    EXPECT_FALSE(ends->receiver->made_room()) << "after message " << i + 1;
  }
  ASSERT_EQ(poll_one(), 1u);
  EXPECT_TRUE(ends->receiver->made_room());
  EXPECT_FALSE(ends->receiver->made_room()) << "the news is told once";
}

INSTANTIATE_TEST_SUITE_P(AllKinds, ChannelEdge,
                         ::testing::Values(ChannelKind::urpc, ChannelKind::lockfree,
                                           ChannelKind::local),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace mk
