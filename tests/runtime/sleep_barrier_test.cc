// The sleep barrier is shared: a kernel going to sleep while another kernel of its process is
// inside membarrier waits for a membarrier that began after it looked, instead of queueing a
// membarrier of its own behind it; one that began before it looked does not cover it.
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <thread>

#include "runtime/barrier.h"

namespace {

namespace state = mk::runtime::barrier_state;

/// What a kernel that ran a shared membarrier does when it is done: frees the word and wakes
/// whoever waits on it.
void release() {
  if (state::membarrier_busy.exchange(0) == 2) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state::membarrier_busy),
              FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, nullptr, nullptr, 0);
  }
}

bool membarrier_in_use() {
  mk::runtime::init_barriers();
  return state::mode == mk::runtime::BarrierMode::membarrier;
}

TEST(SleepBarrier, ASleeperRunsAMembarrierWhenNoneIsUnderWay) {
  if (!membarrier_in_use()) GTEST_SKIP() << "no membarrier here (ThreadSanitizer, or refused)";
  const std::uint64_t seen = state::membarriers_started.load();
  EXPECT_TRUE(mk::runtime::share_membarrier(seen));
  EXPECT_EQ(state::membarriers_started.load(), seen + 1);
  EXPECT_EQ(state::membarriers_finished.load(), seen + 1);
  EXPECT_EQ(state::membarrier_busy.load(), 0u);
}

TEST(SleepBarrier, ASleeperIsCoveredByAMembarrierBegunAfterItLooked) {
  if (!membarrier_in_use()) GTEST_SKIP() << "no membarrier here (ThreadSanitizer, or refused)";
  const std::uint64_t seen = state::membarriers_started.load();
  state::membarrier_busy.store(1);  // Another kernel is inside membarrier...
  bool ran = true;
  std::thread sleeper([seen, &ran] { ran = mk::runtime::share_membarrier(seen); });
  // ...one it began after the sleeper looked, and which now finishes.
  state::membarriers_started.fetch_add(1);
  state::membarriers_finished.store(seen + 1);
  release();
  sleeper.join();
  EXPECT_FALSE(ran) << "the sleeper ran a membarrier of its own";
  EXPECT_EQ(state::membarriers_started.load(), seen + 1);
}

TEST(SleepBarrier, AMembarrierBegunBeforeTheSleeperLookedDoesNotCoverIt) {
  if (!membarrier_in_use()) GTEST_SKIP() << "no membarrier here (ThreadSanitizer, or refused)";
  // Another kernel began membarrier number begun before the sleeper looked.
  state::membarrier_busy.store(1);
  const std::uint64_t begun = state::membarriers_started.fetch_add(1) + 1;
  bool ran = false;
  std::thread sleeper([begun, &ran] { ran = mk::runtime::share_membarrier(begun); });
  state::membarriers_finished.store(begun);
  release();
  sleeper.join();
  // Its own came after: the one under way when it looked may have missed its flags.
  EXPECT_TRUE(ran);
  EXPECT_EQ(state::membarriers_started.load(), begun + 1);
  EXPECT_EQ(state::membarriers_finished.load(), begun + 1);
}

}  // namespace
