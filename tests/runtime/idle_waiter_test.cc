// Every idle waiter: a notification is never lost, and deadlines end a wait.
// Single-mode: a waiter alone, woken by threads of one process; no System runs.
#include "runtime/idle_waiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace {

/// The waiters: io_uring with each mechanism, ppoll on an eventfd, futex(2).
enum class Kind { uring_eventfd, uring_futex, uring_msg_ring, poll, futex };

class IdleWaiterTest : public ::testing::TestWithParam<Kind> {
 protected:
  std::unique_ptr<mk::runtime::IdleWaiter> make() {
    using mk::WakeMechanism;
    auto uring = [](WakeMechanism mechanism) {
      return mk::runtime::make_uring_waiter(mk::runtime::WakeSource{mechanism, -1, nullptr});
    };
    auto waiter = GetParam() == Kind::uring_eventfd    ? uring(WakeMechanism::eventfd)
                  : GetParam() == Kind::uring_futex    ? uring(WakeMechanism::futex)
                  : GetParam() == Kind::uring_msg_ring ? uring(WakeMechanism::msg_ring)
                  : GetParam() == Kind::poll           ? mk::runtime::make_poll_waiter()
                                                       : mk::runtime::make_futex_waiter();
    if (!waiter && waiter.error().code == mk::Errc::unavailable) return nullptr;
    EXPECT_TRUE(waiter.ok()) << waiter.error().describe();
    return waiter.ok() ? std::move(*waiter) : nullptr;
  }
};

TEST_P(IdleWaiterTest, NotificationBeforeWaitEndsTheWait) {
  auto waiter = make();
  if (!waiter) GTEST_SKIP() << "unavailable here";
  waiter->notify();
  waiter->wait(std::nullopt);  // Would block forever if the notification were lost.
  SUCCEED();
}

TEST_P(IdleWaiterTest, PastDeadlineEndsTheWait) {
  auto waiter = make();
  if (!waiter) GTEST_SKIP() << "unavailable here";
  waiter->wait(std::chrono::steady_clock::now());
  SUCCEED();
}

TEST_P(IdleWaiterTest, NearerDeadlineReplacesAFarOne) {
  auto waiter = make();
  if (!waiter) GTEST_SKIP() << "unavailable here";
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
  if (unavailable.load()) GTEST_SKIP() << "unavailable here";
  EXPECT_EQ(wakes.load(), kRounds);
}

INSTANTIATE_TEST_SUITE_P(Backends, IdleWaiterTest,
                         ::testing::Values(Kind::uring_eventfd, Kind::uring_futex,
                                           Kind::uring_msg_ring, Kind::poll, Kind::futex),
                         [](const auto& info) {
                           switch (info.param) {
                             case Kind::uring_eventfd:
                               return "io_uring_eventfd";
                             case Kind::uring_futex:
                               return "io_uring_futex";
                             case Kind::uring_msg_ring:
                               return "io_uring_msg_ring";
                             case Kind::poll:
                               return "poll";
                             case Kind::futex:
                               return "futex";
                           }
                           return "unknown";
                         });

}  // namespace
