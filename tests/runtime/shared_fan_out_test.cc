// A fan-out to one shared buffer (FanOut::shared_buffer): with kernels as threads the payload
// is written once into the sender's broadcast buffers and each receiver reads it in place; in
// kernel processes each gets a copy. Either way every receiver gets every message once, in
// its order among the pair's other messages, and a slot is free again once all have read it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "mk/fan_out.h"
#include "mk/kernel.h"
#include "mk/system.h"
#include "runtime/broadcast_arena.h"
#include "runtime_test_util.h"

namespace shared_fan_out_test {
namespace {

/// One-way: the sender's messages to one kernel are numbered 0, 1, 2, ... in sending order.
struct Note {
  static constexpr mk::MessageType kType = 50;
  std::uint64_t number;
  std::uint64_t check;  ///< ~number: a payload read from the wrong place shows.
};

struct TallyReply {
  std::uint64_t received;
  std::uint64_t wrong;  ///< Notes out of order or garbled.
};

/// Answered with what the kernel has seen of Notes.
struct Tally {
  static constexpr mk::MessageType kType = 51;
  using Reply = TallyReply;
  std::uint32_t unused;
};

mk::Result<void> count_notes(mk::Kernel& kernel) {
  auto seen = std::make_shared<TallyReply>();
  auto noted = kernel.handle<Note>([seen](const Note& note) {
    if (note.number != seen->received || note.check != ~note.number) ++seen->wrong;
    ++seen->received;
  });
  if (!noted) return noted;
  return kernel.handle<Tally>([seen](const Tally&) { return *seen; });
}

constexpr mk::KernelId kKernels = 8;
/// More fan-outs than the arena has slots: a slot that were never freed would show.
constexpr std::uint32_t kRounds = 3 * mk::runtime::BroadcastArena::kSlots;

bool plain_round(std::uint32_t round) {
  return round % 4 == 3;
}

std::uint64_t shared_rounds() {
  std::uint64_t shared = 0;
  for (std::uint32_t round = 0; round < kRounds; ++round)
    shared += plain_round(round) ? 0 : 1;
  return shared;
}

struct Outcome {
  std::uint32_t wrong = 0;   ///< Receivers whose tally was not as expected after a round.
  std::uint32_t failed = 0;  ///< Posts that failed.
};

/// Who kernel 0 sends to: bytewise, so that it can cross into a kernel process.
struct Plan {
  std::array<mk::KernelId, kKernels> receivers{};
  std::uint32_t receiver_count = 0;
  std::array<mk::KernelId, kKernels> online{};  ///< The receivers that should get the messages.
  std::uint32_t online_count = 0;
  bool shared = true;  ///< FanOut::shared_buffer.
};

/// From kernel 0, kRounds rounds: a fan-out to the plan's receivers (every fourth round a plain
/// post to each online one instead), then a Tally call to each online one, which arrives after
/// the round's message on the same channel.
mk::Task<Outcome> rounds(mk::Kernel& k, Plan plan) {
  Outcome outcome;
  std::vector<mk::FanOutSend> sends;
  for (std::uint32_t i = 0; i < plan.receiver_count; ++i)
    sends.push_back(mk::FanOutSend{plan.receivers[i], -1});
  const std::span online(plan.online.data(), plan.online_count);
  for (std::uint32_t round = 0; round < kRounds; ++round) {
    const Note note{round, ~std::uint64_t{round}};
    const auto bytes = std::as_bytes(std::span<const Note, 1>(&note, 1));
    if (plain_round(round)) {
      for (mk::KernelId to : online) {
        if (!mk::detail::KernelAccess::post(k, to, Note::kType, bytes)) ++outcome.failed;
      }
    } else {
      mk::detail::KernelAccess::post_fan_out(
          k, mk::FanOut{sends, plan.shared}, Note::kType, bytes,
          [&outcome](mk::KernelId, const mk::Error&) { ++outcome.failed; });
    }
    for (mk::KernelId to : online) {
      auto tally = co_await k.call(to, Tally{});
      if (!tally || tally->received != round + 1 || tally->wrong != 0) ++outcome.wrong;
    }
  }
  co_return outcome;
}

class SharedFanOuts : public mk::test::BothIsolations {
 protected:
  void SetUp() override {
    mk::Config config = this->config(kKernels);
    config.setup = count_notes;
    system_ = mk::test::boot(std::move(config));
    ASSERT_TRUE(system_);
  }

  Outcome run(std::initializer_list<mk::KernelId> receivers,
              std::initializer_list<mk::KernelId> online, bool shared = true) {
    Plan plan;
    plan.receiver_count = static_cast<std::uint32_t>(receivers.size());
    std::copy(receivers.begin(), receivers.end(), plan.receivers.begin());
    plan.online_count = static_cast<std::uint32_t>(online.size());
    std::copy(online.begin(), online.end(), plan.online.begin());
    plan.shared = shared;
    auto outcome = system_->run(
        0, [](mk::Kernel& k, Plan plan) -> mk::Task<Outcome> { return rounds(k, plan); }, plan);
    EXPECT_TRUE(outcome.ok()) << outcome.error().describe();
    return outcome.ok() ? *outcome : Outcome{~0u, ~0u};
  }

  std::uint64_t shared_fan_outs() {
    auto stats = system_->stats(0);
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? stats->shared_fan_outs : 0;
  }

  std::unique_ptr<mk::System> system_;
};

TEST_P(SharedFanOuts, EveryReceiverGetsEveryMessageInItsPairsOrder) {
  const Outcome outcome = run({1, 2, 3, 4, 5, 6, 7}, {1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(outcome.wrong, 0u);
  EXPECT_EQ(outcome.failed, 0u);
  // Threads write each fan-out once, reusing slots as receivers release them; processes copy.
  EXPECT_EQ(shared_fan_outs(), isolation() == mk::Isolation::threads ? shared_rounds() : 0u);
}

TEST_P(SharedFanOuts, AFailedReceiverFailsItsPostsAndHoldsNoSlot) {
  // Failed, not removed: a failed kernel's thread may still be inside a handler, so the sender
  // never takes its holds back itself; each failed post must give its hold up.
  ASSERT_TRUE(system_->declare_failed(7).ok());
  const Outcome outcome = run({1, 2, 3, 7}, {1, 2, 3});
  EXPECT_EQ(outcome.wrong, 0u);
  EXPECT_EQ(outcome.failed, shared_rounds()) << "one failed post per fan-out: kernel 7's";
  // Had the failed posts kept their holds, the slots would have run out after kSlots rounds.
  EXPECT_EQ(shared_fan_outs(), isolation() == mk::Isolation::threads ? shared_rounds() : 0u);
}

TEST_P(SharedFanOuts, OneReceiverOrNoSharedBufferGetsCopies) {
  Outcome outcome = run({1}, {1});
  EXPECT_EQ(outcome.wrong, 0u);
  outcome = run({2, 3}, {2, 3}, false);
  EXPECT_EQ(outcome.wrong, 0u);
  EXPECT_EQ(shared_fan_outs(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Isolations, SharedFanOuts, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace
}  // namespace shared_fan_out_test
