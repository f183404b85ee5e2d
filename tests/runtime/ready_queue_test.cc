// A kernel's ready queue: tasks resume in the order they became ready, however many wait.
// Single-mode: the queue is the kernel loop's, the same code whatever runs it.
#include <gtest/gtest.h>

#include <vector>

#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

// Far more tasks ready at once than the queue first holds: it grows several times while
// full, and none is lost, repeated or reordered.
TEST(ReadyQueue, ManyTasksReadyAtOnceRunInTheOrderTheyBecameReady) {
  constexpr int kTasks = 1000;
  auto system = mk::test::boot(mk::test::config_for(1));
  ASSERT_TRUE(system);
  std::vector<int> order;  // Kernel 0 only; read after run returns.
  auto done = system->run(0, [&order](mk::Kernel& k) -> mk::Task<void> {
    int finished = 0;
    for (int task = 0; task < kTasks; ++task) {
      k.spawn([&order, &finished, task](mk::Kernel&) -> mk::Task<void> {
        order.push_back(task);
        ++finished;
        co_return;
      });
    }
    // Every task was ready before the first yield: a few turns run them all. Bounded, so
    // that a lost task fails the test instead of hanging it.
    for (int turn = 0; finished < kTasks && turn < 100; ++turn)
      co_await k.yield();
  });
  ASSERT_TRUE(done.ok()) << done.error().describe();
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kTasks));
  for (int task = 0; task < kTasks; ++task)
    ASSERT_EQ(order[static_cast<std::size_t>(task)], task);
}

}  // namespace
