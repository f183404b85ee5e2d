// TimerQueue: cancelled call deadlines and sleeps leave the heap at once, so the earliest timer
// is always a live one; and, on a kernel, calls that finished leave no timer armed.
#include "runtime/timer_queue.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>

#include "messages.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

using namespace std::chrono_literals;
using mk::runtime::TimerQueue;

const mk::Instant kStart{};

TEST(TimerQueue, ADisarmedDeadlineLeavesTheQueueAtOnce) {
  TimerQueue timers;
  timers.add_deadline(kStart + 1s, 1, 101, 0, 0);
  timers.add_deadline(kStart + 2s, 2, 102, 0, 0);
  timers.add_deadline(kStart + 3s, 3, 103, 0, 0);
  timers.disarm(102);  // Buried, not the earliest: removed all the same.
  EXPECT_EQ(timers.size(), 2u);
  timers.disarm(101);
  EXPECT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers.next(), kStart + 3s);
  timers.disarm(103);
  EXPECT_TRUE(timers.empty());
  EXPECT_FALSE(timers.next().has_value()) << "an idle kernel would arm a timer for no call";
  timers.disarm(103);  // Twice, or for a call that had no deadline: nothing happens.
  EXPECT_TRUE(timers.empty());
}

TEST(TimerQueue, CancelledSleepsLeaveAndTheRestFireInOrder) {
  TimerQueue timers;
  mk::detail::Waiter a, b, c;
  timers.add_sleep(kStart + 3s, a);
  timers.add_sleep(kStart + 1s, b);
  timers.add_deadline(kStart + 2s, 7, 107, 0, 0);
  timers.add_sleep(kStart + 1s, c);  // Same instant as b: fires after it.
  EXPECT_TRUE(timers.cancel_sleep(a));
  EXPECT_FALSE(timers.cancel_sleep(a));
  EXPECT_EQ(timers.size(), 3u);
  auto first = timers.pop_due(kStart + 10s);
  auto second = timers.pop_due(kStart + 10s);
  auto third = timers.pop_due(kStart + 10s);
  ASSERT_TRUE(first && second && third);
  EXPECT_EQ(first->sleeper, &b);
  EXPECT_EQ(second->sleeper, &c);
  EXPECT_EQ(third->call_serial, 107u);
  EXPECT_FALSE(timers.pop_due(kStart + 10s));
}

TEST(TimerQueue, MatchesASortedListUnderRandomAddsAndCancels) {
  std::mt19937_64 random(42);
  TimerQueue timers;
  std::map<std::pair<std::int64_t, std::uint64_t>, std::uint64_t> expected;  // (when, n) -> serial
  std::map<std::uint64_t, std::pair<std::int64_t, std::uint64_t>> by_serial;
  std::uint64_t serial = 1, order = 0;
  for (int step = 0; step < 20000; ++step) {
    const auto choice = random() % 3;
    if (choice < 2 || by_serial.empty()) {
      const auto when = static_cast<std::int64_t>(random() % 1000);
      timers.add_deadline(kStart + std::chrono::nanoseconds(when), 0, serial, 0, 0);
      expected[{when, order}] = serial;
      by_serial[serial] = {when, order};
      ++serial;
      ++order;
    } else {
      auto victim = by_serial.begin();
      std::advance(victim, static_cast<long>(random() % by_serial.size()));
      timers.disarm(victim->first);
      expected.erase(victim->second);
      by_serial.erase(victim);
    }
    ASSERT_EQ(timers.size(), expected.size());
    if (!expected.empty()) {
      ASSERT_EQ(timers.next(), kStart + std::chrono::nanoseconds(expected.begin()->first.first));
    }
  }
  while (auto timer = timers.pop_due(kStart + 1h)) {
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(timer->call_serial, expected.begin()->second);
    expected.erase(expected.begin());
  }
  EXPECT_TRUE(expected.empty());
}

class FinishedCalls : public mk::test::BothIsolations {};

TEST_P(FinishedCalls, LeaveNoTimerArmedOnTheKernel) {
  mk::Config cfg = config(2);
  cfg.setup = [](mk::Kernel& k) -> mk::Result<void> {
    return k.handle<mk_test::Probe>([](const mk_test::Probe&, const mk::MessageContext& c) {
      return mk_test::SleepCount{c.kernel.stats().sleeps};
    });
  };
  auto system = mk::test::boot(cfg);
  ASSERT_TRUE(system);
  auto armed = system->run(0, [](mk::Kernel& k) -> mk::Task<std::int64_t> {
    for (int i = 0; i < 100; ++i) {
      auto reply = co_await k.call(1, mk_test::Probe{0}, std::chrono::hours(1));
      if (!reply) co_return -1;
    }
    // Every call answered long before its hour: none of their deadlines may remain.
    co_return k.next_deadline().has_value() ? 1 : 0;
  });
  ASSERT_TRUE(armed.ok()) << armed.error().describe();
  EXPECT_EQ(*armed, 0);
}

INSTANTIATE_TEST_SUITE_P(Isolations, FinishedCalls, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace
