// Task<T> on its own, driven without a kernel.
// Single-mode: Task<T> alone, with no kernel and so no isolation.
#include "mk/task.h"

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>

namespace {

/// Starts a task and records its outcome; the tasks here never wait on anything external,
/// so they finish before start() returns.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }
  };
};

template <class T>
Detached drive(mk::Task<T> task, std::optional<T>& value, std::string& failure) {
  try {
    value = co_await std::move(task);
  } catch (const std::exception& e) {
    failure = e.what();
  }
}

mk::Task<int> leaf(int x) {
  co_return x * 2;
}

mk::Task<int> chain(int depth) {
  if (depth == 0) co_return co_await leaf(1);
  co_return 1 + co_await chain(depth - 1);
}

mk::Task<int> thrower() {
  throw std::runtime_error("deep failure");
  co_return 0;
}

mk::Task<int> rethrows_through() {
  co_return co_await thrower() + 1;
}

mk::Task<void> sets(bool& flag) {
  flag = true;
  co_return;
}

TEST(Task, ReturnsValueThroughAwaiter) {
  std::optional<int> value;
  std::string failure;
  drive(leaf(21), value, failure);
  ASSERT_TRUE(value);
  EXPECT_EQ(*value, 42);
}

TEST(Task, DeepChainsUseSymmetricTransfer) {
  // Optimised builds turn each transfer into a tail call, so this depth would overflow the
  // stack only if a level resumed the next by a nested call. Sanitizers and GCC at -O0 keep
  // every frame, so there the test checks only the result, on a shallower chain.
#if defined(MK_SANITIZED) || !defined(__OPTIMIZE__)
  constexpr int depth = 1000;
#else
  constexpr int depth = 100000;
#endif
  std::optional<int> value;
  std::string failure;
  drive(chain(depth), value, failure);
  ASSERT_TRUE(value) << failure;
  EXPECT_EQ(*value, depth + 2);
}

TEST(Task, ExceptionsPropagateToTheAwaiter) {
  std::optional<int> value;
  std::string failure;
  drive(rethrows_through(), value, failure);
  EXPECT_FALSE(value);
  EXPECT_EQ(failure, "deep failure");
}

TEST(Task, IsLazyAndDestroyingUnstartedTaskRunsNothing) {
  bool ran = false;
  { auto task = sets(ran); }
  EXPECT_FALSE(ran);
}

TEST(Task, AwaitingAnEmptyTaskThrows) {
  std::optional<int> value;
  std::string failure;
  drive(mk::Task<int>(), value, failure);
  EXPECT_FALSE(value);
  EXPECT_NE(failure.find("empty task"), std::string::npos);
}

}  // namespace
