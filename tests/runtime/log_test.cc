// The runtime's diagnostics go to the program's log handler when it sets one.
#include "mk/log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <string_view>

#include "mk/kernel.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

std::atomic<int> lines_seen{0};
std::atomic<bool> named_the_exception{false};

void count_line(std::string_view line) {
  lines_seen.fetch_add(1);
  if (line.find("spawned task broke") != std::string_view::npos) named_the_exception = true;
}

TEST(Log, DiagnosticsGoToTheHandlerUntilItIsReset) {
  ASSERT_EQ(mk::set_log_handler(count_line), nullptr);
  auto system = mk::test::boot(mk::test::config_for(1));
  ASSERT_TRUE(system);
  // A spawned task that throws is counted and logged in one line.
  auto spawned = system->run(0, [](mk::Kernel& k) -> mk::Task<void> {
    k.spawn([](mk::Kernel&) -> mk::Task<void> {
      throw std::runtime_error("spawned task broke");
      co_return;
    });
    co_return;
  });
  ASSERT_TRUE(spawned.ok()) << spawned.error().describe();
  mk::test::wait_until([&] { return system->stats(0)->task_failures == 1; });
  ASSERT_TRUE(system->shutdown().ok());
  EXPECT_GE(lines_seen.load(), 1);
  EXPECT_TRUE(named_the_exception.load());
  EXPECT_EQ(mk::set_log_handler(nullptr), count_line);
}

}  // namespace
