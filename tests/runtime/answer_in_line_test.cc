// Answers in the request's line (Config::answer_path, Skb::answer_path): a call alone in flight
// is answered in the line its request came in, overlapping calls and late answers take the
// channel, the callee's earlier messages are handled before the caller sees the answer, a
// caller asleep on its answer is woken, and a call waiting in line ends by its timeout or its
// callee's failure like any other; with kernels as threads and as processes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <thread>
#include <vector>

#include "messages.h"
#include "mk/kernel.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace answer_in_line_test {

/// Answered after the callee posted `notes` Note messages to the caller: with the number of
/// notes the caller had handled when its task saw the answer.
struct AfterNotes {
  static constexpr mk::MessageType kType = 60;
  using Reply = std::uint64_t;
  std::uint64_t notes;
};

/// One-way, from the callee of AfterNotes to its caller.
struct Note {
  static constexpr mk::MessageType kType = 61;
  std::uint64_t index;
};

/// Notes a kernel has handled.
struct NotesSeen {
  explicit NotesSeen(mk::Kernel&) {}
  std::uint64_t count = 0;
};

/// Answered only after a pause on the callee's clock: the handler is a coroutine, so its
/// answer cannot be given in the request's line.
struct Later {
  static constexpr mk::MessageType kType = 62;
  using Reply = std::uint64_t;
  std::uint64_t value;
};

/// Holds a callee inside a handler until the test opens it; shared with kernel processes
/// (mk::test::Shared).
struct Gate {
  std::atomic<std::uint32_t> entered{0};
  std::atomic<bool> open{false};
};

/// Answered with value + 1 by a handler that returns only once its Gate is open: the answer
/// is given in line, as late as the test wants.
struct Gated {
  static constexpr mk::MessageType kType = 63;
  using Reply = std::uint64_t;
  std::uint64_t value;
};

}  // namespace answer_in_line_test

