// Answers in the request's line (UrpcSender::send_for_answer, UrpcReceiver::answer): answered,
// declined when the receiver does not answer or throws, one at a time, and a slot awaiting its
// answer is never overwritten before the sender has seen it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "mk/channel.h"
#include "mk/urpc.h"

namespace mk {
namespace {

using AnswerState = UrpcSender::AnswerState;

std::vector<std::byte> word_bytes(std::uint64_t word) {
  std::vector<std::byte> out(sizeof word);
  std::memcpy(out.data(), &word, sizeof word);
  return out;
}

std::uint64_t word_of(std::span<const std::byte> bytes) {
  std::uint64_t word = 0;
  std::memcpy(&word, bytes.data(), std::min(sizeof word, bytes.size()));
  return word;
}

struct Ends {
  Ends() {
    auto made = make_urpc_channel({.slots = 64});
    EXPECT_TRUE(made.ok());
    sender = std::move(made->sender);
    receiver = std::move(made->receiver);
  }
  std::unique_ptr<UrpcSender> sender;
  std::unique_ptr<UrpcReceiver> receiver;
};

TEST(UrpcAnswer, TheReceiverAnswersInTheRequestsLine) {
  Ends ends;
  ASSERT_EQ(ends.sender->send_for_answer(7, word_bytes(41), {}), SendStatus::ok);
  EXPECT_TRUE(ends.sender->awaiting_answer());
  MessageView answer;
  EXPECT_EQ(ends.sender->poll_answer(answer), AnswerState::pending);
  EXPECT_FALSE(ends.sender->answer_changed());

  bool asked = false;
  const std::size_t got = ends.receiver->poll_each(
      [&](const MessageView& request) {
        asked = ends.receiver->answer_asked();
        EXPECT_EQ(request.type, 7);
        const auto head = word_bytes(word_of(request.payload) + 1);
        const auto tail = word_bytes(99);
        EXPECT_TRUE(ends.receiver->answer(8, head, tail));
        // One answer per request.
        EXPECT_FALSE(ends.receiver->answer(8, head, {}));
      },
      4);
  EXPECT_EQ(got, 1u);
  EXPECT_TRUE(asked);
  EXPECT_FALSE(ends.receiver->answer_asked());

  EXPECT_TRUE(ends.sender->answer_changed());
  ASSERT_EQ(ends.sender->poll_answer(answer), AnswerState::answered);
  EXPECT_EQ(answer.type, 8);
  ASSERT_EQ(answer.payload.size(), 16u);
  EXPECT_EQ(word_of(answer.payload), 42u);
  EXPECT_EQ(word_of(answer.payload.subspan(8)), 99u);
  EXPECT_FALSE(ends.sender->awaiting_answer());
  // Nothing came through the ring: the answer was the request's line.
  EXPECT_FALSE(ends.receiver->has_message());
}

TEST(UrpcAnswer, ARequestLeftUnansweredIsDeclinedWhenOnMessageReturns) {
  Ends ends;
  ASSERT_EQ(ends.sender->send_for_answer(7, word_bytes(1), {}), SendStatus::ok);
  EXPECT_EQ(ends.receiver->poll_each([](const MessageView&) {}, 4), 1u);
  MessageView answer;
  EXPECT_EQ(ends.sender->poll_answer(answer), AnswerState::declined);
  EXPECT_FALSE(ends.sender->awaiting_answer());
  // The sender may ask again at once.
  EXPECT_EQ(ends.sender->send_for_answer(7, word_bytes(2), {}), SendStatus::ok);
}

TEST(UrpcAnswer, ARequestWhoseOnMessageThrowsIsDeclinedAndTheNextOneIsServed) {
  Ends ends;
  ASSERT_EQ(ends.sender->send_for_answer(7, word_bytes(1), {}), SendStatus::ok);
  EXPECT_THROW(ends.receiver->poll_each(
                   [](const MessageView&) -> void { throw std::runtime_error("handler"); }, 4),
               std::runtime_error);
  EXPECT_FALSE(ends.receiver->answer_asked());
  MessageView answer;
  EXPECT_EQ(ends.sender->poll_answer(answer), AnswerState::declined);

  ASSERT_EQ(ends.sender->send_for_answer(7, word_bytes(2), {}), SendStatus::ok);
  EXPECT_EQ(
      ends.receiver->poll_each(
          [&](const MessageView& m) { EXPECT_TRUE(ends.receiver->answer(9, m.payload, {})); }, 4),
      1u);
  ASSERT_EQ(ends.sender->poll_answer(answer), AnswerState::answered);
  EXPECT_EQ(word_of(answer.payload), 2u);
}

TEST(UrpcAnswer, OneRequestAwaitsAtATimeAndOthersStillGoThroughTheRing) {
  Ends ends;
  ASSERT_EQ(ends.sender->send_for_answer(7, word_bytes(1), {}), SendStatus::ok);
  EXPECT_EQ(ends.sender->send_for_answer(7, word_bytes(2), {}), SendStatus::full);
  EXPECT_EQ(ends.sender->try_send(5, word_bytes(3)), SendStatus::ok);
  std::vector<std::uint64_t> seen;
  std::vector<bool> asked;
  ends.receiver->poll_each(
      [&](const MessageView& m) {
        seen.push_back(word_of(m.payload));
        asked.push_back(ends.receiver->answer_asked());
        // An ordinary message has no line to answer in.
        if (m.type == 5) {
          EXPECT_FALSE(ends.receiver->answer(5, m.payload, {}));
        }
      },
      8);
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(asked, (std::vector<bool>{true, false}));
  MessageView answer;
  EXPECT_EQ(ends.sender->poll_answer(answer), AnswerState::declined);
}

TEST(UrpcAnswer, WhatDoesNotFitOneSlotIsRefusedAndNothingIsSent) {
  Ends ends;
  std::vector<std::byte> large(ends.sender->slot_payload() + 1);
  EXPECT_EQ(ends.sender->send_for_answer(7, large, {}), SendStatus::too_large);
  EXPECT_FALSE(ends.sender->awaiting_answer());
  EXPECT_FALSE(ends.receiver->has_message());

  // An answer larger than the line leaves the request declined.
  ASSERT_EQ(ends.sender->send_for_answer(7, word_bytes(1), {}), SendStatus::ok);
  ends.receiver->poll_each(
      [&](const MessageView&) { EXPECT_FALSE(ends.receiver->answer(8, large, {})); }, 4);
  MessageView answer;
  EXPECT_EQ(ends.sender->poll_answer(answer), AnswerState::declined);
  // Nor may an answer be given outside on_message.
  EXPECT_FALSE(ends.receiver->answer(8, word_bytes(1), {}));
}

// The receiver hands the slot back (publishes its position past it) before the sender has
// read the answer: the sender must not write that slot again until it has.
TEST(UrpcAnswer, TheSlotAwaitingItsAnswerIsNotOverwrittenBeforeTheSenderReadsIt) {
  Ends ends;
  const std::size_t slots = 64;
  ASSERT_EQ(ends.sender->send_for_answer(7, word_bytes(1234), {}), SendStatus::ok);
  ASSERT_EQ(
      ends.receiver->poll_each(
          [&](const MessageView& m) { EXPECT_TRUE(ends.receiver->answer(8, m.payload, {})); }, 4),
      1u);
  // One full slot per message, every one taken at once: the receiver's position runs ahead.
  const std::vector<std::byte> filler(ends.sender->slot_payload(), std::byte{0x5a});
  for (std::size_t i = 1; i < slots; ++i) {
    ASSERT_EQ(ends.sender->try_send(5, filler), SendStatus::ok) << i;
    ASSERT_EQ(ends.receiver->poll_each([](const MessageView&) {}, 4), 1u) << i;
  }
  // The next slot is the answer's.
  EXPECT_EQ(ends.sender->try_send(5, filler), SendStatus::full);
  MessageView answer;
  ASSERT_EQ(ends.sender->poll_answer(answer), AnswerState::answered);
  EXPECT_EQ(word_of(answer.payload), 1234u);
  EXPECT_EQ(ends.sender->try_send(5, filler), SendStatus::ok);
  EXPECT_EQ(ends.receiver->poll_each([](const MessageView&) {}, 4), 1u);
}

// Two threads, many laps of a small ring: requests that ask for their answer in line between
// ordinary messages of every kind of packing; every answer is the right one, every ordinary
// message arrives once and in order.
TEST(UrpcAnswer, AnswersAndOrdinaryMessagesShareTheRingForManyLaps) {
  Ends ends;
  constexpr std::uint64_t kRounds = 4000;
  std::thread answerer([&] {
    std::uint64_t expected_ordinary = 0;
    std::uint64_t requests = 0;
    while (requests < kRounds) {
      ends.receiver->poll_each(
          [&](const MessageView& m) {
            if (ends.receiver->answer_asked()) {
              ++requests;
              if (requests % 3 != 0) {
                ASSERT_TRUE(ends.receiver->answer(8, word_bytes(word_of(m.payload) * 2), {}));
              }
            } else {
              EXPECT_EQ(word_of(m.payload), expected_ordinary);
              ++expected_ordinary;
            }
          },
          16);
    }
  });
  std::uint64_t ordinary = 0;
  std::uint64_t answered = 0;
  std::uint64_t declined = 0;
  for (std::uint64_t i = 0; i < kRounds; ++i) {
    for (std::uint64_t k = 0; k < i % 5; ++k) {
      while (ends.sender->try_send(5, word_bytes(ordinary)) == SendStatus::full) {
      }
      ++ordinary;
    }
    while (ends.sender->send_for_answer(7, word_bytes(i), {}) == SendStatus::full) {
    }
    MessageView answer;
    AnswerState state;
    while ((state = ends.sender->poll_answer(answer)) == AnswerState::pending) {
    }
    if (state == AnswerState::answered) {
      ++answered;
      EXPECT_EQ(word_of(answer.payload), 2 * i);
    } else {
      ++declined;
      EXPECT_EQ(state, AnswerState::declined);
    }
  }
  answerer.join();
  EXPECT_EQ(declined, kRounds / 3);
  EXPECT_EQ(answered, kRounds - kRounds / 3);
}

}  // namespace
}  // namespace mk
