// Failed kernels: System::declare_failed and the stall detector declare a kernel failed; the
// others fail what waits on it (with `closed`) instead of hanging, fence it off, and wake the
// tasks waiting in until_failed. Nothing here asserts on time.
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

namespace {

using namespace std::chrono_literals;
using mk_test::Echo;
using mk_test::EchoReply;
using mk_test::register_echo;

/// Answered only after the handler's kernel has slept `millis` of real time inside the
/// handler: a kernel stuck in user code.
struct Hog {
  static constexpr mk::MessageType kType = 40;
  using Reply = EchoReply;
  std::uint32_t millis;
};

void register_hog(mk::Kernel& kernel) {
  auto added = kernel.handle<Hog>([](const Hog& hog, const mk::MessageContext& context) {
    std::this_thread::sleep_for(std::chrono::milliseconds(hog.millis));
    return EchoReply{hog.millis, 0, context.kernel.id()};
  });
  EXPECT_TRUE(added.ok());
}

/// Answered once kernel `peer` has failed: a call that waits for a failure.
struct AwaitFailure {
  static constexpr mk::MessageType kType = 41;
  using Reply = EchoReply;
  mk::KernelId peer;
};

void register_await_failure(mk::Kernel& kernel) {
  auto added = kernel.handle<AwaitFailure>(
      [](const AwaitFailure& ask, const mk::MessageContext& context) -> mk::Task<EchoReply> {
        auto failed = co_await context.kernel.until_failed(ask.peer);
        co_return EchoReply{failed ? 1u : 0u, ask.peer, context.kernel.id()};
      });
  EXPECT_TRUE(added.ok());
}

std::unique_ptr<mk::System> boot_with(std::size_t kernels, mk::Config config = {}) {
  mk::Config sized = mk::test::config_for(kernels);
  sized.stall_timeout = config.stall_timeout;
  auto system = mk::test::boot(sized);
  if (system) {
    EXPECT_TRUE(system
                    ->for_each_kernel([](mk::Kernel& k) {
                      register_echo(k);
                      register_hog(k);
                      register_await_failure(k);
                    })
                    .ok());
  }
  return system;
}

TEST(Failure, ADeclaredFailureFailsCallsToItAndWakesItsWatchers) {
  auto system = boot_with(4);
  ASSERT_TRUE(system);
  // Kernel 2 waits in until_failed(1); kernel 0 then calls kernel 1, whose handler never
  // answers before the failure; both end once kernel 1 is declared failed.
  auto watcher = std::make_shared<std::atomic<int>>(-1);
  ASSERT_TRUE(system
                  ->spawn(2,
                          [watcher](mk::Kernel& k) -> mk::Task<void> {
                            auto failed = co_await k.until_failed(1);
                            watcher->store(failed.ok() ? 1 : 0);
                          })
                  .ok());
  auto caller = std::make_shared<std::atomic<int>>(-1);
  ASSERT_TRUE(system
                  ->spawn(0,
                          [caller](mk::Kernel& k) -> mk::Task<void> {
                            // Kernel 1 waits for kernel 3 to fail: it will not answer.
                            auto reply = co_await k.call(1, AwaitFailure{3});
                            caller->store(reply ? 0 : static_cast<int>(reply.error().code));
                          })
                  .ok());
  EXPECT_FALSE(system->has_failed(1));
  ASSERT_TRUE(system->declare_failed(1).ok());
  EXPECT_TRUE(system->has_failed(1));
  EXPECT_FALSE(system->is_online(1));
  ASSERT_TRUE(system->wait_until_failed(1, 10s).ok());
  mk::test::wait_until([&] { return watcher->load() != -1 && caller->load() != -1; });
  EXPECT_EQ(watcher->load(), 1);
  EXPECT_EQ(caller->load(), static_cast<int>(mk::Errc::closed));

  auto after = system->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<mk::Errc>> {
    std::vector<mk::Errc> codes;
    EXPECT_TRUE(k.has_failed(1));
    EXPECT_FALSE(k.is_online(1));
    auto call = co_await k.call(1, Echo{1, k.id()});
    codes.push_back(call ? mk::Errc::internal : call.error().code);
    auto sent = co_await k.send(1, Echo{2, k.id()});
    codes.push_back(sent ? mk::Errc::internal : sent.error().code);
    auto already = co_await k.until_failed(1);
    codes.push_back(already ? mk::Errc::internal : already.error().code);
    auto live = co_await k.call(3, Echo{3, k.id()});
    codes.push_back(live ? mk::Errc::internal : live.error().code);
    co_return codes;
  });
  ASSERT_TRUE(after.ok()) << after.error().describe();
  // internal stands for "succeeded".
  EXPECT_EQ(*after, (std::vector<mk::Errc>{mk::Errc::closed, mk::Errc::closed, mk::Errc::internal,
                                           mk::Errc::internal}));
  // Declaring it again is no error, and removing it asks for nothing more.
  EXPECT_TRUE(system->declare_failed(1).ok());
  EXPECT_TRUE(system->remove_kernel(1).ok());
  auto run_on_failed = system->run(1, [](mk::Kernel&) -> mk::Task<void> { co_return; });
  ASSERT_FALSE(run_on_failed.ok());
  EXPECT_EQ(run_on_failed.error().code, mk::Errc::not_found);
  EXPECT_TRUE(system->shutdown().ok());
}

TEST(Failure, BadDeclarationsAreRefused) {
  auto system = boot_with(2);
  ASSERT_TRUE(system);
  auto absent = system->declare_failed(7);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, mk::Errc::not_found);
  ASSERT_TRUE(system->declare_failed(0).ok());
  auto last = system->declare_failed(1);
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().code, mk::Errc::invalid_argument);
  auto from_kernel = system->run(1, [&system](mk::Kernel&) -> mk::Task<mk::Errc> {
    auto refused = system->declare_failed(0);
    co_return refused ? mk::Errc::internal : refused.error().code;
  });
  ASSERT_TRUE(from_kernel.ok());
  EXPECT_EQ(*from_kernel, mk::Errc::invalid_argument);
  auto never = system->wait_until_failed(1, 1ms);
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.error().code, mk::Errc::timed_out);
  EXPECT_TRUE(system->shutdown().ok());
  auto late = system->declare_failed(1);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, mk::Errc::shutting_down);
}

TEST(Failure, AKernelTakenOfflineWithoutFailingEndsItsWatchersWithClosed) {
  auto system = boot_with(3);
  ASSERT_TRUE(system);
  auto watcher = std::make_shared<std::atomic<int>>(-1);
  ASSERT_TRUE(system
                  ->spawn(0,
                          [watcher](mk::Kernel& k) -> mk::Task<void> {
                            auto failed = co_await k.until_failed(2);
                            watcher->store(failed ? 0 : static_cast<int>(failed.error().code));
                          })
                  .ok());
  // Let the watcher start waiting before the removal.
  auto ping = system->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    co_return (co_await k.call(1, Echo{1, k.id()})).ok();
  });
  ASSERT_TRUE(ping.ok() && *ping);
  ASSERT_TRUE(system->remove_kernel(2).ok());
  mk::test::wait_until([&] { return watcher->load() != -1; });
  EXPECT_EQ(watcher->load(), static_cast<int>(mk::Errc::closed));
  auto waited = system->wait_until_failed(2, 10s);
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.error().code, mk::Errc::closed);
  EXPECT_FALSE(system->has_failed(2));
  EXPECT_TRUE(system->shutdown().ok());
}

TEST(Failure, AShutdownEndsTheWatchersWithShuttingDown) {
  auto system = boot_with(2);
  ASSERT_TRUE(system);
  auto watcher = std::make_shared<std::atomic<int>>(-1);
  ASSERT_TRUE(system
                  ->spawn(0,
                          [watcher](mk::Kernel& k) -> mk::Task<void> {
                            auto failed = co_await k.until_failed(1);
                            watcher->store(failed ? 0 : static_cast<int>(failed.error().code));
                          })
                  .ok());
  auto ping = system->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    co_return (co_await k.call(1, Echo{1, k.id()})).ok();
  });
  ASSERT_TRUE(ping.ok() && *ping);
  EXPECT_TRUE(system->shutdown().ok());
  EXPECT_EQ(watcher->load(), static_cast<int>(mk::Errc::shutting_down));
}

TEST(Failure, TheStallDetectorDeclaresAStuckKernelFailed) {
  mk::Config config;
  config.stall_timeout = 50ms;
  auto system = boot_with(3, config);
  ASSERT_TRUE(system);
  // Kernel 1 hogs its thread far past the stall timeout; kernel 0's call to it must end, with
  // closed, as soon as the detector declares it failed, not when the hog ends.
  auto caller = std::make_shared<std::atomic<int>>(-1);
  ASSERT_TRUE(system
                  ->spawn(0,
                          [caller](mk::Kernel& k) -> mk::Task<void> {
                            auto reply = co_await k.call(1, Hog{500});
                            caller->store(reply ? 0 : static_cast<int>(reply.error().code));
                          })
                  .ok());
  ASSERT_TRUE(system->wait_until_failed(1, 60s).ok());
  mk::test::wait_until([&] { return caller->load() != -1; });
  EXPECT_EQ(caller->load(), static_cast<int>(mk::Errc::closed));
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

TEST(Failure, IdleKernelsAreNotStalled) {
  mk::Config config;
  config.stall_timeout = 50ms;
  auto system = boot_with(4, config);
  ASSERT_TRUE(system);
  // Idle kernels sleep; sleeping is not stalling, however long it lasts.
  std::this_thread::sleep_for(300ms);
  for (mk::KernelId id = 0; id < 4; ++id)
    EXPECT_FALSE(system->has_failed(id)) << "kernel " << id;
  EXPECT_TRUE(system->shutdown().ok());
}

TEST(Failure, AStallTimeoutOutOfRangeIsRefused) {
  mk::Config config = mk::test::config_for(2);
  config.stall_timeout = 10us;
  auto system = mk::System::boot(config);
  ASSERT_FALSE(system.ok());
  EXPECT_EQ(system.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(system.error().message.find("stall_timeout"), std::string::npos);
}

}  // namespace
