// Shutdown: calls in flight end with shutting_down; later work is refused.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "messages.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

using namespace std::chrono_literals;
using mk_test::EchoReply;
using mk_test::Silent;

TEST(Shutdown, CallsInFlightEndWithShuttingDownAndLaterSendsAreRefused) {
  constexpr int kCalls = 10;
  auto system = mk::test::boot(mk::test::config_for(2));
  ASSERT_TRUE(system);
  ASSERT_TRUE(
      system
          ->run(1,
                [](mk::Kernel& k) -> mk::Task<void> {
                  // Never answers: its task sleeps for a day.
                  auto added = k.handle<Silent>(
                      [](const Silent&, const mk::MessageContext& c) -> mk::Task<EchoReply> {
                        co_await c.kernel.sleep_for(24h);
                        co_return EchoReply{};
                      });
                  EXPECT_TRUE(added.ok());
                  co_return;
                })
          .ok());
  // Written by kernel 0's tasks, read after shutdown joined kernel 0's thread.
  std::vector<mk::Errc> call_errors;
  std::vector<mk::Errc> send_errors;
  std::atomic<int> finished{0};
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(
        system
            ->spawn(0,
                    [&](mk::Kernel& k) -> mk::Task<void> {
                      auto reply = co_await k.call(1, Silent{1});
                      call_errors.push_back(reply.ok() ? mk::Errc::internal : reply.error().code);
                      auto sent = co_await k.send(1, mk_test::Numbered{0, 0});
                      send_errors.push_back(sent.ok() ? mk::Errc::internal : sent.error().code);
                      finished.fetch_add(1);
                    })
            .ok());
  }
  mk::test::wait_until([&] { return system->stats(1)->messages_received >= kCalls; });
  // A blocked System::run on a task that never ends is released by shutdown too.
  std::atomic<bool> run_released{false};
  mk::Errc run_error = mk::Errc::internal;
  std::thread waiter([&] {
    auto never = system->run(0, [](mk::Kernel& k) -> mk::Task<int> {
      co_await k.sleep_for(24h);
      co_return 0;
    });
    run_error = never.ok() ? mk::Errc::internal : never.error().code;
    run_released.store(true);
  });
  // Give the run a chance to be posted before shutting down (either order must work).
  std::this_thread::sleep_for(10ms);

  ASSERT_TRUE(system->shutdown().ok());
  waiter.join();
  EXPECT_TRUE(run_released.load());
  EXPECT_EQ(run_error, mk::Errc::shutting_down);
  EXPECT_EQ(finished.load(), kCalls);
  ASSERT_EQ(call_errors.size(), static_cast<std::size_t>(kCalls));
  for (auto code : call_errors)
    EXPECT_EQ(code, mk::Errc::shutting_down);
  for (auto code : send_errors)
    EXPECT_EQ(code, mk::Errc::shutting_down);

  // After shutdown: refused, not undefined.
  auto late = system->spawn(0, [](mk::Kernel&) -> mk::Task<void> { co_return; });
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, mk::Errc::shutting_down);
  auto late_run = system->run(1, [](mk::Kernel&) -> mk::Task<int> { co_return 1; });
  ASSERT_FALSE(late_run.ok());
  EXPECT_EQ(late_run.error().code, mk::Errc::shutting_down);
  EXPECT_TRUE(system->shutdown().ok());  // Idempotent.
}

TEST(Shutdown, DestroyingARunningSystemStopsEverything) {
  // Under ASan, anything leaked here (frames, rings, items) fails the run.
  auto system = mk::test::boot(mk::test::config_for(4));
  ASSERT_TRUE(system);
  for (mk::KernelId k = 0; k < 4; ++k) {
    ASSERT_TRUE(system
                    ->spawn(k,
                            [](mk::Kernel& kernel) -> mk::Task<void> {
                              for (;;) {
                                auto next = (kernel.id() + 1) % kernel.system_size();
                                auto sent = co_await kernel.send(static_cast<mk::KernelId>(next),
                                                                 mk_test::Numbered{kernel.id(), 0});
                                if (!sent) co_return;
                                co_await kernel.sleep_for(100us);
                              }
                            })
                    .ok());
  }
  std::this_thread::sleep_for(20ms);
  system.reset();
  SUCCEED();
}

}  // namespace