namespace {

using answer_in_line_test::AfterNotes;
using answer_in_line_test::Gate;
using answer_in_line_test::Gated;
using answer_in_line_test::Later;
using answer_in_line_test::Note;
using answer_in_line_test::NotesSeen;
using mk_test::Echo;
using mk_test::EchoReply;

mk::Result<void> register_all(mk::Kernel& k) {
  if (auto r = mk_test::register_echo(k); !r) return r;
  if (auto r = k.handle<AfterNotes>([](const AfterNotes& ask, const mk::MessageContext& context) {
        for (std::uint64_t i = 0; i < ask.notes; ++i) {
          const Note note{i};
          const auto bytes = std::as_bytes(std::span(&note, 1));
          if (!mk::detail::KernelAccess::post(context.kernel, context.from, Note::kType, bytes)) {
            return std::uint64_t{0};
          }
        }
        return ask.notes;
      });
      !r) {
    return r;
  }
  if (auto r = k.handle<Note>([](const Note&, const mk::MessageContext& context) {
        ++context.kernel.extension<NotesSeen>().count;
      });
      !r) {
    return r;
  }
  return k.handle<Later>(
      [](const Later& later, const mk::MessageContext& context) -> mk::Task<std::uint64_t> {
        co_await context.kernel.sleep_for(std::chrono::microseconds(50));
        co_return later.value + 1;
      });
}

/// `calls` calls from `k` to kernel 1, one at a time: how many came back right.
mk::Task<std::uint64_t> echo_calls(mk::Kernel& k, std::uint64_t calls) {
  std::uint64_t right = 0;
  for (std::uint64_t i = 0; i < calls; ++i) {
    auto reply = co_await k.call(1, Echo{i, k.id()});
    if (reply && reply->value == 2 * i + 1 && reply->responder == 1) ++right;
  }
  co_return right;
}

/// Makes kernel `on` answer Gated behind `gate`.
bool handle_gated(mk::System& system, mk::KernelId on, Gate* gate) {
  auto added = system.run(
      on,
      [](mk::Kernel& k, Gate* held) -> mk::Task<mk::Result<void>> {
        co_return k.handle<Gated>([held](const Gated& gated) {
          held->entered.fetch_add(1);
          while (!held->open.load())
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          return gated.value + 1;
        });
      },
      gate);
  return added.ok() && added->ok();
}

class AnswersInLine : public mk::test::BothIsolations {
 protected:
  mk::Config config_with(mk::AnswerPath path, std::size_t kernels = 2) const {
    mk::Config c = config(kernels);
    c.answer_path = path;
    c.setup = register_all;
    return c;
  }
  static std::uint64_t answered_in_line(mk::System& system, mk::KernelId kernel) {
    auto stats = system.stats(kernel);
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? stats->answers_in_line : 0;
  }
};

TEST_P(AnswersInLine, ACallAloneInFlightIsAnsweredInItsRequestsLine) {
  constexpr std::uint64_t kCalls = 200;
  for (mk::AnswerPath path : mk::kAnswerPaths) {
    auto system = mk::test::boot(config_with(path));
    ASSERT_NE(system, nullptr);
    auto right = system->run(0, [](mk::Kernel& k) { return echo_calls(k, kCalls); });
    ASSERT_TRUE(right.ok()) << right.error().describe();
    EXPECT_EQ(*right, kCalls);
    // The first call waits for its channel to be bound, so it goes the usual way.
    const std::uint64_t in_line = answered_in_line(*system, 1);
    if (path == mk::AnswerPath::in_line) {
      EXPECT_GE(in_line, kCalls - 1);
      EXPECT_LE(in_line, kCalls);
    } else {
      EXPECT_EQ(in_line, 0u);
    }
  }
}

TEST_P(AnswersInLine, OverlappingCallsAreAllAnsweredAndSomeThroughTheChannel) {
  auto system = mk::test::boot(config_with(mk::AnswerPath::in_line));
  ASSERT_NE(system, nullptr);
  constexpr std::uint64_t kTasks = 16;
  constexpr std::uint64_t kCalls = 100;
  auto right = system->run(0, [](mk::Kernel& k) -> mk::Task<std::uint64_t> {
    std::uint64_t total = 0;
    std::uint64_t done = 0;
    for (std::uint64_t t = 0; t < kTasks; ++t) {
      k.spawn([&total, &done](mk::Kernel& kernel) -> mk::Task<void> {
        total += co_await echo_calls(kernel, kCalls);
        ++done;
      });
    }
    while (done < kTasks)
      co_await k.yield();
    co_return total;
  });
  ASSERT_TRUE(right.ok()) << right.error().describe();
  EXPECT_EQ(*right, kTasks * kCalls);
  EXPECT_LT(answered_in_line(*system, 1), kTasks * kCalls);
}

// The callee posts its notes, then answers: with one message taken per channel per turn, the
// answer is seen in line long before the notes are all taken, and must wait for them.
TEST_P(AnswersInLine, TheCalleesEarlierMessagesAreHandledBeforeTheCallerSeesTheAnswer) {
  mk::Config c = config_with(mk::AnswerPath::in_line);
  c.poll_batch = 1;
  auto system = mk::test::boot(c);
  ASSERT_NE(system, nullptr);
  auto outcome = system->run(0, [](mk::Kernel& k) -> mk::Task<std::uint64_t> {
    std::uint64_t out_of_order = 0;
    std::uint64_t expected = 0;
    for (std::uint64_t round = 0; round < 50; ++round) {
      const std::uint64_t notes = round % 7;
      auto answer = co_await k.call(1, AfterNotes{notes});
      expected += notes;
      if (!answer || *answer != notes || k.extension<NotesSeen>().count != expected) {
        ++out_of_order;
      }
    }
    co_return out_of_order;
  });
  ASSERT_TRUE(outcome.ok()) << outcome.error().describe();
  EXPECT_EQ(*outcome, 0u);
  EXPECT_GT(answered_in_line(*system, 1), 0u);
}

// A coroutine handler answers after on_message returned: the request's line is declined and
// the answer comes through the channel; calls after it are answered in line again.
TEST_P(AnswersInLine, AnAnswerGivenLaterComesThroughTheChannel) {
  auto system = mk::test::boot(config_with(mk::AnswerPath::in_line));
  ASSERT_NE(system, nullptr);
  auto outcome = system->run(0, [](mk::Kernel& k) -> mk::Task<std::uint64_t> {
    std::uint64_t right = 0;
    for (std::uint64_t i = 0; i < 20; ++i) {
      auto later = co_await k.call(1, Later{i});
      if (later && *later == i + 1) ++right;
      auto echo = co_await k.call(1, Echo{i, k.id()});
      if (echo && echo->value == 2 * i + 1) ++right;
    }
    co_return right;
  });
  ASSERT_TRUE(outcome.ok()) << outcome.error().describe();
  EXPECT_EQ(*outcome, 40u);
  // Only the echoes, less the first call's (made while the channel was being bound).
  EXPECT_GE(answered_in_line(*system, 1), 19u);
  EXPECT_LE(answered_in_line(*system, 1), 20u);
}

// Eight kernels on the build host's two cores poll not at all (kernels outnumber cores): a
// caller sleeps while its answer is on the way, and the answer in line must wake it.
TEST_P(AnswersInLine, EightKernelsOnTwoCoresCallEachOtherAndEveryCallerWakes) {
  constexpr std::size_t kKernels = 8;
  constexpr std::uint64_t kRounds = 30;
  auto system = mk::test::boot(config_with(mk::AnswerPath::in_line, kKernels));
  ASSERT_NE(system, nullptr);
  std::vector<std::thread> callers;
  std::vector<std::uint64_t> right(kKernels, 0);
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    callers.emplace_back([&system, &right, id] {
      auto outcome = system->run(id, [](mk::Kernel& k) -> mk::Task<std::uint64_t> {
        std::uint64_t good = 0;
        for (std::uint64_t round = 0; round < kRounds; ++round) {
          for (mk::KernelId to = 0; to < k.system_size(); ++to) {
            if (to == k.id()) continue;
            auto reply = co_await k.call(to, Echo{round, k.id()});
            if (reply && reply->value == 2 * round + 1 && reply->responder == to) ++good;
          }
        }
        co_return good;
      });
      right[id] = outcome.ok() ? *outcome : 0;
    });
  }
  for (auto& caller : callers)
    caller.join();
  std::uint64_t in_line = 0;
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    EXPECT_EQ(right[id], kRounds * (kKernels - 1)) << "kernel " << id;
    in_line += answered_in_line(*system, id);
  }
  EXPECT_GT(in_line, 0u);
}

