// Both idle waiters: a notification is never lost, and deadlines end a wait.
// Single-mode: a waiter alone, woken by threads of one process; no System runs.
#include "runtime/idle_waiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace {

class IdleWaiterTest : public ::testing::TestWithParam<int> {
 protected:
  std::unique_ptr<mk::runtime::IdleWaiter> make() {
    auto waiter =
        GetParam() == 0 ? mk::runtime::make_uring_waiter() : mk::runtime::make_poll_waiter();
    if (!waiter && waiter.error().code == mk::Errc::unavailable) return nullptr;
    EXPECT_TRUE(waiter.ok()) << waiter.error().describe();
    return waiter.ok() ? std::move(*waiter) : nullptr;
  }
};

TEST_P(IdleWaiterTest, NotificationBeforeWaitEndsTheWait) {
  auto waiter = make();
  if (!waiter) GTEST_SKIP() << "io_uring unavailable here";
  waiter->notify();
  waiter->wait(std::nullopt);  // Would block forever if the notification were lost.
  SUCCEED();
}

TEST_P(IdleWaiterTest, PastDeadlineEndsTheWait) {
  auto waiter = make();
  if (!waiter) GTEST_SKIP() << "io_uring unavailable here";
  waiter->wait(std::chrono::steady_clock::now());
  SUCCEED();
}

TEST_P(IdleWaiterTest, NearerDeadlineReplacesAFarOne) {
  auto waiter = make();
  if (!waiter) GTEST_SKIP() << "io_uring unavailable here";
  waiter->notify();
  waiter->wait(std::chrono::steady_clock::now() + std::chrono::hours(1));
  // The hour-long timer is still armed; a nearer one must replace it, or this blocks.
  waiter->wait(std::chrono::steady_clock::now());
  SUCCEED();
}

TEST_P(IdleWaiterTest, NotificationFromAnotherThreadWakesASleeper) {
  constexpr int kRounds = 50;
  std::atomic<mk::runtime::IdleWaiter*> shared{nullptr};
  std::atomic<bool> unavailable{false};
  std::atomic<int> wakes{0};
  std::atomic<bool> done{false};
  // The waiter lives on the thread that waits, as a kernel's does.
  std::thread sleeper([&] {
    auto waiter = make();
    if (!waiter) {
      unavailable.store(true);
      return;
    }
    shared.store(waiter.get());
    for (int round = 0; round < kRounds; ++round) {
      waiter->wait(std::nullopt);
      wakes.fetch_add(1);
    }
    while (!done.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (shared.load() == nullptr && !unavailable.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!unavailable.load()) {
    for (int round = 0; round < kRounds; ++round) {
      shared.load()->notify();
      while (wakes.load() <= round)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  done.store(true);
  sleeper.join();
  if (unavailable.load()) GTEST_SKIP() << "io_uring unavailable here";
  EXPECT_EQ(wakes.load(), kRounds);
}

INSTANTIATE_TEST_SUITE_P(Backends, IdleWaiterTest, ::testing::Values(0, 1),
                         [](const auto& info) { return info.param == 0 ? "io_uring" : "poll"; });

}  // namespace
