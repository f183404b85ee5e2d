// Timers on the threaded executor: sleeps wake in deadline order, call deadlines fire.
// Single-mode: timers are the kernel loop's, the same code whatever runs it; these tests
// check them on the threaded executor only, to keep the suite fast.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "messages.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

using namespace std::chrono_literals;

TEST(Timers, SleepsEndInDeadlineOrder) {
  auto system = mk::test::boot(mk::test::config_for(1));
  ASSERT_TRUE(system);
  std::vector<int> order;  // Kernel 0 only; read after run returns.
  auto done = system->run(0, [&order](mk::Kernel& k) -> mk::Task<void> {
    int finished = 0;
    for (int delay : {30, 10, 20}) {
      k.spawn([&order, &finished, delay](mk::Kernel& kernel) -> mk::Task<void> {
        co_await kernel.sleep_for(std::chrono::milliseconds(delay));
        order.push_back(delay);
        ++finished;
      });
    }
    while (finished < 3)
      co_await k.sleep_for(1ms);
  });
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
}

TEST(Timers, CallWithoutReplyTimesOutAndLateRepliesAreDropped) {
  auto system = mk::test::boot(mk::test::config_for(2));
  ASSERT_TRUE(system);
  ASSERT_TRUE(system
                  ->run(1,
                        [](mk::Kernel& k) -> mk::Task<void> {
                          auto added = k.handle<mk_test::Silent>(
                              [](const mk_test::Silent&,
                                 const mk::MessageContext& c) -> mk::Task<mk_test::EchoReply> {
                                co_await c.kernel.sleep_for(50ms);  // Answers too late.
                                co_return mk_test::EchoReply{7, 0, 1};
                              });
                          EXPECT_TRUE(added.ok());
                          co_return;
                        })
                  .ok());
  auto reply = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::Result<mk_test::EchoReply>> {
    auto first = co_await k.call(1, mk_test::Silent{1}, 1ms);
    co_await k.sleep_for(100ms);  // The late reply arrives meanwhile and is dropped.
    co_return first;
  });
  ASSERT_TRUE(reply.ok());
  ASSERT_FALSE(reply->ok());
  EXPECT_EQ(reply->error().code, mk::Errc::timed_out);
  // The late reply still arrives, finds no call waiting, and is counted as rejected.
  mk::test::wait_until([&] { return system->stats(0)->rejected_messages >= 1; });
}

// A call that ends, with its reply or because its peer failed, takes its deadline with it: an
// idle kernel must not wake up for calls that finished long ago.
TEST(Timers, AFinishedCallLeavesNoDeadlineArmed) {
  mk::Config config = mk::test::config_for(2);
  config.setup = mk_test::register_echo;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  auto deadlines = system->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<bool>> {
    std::vector<bool> armed;
    for (int i = 0; i < 100; ++i) {
      auto reply = co_await k.call(1, mk_test::Echo{static_cast<std::uint64_t>(i), 0}, 1h);
      if (!reply) co_return std::vector<bool>{};
    }
    armed.push_back(k.next_deadline().has_value());
    // Deadlines of calls still in flight stay armed; the earliest one is next.
    k.spawn([](mk::Kernel& kernel) -> mk::Task<void> {
      (void)co_await kernel.call(1, mk_test::Echo{1, 0}, 2h);
    });
    co_await k.yield();
    armed.push_back(k.next_deadline().has_value());
    co_return armed;
  });
  ASSERT_TRUE(deadlines.ok());
  EXPECT_EQ(*deadlines, (std::vector<bool>{false, true}));
}

}  // namespace
