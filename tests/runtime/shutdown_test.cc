// Shutdown: calls in flight end with shutting_down; later work is refused; with kernels as
// threads and as processes.
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
using mk::test::code_of;
using mk_test::EchoReply;
using mk_test::Silent;

constexpr int kCalls = 10;
constexpr std::int64_t kUnset = -2;

/// What kernel 0's callers saw; written while kernel 0 stops, so kept in memory it shares
/// with the test in either isolation.
struct InFlight {
  std::atomic<std::int64_t> call[kCalls];
  std::atomic<std::int64_t> send[kCalls];
  std::atomic<int> finished{0};
};

class Shutdown : public mk::test::BothIsolations {};

TEST_P(Shutdown, CallsInFlightEndWithShuttingDownAndLaterSendsAreRefused) {
  mk::test::Shared<InFlight> seen;
  for (int i = 0; i < kCalls; ++i) {
    seen->call[i].store(kUnset);
    seen->send[i].store(kUnset);
  }
  auto system = mk::test::boot(config(2));
  ASSERT_TRUE(system);
  auto added = system->run(1, [](mk::Kernel& k) -> mk::Task<mk::Result<void>> {
    // Never answers: its task sleeps for a day.
    co_return k.handle<Silent>(
        [](const Silent&, const mk::MessageContext& c) -> mk::Task<EchoReply> {
          co_await c.kernel.sleep_for(24h);
          co_return EchoReply{};
        });
  });
  ASSERT_TRUE(added.ok()) << added.error().describe();
  ASSERT_TRUE(added->ok()) << added->error().describe();
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(system
                    ->spawn(
                        0,
                        [](mk::Kernel& k, InFlight* out, int index) -> mk::Task<void> {
                          auto reply = co_await k.call(1, Silent{1});
                          out->call[index].store(code_of(reply));
                          auto sent = co_await k.send(1, mk_test::Numbered{0, 0});
                          out->send[index].store(code_of(sent));
                          out->finished.fetch_add(1);
                        },
                        seen.get(), i)
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
  EXPECT_EQ(seen->finished.load(), kCalls);
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(seen->call[i].load(), code_of(mk::Errc::shutting_down)) << "call " << i;
    EXPECT_EQ(seen->send[i].load(), code_of(mk::Errc::shutting_down)) << "call " << i;
  }

  // After shutdown: refused, not undefined.
  auto late = system->spawn(0, [](mk::Kernel&) -> mk::Task<void> { co_return; });
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, mk::Errc::shutting_down);
  auto late_run = system->run(1, [](mk::Kernel&) -> mk::Task<int> { co_return 1; });
  ASSERT_FALSE(late_run.ok());
  EXPECT_EQ(late_run.error().code, mk::Errc::shutting_down);
  EXPECT_TRUE(system->shutdown().ok());  // Idempotent.
  // No id reaches a kernel any more.
  EXPECT_EQ(system->size(), 0u);
  EXPECT_FALSE(system->is_online(0));
  EXPECT_FALSE(system->has_failed(0));
  EXPECT_EQ(system->core_of(0).error().code, mk::Errc::not_found);
}

TEST_P(Shutdown, DestroyingARunningSystemStopsEverything) {
  // Under ASan, anything leaked here (frames, rings, items) fails the run.
  auto system = mk::test::boot(config(4));
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

INSTANTIATE_TEST_SUITE_P(Isolations, Shutdown, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace
