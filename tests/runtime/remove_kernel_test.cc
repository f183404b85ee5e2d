// System::remove_kernel: a kernel taken offline stops like a shut-down one, the others' sends
// and calls to it fail with `closed` (those already waiting on it too) instead of hanging, and
// the rest of the System runs on; with kernels as threads and as processes.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "messages.h"
#include "mk/kernel.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace remove_kernel_test {

using mk::test::code_of;
using mk_test::Echo;
using mk_test::EchoReply;
using mk_test::register_echo;

/// How calls from one kernel to another ended; kept on the calling kernel.
struct CallTally {
  std::uint64_t ok = 0;
  std::uint64_t closed = 0;
  std::uint64_t other = 0;
  std::uint32_t finished = 0;
};

struct Callers {
  explicit Callers(mk::Kernel&) {}
  CallTally tally;
};

/// What kernel 0 sees once kernel 1 is offline.
struct SeenOffline {
  bool one_online = true;
  bool two_online = false;
  std::int64_t call = 0;
  std::int64_t send = 0;
  std::int64_t live_call = 0;
};

constexpr std::uint32_t kVisits = 1;  ///< for_each_kernel's visits, per kernel.

class RemoveKernel : public mk::test::BothIsolations {
 protected:
  std::unique_ptr<mk::System> boot_with_echo(std::size_t kernels) {
    mk::Config config = this->config(kernels);
    config.setup = register_echo;
    return mk::test::boot(config);
  }
};

TEST_P(RemoveKernel, CallsToAnOfflineKernelFailWithClosedAndTheOthersRunOn) {
  auto system = boot_with_echo(3);
  ASSERT_TRUE(system);
  ASSERT_TRUE(system->remove_kernel(1).ok());
  EXPECT_EQ(system->size(), 3u);  // Ids are not reused.

  auto seen = system->run(0, [](mk::Kernel& k) -> mk::Task<SeenOffline> {
    SeenOffline seen;
    seen.one_online = k.is_online(1);
    seen.two_online = k.is_online(2);
    seen.call = code_of(co_await k.call(1, Echo{1, k.id()}));
    seen.send = code_of(co_await k.send(1, Echo{2, k.id()}));
    seen.live_call = code_of(co_await k.call(2, Echo{3, k.id()}));
    co_return seen;
  });
  ASSERT_TRUE(seen.ok()) << seen.error().describe();
  EXPECT_FALSE(seen->one_online);
  EXPECT_TRUE(seen->two_online);
  EXPECT_EQ(seen->call, code_of(mk::Errc::closed));
  EXPECT_EQ(seen->send, code_of(mk::Errc::closed));
  EXPECT_EQ(seen->live_call, mk::test::kSucceeded);

  auto run_on_offline = system->run(1, [](mk::Kernel&) -> mk::Task<void> { co_return; });
  ASSERT_FALSE(run_on_offline.ok());
  EXPECT_EQ(run_on_offline.error().code, mk::Errc::not_found);
  // for_each_kernel skips the offline kernel (a run on it would fail) and visits the others.
  ASSERT_TRUE(system->for_each_kernel([](mk::Kernel& k) { mk::test::add(k, kVisits, 1); }).ok());
  for (mk::KernelId k : {0u, 2u}) {
    auto visits = mk::test::peek(*system, k, kVisits);
    ASSERT_TRUE(visits.ok()) << visits.error().describe();
    EXPECT_EQ(*visits, std::optional<std::int64_t>(1)) << "kernel " << k;
  }
  EXPECT_TRUE(system->shutdown().ok());
}

constexpr std::uint32_t kCallers = 10;
constexpr int kCallsEach = 2000;

/// Calls kernel `to` kCallsEach times, tallying how each call ended.
mk::Task<void> keep_calling(mk::Kernel& k, mk::KernelId to) {
  for (int i = 0; i < kCallsEach; ++i) {
    auto reply = co_await k.call(to, Echo{1, k.id()});
    CallTally& tally = k.extension<Callers>().tally;
    if (reply) {
      ++tally.ok;
    } else if (reply.error().code == mk::Errc::closed) {
      ++tally.closed;
    } else {
      ++tally.other;
    }
  }
  ++k.extension<Callers>().tally.finished;
}

/// The tally once `ok` calls were answered and `finished` callers are done.
mk::Task<CallTally> await_tally(mk::Kernel& k, std::uint64_t ok, std::uint32_t finished) {
  while (true) {
    const CallTally& tally = k.extension<Callers>().tally;
    if (tally.ok >= ok && tally.finished >= finished) co_return tally;
    co_await k.sleep_for(std::chrono::milliseconds(1));
  }
}

TEST_P(RemoveKernel, CallsInFlightWhenItGoesOfflineAllEnd) {
  auto system = boot_with_echo(3);
  ASSERT_TRUE(system);
  for (std::uint32_t caller = 0; caller < kCallers; ++caller) {
    ASSERT_TRUE(system->spawn(0, [](mk::Kernel& k) { return keep_calling(k, 2); }).ok());
  }
  // Kernel 2 goes offline with calls to it in flight.
  auto answered = system->run(0, [](mk::Kernel& k) { return await_tally(k, kCallers, 0); });
  ASSERT_TRUE(answered.ok()) << answered.error().describe();
  ASSERT_TRUE(system->remove_kernel(2).ok());
  // Every call was answered or failed; none waits for ever.
  auto tally = system->run(0, [](mk::Kernel& k) { return await_tally(k, 0, kCallers); });
  ASSERT_TRUE(tally.ok()) << tally.error().describe();
  EXPECT_EQ(tally->ok + tally->closed + tally->other, std::uint64_t{kCallers} * kCallsEach);
  EXPECT_GT(tally->closed, 0u);
  EXPECT_EQ(tally->other, 0u);
}

TEST_P(RemoveKernel, BadRequestsAreRefused) {
  auto system = boot_with_echo(2);
  ASSERT_TRUE(system);
  auto absent = system->remove_kernel(7);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, mk::Errc::not_found);

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

TEST_P(RemoveKernel, AnAddedKernelCanGoOfflineAgain) {
  auto skb = mk::Skb::discover();
  ASSERT_TRUE(skb.ok());
  mk::Config config;
  config.cores = {skb->usable_cores().front()};
  config.kernels_per_core = 2;
  config.isolation = isolation();
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  auto added = system->add_kernel(skb->usable_cores().back());
  ASSERT_TRUE(added.ok()) << added.error().describe();
  ASSERT_TRUE(system->remove_kernel(*added).ok());
  auto seen = system->run(
      0,
      [](mk::Kernel& k, mk::KernelId id) -> mk::Task<bool> {
        co_return !k.is_online(id) && k.is_online(0);
      },
      *added);
  ASSERT_TRUE(seen.ok());
  EXPECT_TRUE(*seen);
}

INSTANTIATE_TEST_SUITE_P(Isolations, RemoveKernel, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

// Threads only: a kernel process has no System to call back into.
TEST(RemoveKernelOnThreads, RefusedFromAKernelsOwnThread) {
  auto system = mk::test::boot(mk::test::config_for(2));
  ASSERT_TRUE(system);
  mk::System* raw = system.get();
  auto from_kernel = system->run(0, [raw](mk::Kernel&) -> mk::Task<bool> {
    auto removed = raw->remove_kernel(1);
    co_return !removed.ok() && removed.error().code == mk::Errc::invalid_argument;
  });
  ASSERT_TRUE(from_kernel.ok());
  EXPECT_TRUE(*from_kernel);
}

}  // namespace remove_kernel_test
