// System::add_kernel: a kernel started while the System runs serves tasks and calls like a
// booted one, and a bad request is refused with the reason, leaving the System as it was; with
// kernels as threads and as processes.
#include <gtest/gtest.h>

#include <vector>

#include "messages.h"
#include "mk/kernel.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

using mk_test::Echo;
using mk_test::EchoReply;
using mk_test::register_echo;

/// Calls every kernel from `k`; counts the replies that are right.
mk::Task<std::size_t> call_everyone(mk::Kernel& k) {
  std::size_t right = 0;
  for (mk::KernelId to = 0; to < k.system_size(); ++to) {
    auto reply = co_await k.call(to, Echo{to + 10ull, k.id()});
    if (reply && reply->value == (to + 10ull) * 2 + 1 && reply->responder == to) ++right;
  }
  co_return right;
}

class AddKernel : public mk::test::BothIsolations {
 protected:
  /// Boots one kernel on the first usable core, with room for four on each core; every
  /// kernel, booted or added, answers Echo.
  std::unique_ptr<mk::System> boot_one() {
    auto skb = mk::Skb::discover();
    EXPECT_TRUE(skb.ok());
    mk::Config config;
    config.cores = {skb->usable_cores().front()};
    config.kernels_per_core = 4;
    config.isolation = isolation();
    config.setup = register_echo;
    return mk::test::boot(config);
  }
};

TEST_P(AddKernel, AnAddedKernelRunsTasksAndExchangesCallsBothWays) {
  auto system = boot_one();
  ASSERT_TRUE(system);
  const mk::CoreId core = system->skb().usable_cores().back();

  auto added = system->add_kernel(core);
  ASSERT_TRUE(added.ok()) << added.error().describe();
  EXPECT_EQ(*added, 1u);
  EXPECT_EQ(system->size(), 2u);
  EXPECT_EQ(system->core_of(1).value(), core);

  auto seen = system->run(1, [](mk::Kernel& k) -> mk::Task<mk::KernelId> { co_return k.id(); });
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(*seen, 1u);

  // The booted kernel learns of the new one without being told: its size and its calls.
  for (mk::KernelId from : {0u, 1u}) {
    auto right = system->run(from, [](mk::Kernel& k) { return call_everyone(k); });
    ASSERT_TRUE(right.ok()) << right.error().describe();
    EXPECT_EQ(*right, 2u) << "from kernel " << from;
  }
  EXPECT_TRUE(system->stats(1).ok());
  EXPECT_TRUE(system->shutdown().ok());
  EXPECT_EQ(system->size(), 0u);
}

TEST_P(AddKernel, KernelsAddedOneByOneAllTalkToEachOther) {
  auto system = boot_one();
  ASSERT_TRUE(system);
  const auto& usable = system->skb().usable_cores();
  for (std::size_t i = 1; i < 6; ++i) {
    auto added = system->add_kernel(usable[i % usable.size()]);
    if (usable.size() == 1 && i >= 4) {
      // One usable core holds kernels_per_core kernels and no more.
      ASSERT_FALSE(added.ok());
      break;
    }
    ASSERT_TRUE(added.ok()) << added.error().describe();
    ASSERT_EQ(*added, i);
    auto seen =
        system->run(*added, [](mk::Kernel& k) -> mk::Task<mk::KernelId> { co_return k.id(); });
    ASSERT_TRUE(seen.ok());
    EXPECT_EQ(*seen, i);
  }
  for (mk::KernelId from = 0; from < system->size(); ++from) {
    auto right = system->run(from, [](mk::Kernel& k) { return call_everyone(k); });
    ASSERT_TRUE(right.ok()) << right.error().describe();
    EXPECT_EQ(*right, system->size()) << "from kernel " << from;
  }
}

TEST_P(AddKernel, BadRequestsAreRefusedAndChangeNothing) {
  auto system = boot_one();
  ASSERT_TRUE(system);
  const mk::CoreId first = system->skb().usable_cores().front();

  auto absent = system->add_kernel(1'000'000);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(absent.error().message.find("not usable"), std::string::npos) << absent.error().message;
  EXPECT_EQ(system->size(), 1u);

  // Three more fit on the first core (kernels_per_core = 4); the fifth does not.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(system->add_kernel(first).ok());
  auto over = system->add_kernel(first);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(over.error().message.find("kernels_per_core"), std::string::npos)
      << over.error().message;
  EXPECT_EQ(system->size(), 4u);

  ASSERT_TRUE(system->shutdown().ok());
  auto late = system->add_kernel(first);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, mk::Errc::shutting_down);
}

INSTANTIATE_TEST_SUITE_P(Isolations, AddKernel, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

// Threads only: a kernel process has no System to call back into.
TEST(AddKernelOnThreads, RefusedFromAKernelsOwnThread) {
  auto skb = mk::Skb::discover();
  ASSERT_TRUE(skb.ok());
  mk::Config config;
  config.cores = {skb->usable_cores().front()};
  config.kernels_per_core = 4;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  mk::System* raw = system.get();
  const mk::CoreId first = system->skb().usable_cores().front();
  auto refused = system->run(0, [raw, first](mk::Kernel&) -> mk::Task<bool> {
    auto added = raw->add_kernel(first);
    co_return !added.ok() && added.error().code == mk::Errc::invalid_argument;
  });
  ASSERT_TRUE(refused.ok());
  EXPECT_TRUE(*refused);
  EXPECT_EQ(system->size(), 1u);
}

}  // namespace
