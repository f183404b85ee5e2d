// Failed kernels: System::declare_failed and the stall detector declare a kernel failed; the
// others fail what waits on it (with `closed`) instead of hanging, fence it off, and wake the
// tasks waiting in until_failed. Declared failures with kernels as threads and as processes;
// the stall detector is the threaded executor's, so its tests run on threads only. Nothing
// here asserts on time.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "messages.h"
#include "mk/kernel.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace failure_test {

using namespace std::chrono_literals;
using mk::test::code_of;
using mk::test::kSucceeded;
using mk_test::AwaitFailure;
using mk_test::Echo;
using mk_test::EchoReply;
using mk_test::register_echo;

/// Keys of what spawned tasks record on their kernels.
constexpr std::uint32_t kWatcher = 1;
constexpr std::uint32_t kCaller = 2;

/// Answered only after the handler's kernel has slept `millis` of real time inside the
/// handler: a kernel stuck in user code.
struct Hog {
  static constexpr mk::MessageType kType = 40;
  using Reply = EchoReply;
  std::uint32_t millis;
};

mk::Result<void> register_handlers(mk::Kernel& kernel) {
  if (auto echo = register_echo(kernel); !echo) return echo;
  auto hog = kernel.handle<Hog>([](const Hog& hog, const mk::MessageContext& context) {
    std::this_thread::sleep_for(std::chrono::milliseconds(hog.millis));
    return EchoReply{hog.millis, 0, context.kernel.id()};
  });
  if (!hog) return hog;
  return mk_test::register_await_failure(kernel);
}

std::unique_ptr<mk::System> boot_with(std::size_t kernels, mk::Isolation isolation,
                                      std::optional<std::chrono::nanoseconds> stall = {}) {
  mk::Config config = mk::test::config_for(kernels, isolation);
  config.stall_timeout = stall;
  config.setup = register_handlers;
  return mk::test::boot(config);
}

/// Records, under kWatcher, how until_failed(peer) ended on this kernel.
mk::Task<void> watch(mk::Kernel& k, mk::KernelId peer) {
  auto failed = co_await k.until_failed(peer);
  mk::test::record(k, kWatcher, code_of(failed));
}

/// What kernel 0 sees of kernel 1 after kernel 1 failed.
struct AfterFailure {
  bool has_failed = false;
  bool online = true;
  std::int64_t call = 0;
  std::int64_t send = 0;
  std::int64_t until_failed = 0;
  std::int64_t live_call = 0;
};

class Failure : public mk::test::BothIsolations {};

TEST_P(Failure, ADeclaredFailureFailsCallsToItAndWakesItsWatchers) {
  auto system = boot_with(4, isolation());
  ASSERT_TRUE(system);
  // Kernel 2 waits in until_failed(1); kernel 0 then calls kernel 1, whose handler never
  // answers before the failure; both end once kernel 1 is declared failed.
  ASSERT_TRUE(system->spawn(2, [](mk::Kernel& k) { return watch(k, 1); }).ok());
  ASSERT_TRUE(system
                  ->spawn(0,
                          [](mk::Kernel& k) -> mk::Task<void> {
                            // Kernel 1 waits for kernel 3 to fail: it will not answer.
                            auto reply = co_await k.call(1, AwaitFailure{3});
                            mk::test::record(k, kCaller, code_of(reply));
                          })
                  .ok());
  EXPECT_FALSE(system->has_failed(1));
  ASSERT_TRUE(system->declare_failed(1).ok());
  EXPECT_TRUE(system->has_failed(1));
  EXPECT_FALSE(system->is_online(1));
  ASSERT_TRUE(system->wait_until_failed(1, 10s).ok());
  auto watcher = mk::test::collect(*system, 2, kWatcher);
  ASSERT_TRUE(watcher.ok()) << watcher.error().describe();
  EXPECT_EQ(*watcher, kSucceeded);
  auto caller = mk::test::collect(*system, 0, kCaller);
  ASSERT_TRUE(caller.ok()) << caller.error().describe();
  EXPECT_EQ(*caller, code_of(mk::Errc::closed));

  auto after = system->run(0, [](mk::Kernel& k) -> mk::Task<AfterFailure> {
    AfterFailure seen;
    seen.has_failed = k.has_failed(1);
    seen.online = k.is_online(1);
    seen.call = code_of(co_await k.call(1, Echo{1, k.id()}));
    seen.send = code_of(co_await k.send(1, Echo{2, k.id()}));
    seen.until_failed = code_of(co_await k.until_failed(1));
    seen.live_call = code_of(co_await k.call(3, Echo{3, k.id()}));
    co_return seen;
  });
  ASSERT_TRUE(after.ok()) << after.error().describe();
  EXPECT_TRUE(after->has_failed);
  EXPECT_FALSE(after->online);
  EXPECT_EQ(after->call, code_of(mk::Errc::closed));
  EXPECT_EQ(after->send, code_of(mk::Errc::closed));
  EXPECT_EQ(after->until_failed, kSucceeded);
  EXPECT_EQ(after->live_call, kSucceeded);
  // Declaring it again is no error, and removing it asks for nothing more.
  EXPECT_TRUE(system->declare_failed(1).ok());
  EXPECT_TRUE(system->remove_kernel(1).ok());
  auto run_on_failed = system->run(1, [](mk::Kernel&) -> mk::Task<void> { co_return; });
  ASSERT_FALSE(run_on_failed.ok());
  EXPECT_EQ(run_on_failed.error().code, mk::Errc::not_found);
  EXPECT_TRUE(system->shutdown().ok());
}

TEST_P(Failure, BadDeclarationsAreRefused) {
  auto system = boot_with(2, isolation());
  ASSERT_TRUE(system);
  auto absent = system->declare_failed(7);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, mk::Errc::not_found);
  ASSERT_TRUE(system->declare_failed(0).ok());
  auto last = system->declare_failed(1);
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().code, mk::Errc::invalid_argument);
  auto never = system->wait_until_failed(1, 1ms);
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.error().code, mk::Errc::timed_out);
  EXPECT_TRUE(system->shutdown().ok());
  auto late = system->declare_failed(1);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, mk::Errc::shutting_down);
}

TEST_P(Failure, AKernelTakenOfflineWithoutFailingEndsItsWatchersWithClosed) {
  auto system = boot_with(3, isolation());
  ASSERT_TRUE(system);
  ASSERT_TRUE(system->spawn(0, [](mk::Kernel& k) { return watch(k, 2); }).ok());
  // Let the watcher start waiting before the removal.
  auto ping = system->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    co_return (co_await k.call(1, Echo{1, k.id()})).ok();
  });
  ASSERT_TRUE(ping.ok() && *ping);
  ASSERT_TRUE(system->remove_kernel(2).ok());
  auto watcher = mk::test::collect(*system, 0, kWatcher);
  ASSERT_TRUE(watcher.ok()) << watcher.error().describe();
  EXPECT_EQ(*watcher, code_of(mk::Errc::closed));
  auto waited = system->wait_until_failed(2, 10s);
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.error().code, mk::Errc::closed);
  EXPECT_FALSE(system->has_failed(2));
  EXPECT_TRUE(system->shutdown().ok());
}

TEST_P(Failure, AShutdownEndsTheWatchersWithShuttingDown) {
  // Shared: the watcher ends while its kernel shuts down, when no run can ask it any more.
  mk::test::Shared<std::atomic<std::int64_t>> watcher;
  watcher->store(-2);
  auto system = boot_with(2, isolation());
  ASSERT_TRUE(system);
  ASSERT_TRUE(system
                  ->spawn(
                      0,
                      [](mk::Kernel& k, std::atomic<std::int64_t>* seen) -> mk::Task<void> {
                        auto failed = co_await k.until_failed(1);
                        seen->store(code_of(failed));
                      },
                      watcher.get())
                  .ok());
  auto ping = system->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    co_return (co_await k.call(1, Echo{1, k.id()})).ok();
  });
  ASSERT_TRUE(ping.ok() && *ping);
  EXPECT_TRUE(system->shutdown().ok());
  EXPECT_EQ(watcher->load(), code_of(mk::Errc::shutting_down));
}

INSTANTIATE_TEST_SUITE_P(Isolations, Failure, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

// Threads only: a kernel process has no System to call back into.
TEST(FailureOnThreads, DeclaringFromAKernelThreadIsRefused) {
  auto system = boot_with(2, mk::Isolation::threads);
  ASSERT_TRUE(system);
  auto from_kernel = system->run(1, [&system](mk::Kernel&) -> mk::Task<mk::Errc> {
    auto refused = system->declare_failed(0);
    co_return refused ? mk::Errc::internal : refused.error().code;
  });
  ASSERT_TRUE(from_kernel.ok());
  EXPECT_EQ(*from_kernel, mk::Errc::invalid_argument);
}

// The stall detector is the threaded executor's (Config::stall_timeout): threads only.
TEST(FailureOnThreads, TheStallDetectorDeclaresAStuckKernelFailed) {
  auto system = boot_with(3, mk::Isolation::threads, 50ms);
  ASSERT_TRUE(system);
  // Kernel 1 hogs its thread far past the stall timeout; kernel 0's call to it must end, with
  // closed, as soon as the detector declares it failed, not when the hog ends.
  ASSERT_TRUE(system
                  ->spawn(0,
                          [](mk::Kernel& k) -> mk::Task<void> {
                            auto reply = co_await k.call(1, Hog{500});
                            mk::test::record(k, kCaller, code_of(reply));
                          })
                  .ok());
  ASSERT_TRUE(system->wait_until_failed(1, 60s).ok());
  auto caller = mk::test::collect(*system, 0, kCaller);
  ASSERT_TRUE(caller.ok()) << caller.error().describe();
  EXPECT_EQ(*caller, code_of(mk::Errc::closed));
  // The hog's answer, when it finally comes, reaches nobody; the others serve on.
  auto live = system->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    co_return (co_await k.call(2, Echo{1, k.id()})).ok();
  });
  ASSERT_TRUE(live.ok());
  EXPECT_TRUE(*live);
  EXPECT_FALSE(system->has_failed(0));
  EXPECT_FALSE(system->has_failed(2));
  EXPECT_TRUE(system->shutdown().ok());
}

TEST(FailureOnThreads, IdleKernelsAreNotStalled) {
  auto system = boot_with(4, mk::Isolation::threads, 50ms);
  ASSERT_TRUE(system);
  // Idle kernels sleep; sleeping is not stalling, however long it lasts.
  std::this_thread::sleep_for(300ms);
  for (mk::KernelId id = 0; id < 4; ++id)
    EXPECT_FALSE(system->has_failed(id)) << "kernel " << id;
  EXPECT_TRUE(system->shutdown().ok());
}

TEST(FailureOnThreads, AStallTimeoutOutOfRangeIsRefused) {
  mk::Config config = mk::test::config_for(2);
  config.stall_timeout = 10us;
  auto system = mk::System::boot(config);
  ASSERT_FALSE(system.ok());
  EXPECT_EQ(system.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(system.error().message.find("stall_timeout"), std::string::npos);
}

}  // namespace failure_test