// Two kernels on one core: the caller sleeps as soon as its request is out, and only the
// answer in line can wake it (without that wake the test never ends, and ctest's timeout
// fails it).
TEST_P(AnswersInLine, ACallerAsleepOnItsAnswerIsWokenByIt) {
  mk::Config c = config_with(mk::AnswerPath::in_line);
  c.cores = {c.cores.front(), c.cores.front()};
  c.kernels_per_core = 2;
  auto system = mk::test::boot(c);
  ASSERT_NE(system, nullptr);
  auto right = system->run(0, [](mk::Kernel& k) -> mk::Task<std::uint64_t> {
    std::uint64_t good = 0;
    for (std::uint64_t i = 0; i < 100; ++i) {
      auto reply = co_await k.call(1, Echo{i, k.id()});
      if (reply && reply->value == 2 * i + 1) ++good;
    }
    co_return good;
  });
  ASSERT_TRUE(right.ok()) << right.error().describe();
  EXPECT_EQ(*right, 100u);
  EXPECT_GE(answered_in_line(*system, 1), 99u);
  auto sleeps = system->stats(0);
  ASSERT_TRUE(sleeps.ok());
  EXPECT_GT(sleeps->sleeps, 0u);
}

// The callee holds the request until the call has timed out, then answers in line: the late
// answer is dropped (counted as rejected, as a late reply through the channel is), and calls
// after it are answered right, in line again.
TEST_P(AnswersInLine, ACallThatTimesOutWhileWaitingInLineDropsItsLateAnswer) {
  mk::test::Shared<Gate> gate;
  auto system = mk::test::boot(config_with(mk::AnswerPath::in_line));
  ASSERT_NE(system, nullptr);
  ASSERT_TRUE(handle_gated(*system, 1, gate.get()));
  auto ended = system->run(0, [](mk::Kernel& k) -> mk::Task<std::int64_t> {
    // The first call binds the channel; the gated call is then alone in flight and asks.
    (void)co_await k.call(1, Echo{0, k.id()});
    co_return mk::test::code_of(co_await k.call(1, Gated{1}, std::chrono::milliseconds(5)));
  });
  ASSERT_TRUE(ended.ok()) << ended.error().describe();
  EXPECT_EQ(*ended, mk::test::code_of(mk::Errc::timed_out));
  gate->open.store(true);
  mk::test::wait_until([&] { return system->stats(0)->rejected_messages >= 1; });
  // Nothing else was answered since: the answer dropped was the one given in line.
  EXPECT_EQ(answered_in_line(*system, 1), 1u);
  auto right = system->run(0, [](mk::Kernel& k) { return echo_calls(k, 50); });
  ASSERT_TRUE(right.ok()) << right.error().describe();
  EXPECT_EQ(*right, 50u);
  EXPECT_GE(answered_in_line(*system, 1), 50u);
  EXPECT_EQ(system->stats(0)->rejected_messages, 1u);
}

// The callee is declared failed while it holds a request whose answer is awaited in line: the
// call ends with `closed`, and the caller goes on calling the kernels that live.
TEST_P(AnswersInLine, ACallWaitingInLineOnAKernelThatFailsEndsClosed) {
  constexpr std::uint32_t kGatedCall = 1;
  mk::test::Shared<Gate> gate;
  auto system = mk::test::boot(config_with(mk::AnswerPath::in_line, 3));
  ASSERT_NE(system, nullptr);
  ASSERT_TRUE(handle_gated(*system, 1, gate.get()));
  ASSERT_TRUE(system
                  ->spawn(0,
                          [](mk::Kernel& k) -> mk::Task<void> {
                            (void)co_await k.call(1, Echo{0, k.id()});
                            auto reply = co_await k.call(1, Gated{1});
                            mk::test::record(k, kGatedCall, mk::test::code_of(reply));
                          })
                  .ok());
  mk::test::wait_until([&] { return gate->entered.load() >= 1; });
  ASSERT_TRUE(system->declare_failed(1).ok());
  auto gated = mk::test::collect(*system, 0, kGatedCall);
  ASSERT_TRUE(gated.ok()) << gated.error().describe();
  EXPECT_EQ(*gated, mk::test::code_of(mk::Errc::closed));
  auto live = system->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    auto reply = co_await k.call(2, Echo{3, k.id()});
    co_return reply && reply->value == 7 && reply->responder == 2;
  });
  ASSERT_TRUE(live.ok()) << live.error().describe();
  EXPECT_TRUE(*live);
  // A kernel thread declared failed still runs the handler it was in: let it end.
  gate->open.store(true);
  EXPECT_TRUE(system->shutdown().ok());
}

TEST_P(AnswersInLine, AnUnknownPathIsRefusedAtBoot) {
  mk::Config c = config_with(static_cast<mk::AnswerPath>(7));
  auto system = mk::System::boot(c);
  ASSERT_FALSE(system.ok());
  EXPECT_EQ(system.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(system.error().message.find("answer_path"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Isolations, AnswersInLine, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace
