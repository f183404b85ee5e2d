// System::remove_kernel: a kernel taken offline stops like a shut-down one, the others' sends
// and calls to it fail with `closed` (those already waiting on it too) instead of hanging, and
// the rest of the System runs on.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <vector>

#include "messages.h"
#include "mk/kernel.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

using mk_test::Echo;
using mk_test::EchoReply;
using mk_test::register_echo;

std::unique_ptr<mk::System> boot_with_echo(std::size_t kernels) {
  auto system = mk::test::boot(mk::test::config_for(kernels));
  if (system) {
    EXPECT_TRUE(system->for_each_kernel(register_echo).ok());
  }
  return system;
}

/// How calls from one kernel to another ended.
struct CallTally {
  std::size_t ok = 0;
  std::size_t closed = 0;
  std::size_t other = 0;
};

TEST(RemoveKernel, CallsToAnOfflineKernelFailWithClosedAndTheOthersRunOn) {
  auto system = boot_with_echo(3);
  ASSERT_TRUE(system);
  ASSERT_TRUE(system->remove_kernel(1).ok());
  EXPECT_EQ(system->size(), 3u);  // Ids are not reused.

  auto outcome = system->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<mk::Errc>> {
    std::vector<mk::Errc> codes;
    EXPECT_FALSE(k.is_online(1));
    EXPECT_TRUE(k.is_online(2));
    auto to_offline = co_await k.call(1, Echo{1, k.id()});
    codes.push_back(to_offline ? mk::Errc::internal : to_offline.error().code);
    auto sent = co_await k.send(1, Echo{2, k.id()});
    codes.push_back(sent ? mk::Errc::internal : sent.error().code);
    auto to_online = co_await k.call(2, Echo{3, k.id()});
    EXPECT_TRUE(to_online.ok());
    co_return codes;
  });
  ASSERT_TRUE(outcome.ok()) << outcome.error().describe();
  EXPECT_EQ(*outcome, (std::vector<mk::Errc>{mk::Errc::closed, mk::Errc::closed}));

  auto run_on_offline = system->run(1, [](mk::Kernel&) -> mk::Task<void> { co_return; });
  ASSERT_FALSE(run_on_offline.ok());
  EXPECT_EQ(run_on_offline.error().code, mk::Errc::not_found);
  std::vector<mk::KernelId> visited;
  ASSERT_TRUE(system->for_each_kernel([&](mk::Kernel& k) { visited.push_back(k.id()); }).ok());
  EXPECT_EQ(visited, (std::vector<mk::KernelId>{0, 2}));
  EXPECT_TRUE(system->shutdown().ok());
}

constexpr int kCallers = 10;
constexpr int kCallsEach = 2000;

/// Calls kernel `to` kCallsEach times, tallying how each call ended.
mk::Task<void> keep_calling(mk::Kernel& k, mk::KernelId to, std::shared_ptr<CallTally> tally,
                            std::shared_ptr<std::atomic<int>> answered,
                            std::shared_ptr<std::atomic<int>> finished) {
  for (int i = 0; i < kCallsEach; ++i) {
    auto reply = co_await k.call(to, Echo{1, k.id()});
    if (reply) {
      ++tally->ok;
      answered->fetch_add(1);
    } else if (reply.error().code == mk::Errc::closed) {
      ++tally->closed;
    } else {
      ++tally->other;
    }
  }
  finished->fetch_add(1);
}

TEST(RemoveKernel, CallsInFlightWhenItGoesOfflineAllEnd) {
  auto system = boot_with_echo(3);
  ASSERT_TRUE(system);
  // Only kernel 0's thread touches the tally; `finished` publishes it to this thread.
  auto tally = std::make_shared<CallTally>();
  auto answered = std::make_shared<std::atomic<int>>(0);
  auto finished = std::make_shared<std::atomic<int>>(0);
  for (int caller = 0; caller < kCallers; ++caller) {
    ASSERT_TRUE(system
                    ->spawn(0,
                            [tally, answered, finished](mk::Kernel& k) {
                              return keep_calling(k, 2, tally, answered, finished);
                            })
                    .ok());
  }
  // Kernel 2 goes offline with calls to it in flight.
  mk::test::wait_until([&] { return answered->load() >= kCallers; });
  ASSERT_TRUE(system->remove_kernel(2).ok());
  // Every call was answered or failed; none waits for ever.
  mk::test::wait_until([&] { return finished->load() == kCallers; });
  EXPECT_EQ(tally->ok + tally->closed + tally->other,
            static_cast<std::size_t>(kCallers * kCallsEach));
  EXPECT_GT(tally->closed, 0u);
  EXPECT_EQ(tally->other, 0u);
}

TEST(RemoveKernel, BadRequestsAreRefused) {
  auto system = boot_with_echo(2);
  ASSERT_TRUE(system);
  auto absent = system->remove_kernel(7);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, mk::Errc::not_found);

  mk::System* raw = system.get();
  auto from_kernel = system->run(0, [raw](mk::Kernel&) -> mk::Task<bool> {
    auto removed = raw->remove_kernel(1);
    co_return !removed.ok() && removed.error().code == mk::Errc::invalid_argument;
  });
  ASSERT_TRUE(from_kernel.ok());
  EXPECT_TRUE(*from_kernel);

  ASSERT_TRUE(system->remove_kernel(1).ok());
  auto again = system->remove_kernel(1);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, mk::Errc::not_found);
  auto last = system->remove_kernel(0);
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(last.error().message.find("last"), std::string::npos) << last.error().message;

  ASSERT_TRUE(system->shutdown().ok());
  auto late = system->remove_kernel(0);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, mk::Errc::shutting_down);
}

TEST(RemoveKernel, AnAddedKernelCanGoOfflineAgain) {
  auto skb = mk::Skb::discover();
  ASSERT_TRUE(skb.ok());
  mk::Config config;
  config.cores = {skb->usable_cores().front()};
  config.kernels_per_core = 2;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  auto added = system->add_kernel(skb->usable_cores().back());
  ASSERT_TRUE(added.ok()) << added.error().describe();
  ASSERT_TRUE(system->remove_kernel(*added).ok());
  auto seen = system->run(0, [id = *added](mk::Kernel& k) -> mk::Task<bool> {
    co_return !k.is_online(id) && k.is_online(0);
  });
  ASSERT_TRUE(seen.ok());
  EXPECT_TRUE(*seen);
}

}  // namespace
