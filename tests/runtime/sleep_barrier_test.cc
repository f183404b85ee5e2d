// The sleep barrier is shared: a kernel going to sleep while another kernel of its process is
// inside membarrier waits for a membarrier that began after it looked, instead of queueing a
// membarrier of its own behind it.
#include <gtest/gtest.h>

#include <thread>

#include "runtime/barrier.h"

namespace {

namespace state = mk::runtime::barrier_state;

bool membarrier_in_use() {
  mk::runtime::init_barriers();
  return state::mode == mk::runtime::BarrierMode::membarrier;
}

TEST(SleepBarrier, ASleeperRunsAMembarrierWhenNoneIsUnderWay) {
  if (!membarrier_in_use()) GTEST_SKIP() << "no membarrier here (ThreadSanitizer, or refused)";
  const std::uint64_t seen = state::membarriers_started.load();
  mk::runtime::share_membarrier(seen);
  EXPECT_EQ(state::membarriers_started.load(), seen + 1);
  EXPECT_EQ(state::membarriers_finished.load(), seen + 1);
  EXPECT_FALSE(state::membarrier_busy.load());
}

TEST(SleepBarrier, ASleeperIsCoveredByAMembarrierBegunAfterItLooked) {
  if (!membarrier_in_use()) GTEST_SKIP() << "no membarrier here (ThreadSanitizer, or refused)";
  const std::uint64_t seen = state::membarriers_started.load();
  state::membarrier_busy.store(true);  // Another kernel is inside membarrier.
  std::thread sleeper([seen] { mk::runtime::share_membarrier(seen); });
  // That kernel's next membarrier begins after the sleeper looked, and finishes.
  state::membarriers_started.fetch_add(1);
  state::membarriers_finished.store(seen + 1);
  state::membarrier_busy.store(false);
  sleeper.join();
  EXPECT_EQ(state::membarriers_started.load(), seen + 1) << "the sleeper ran one of its own";
}

TEST(SleepBarrier, AMembarrierBegunBeforeTheSleeperLookedDoesNotCoverIt) {
  if (!membarrier_in_use()) GTEST_SKIP() << "no membarrier here (ThreadSanitizer, or refused)";
  // Another kernel began membarrier number seen + 1 before the sleeper looked.
  state::membarrier_busy.store(true);
  const std::uint64_t begun = state::membarriers_started.fetch_add(1) + 1;
  std::thread sleeper([begun] { mk::runtime::share_membarrier(begun); });
  state::membarriers_finished.store(begun);
  state::membarrier_busy.store(false);
  sleeper.join();
  // Its own came after: the one under way when it looked may have missed its flags.
  EXPECT_EQ(state::membarriers_started.load(), begun + 1);
  EXPECT_EQ(state::membarriers_finished.load(), begun + 1);
}

}  // namespace
