// The simulated executor and the threaded one give the same results for the same
// deterministic workload.
#include <gtest/gtest.h>

#include <vector>

#include "mk/system.h"
#include "runtime/runtime_test_util.h"
#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

constexpr std::size_t kKernels = 8;

/// A kernel's running total of the Adds it received.
struct Total {
  explicit Total(mk::Kernel&) {}
  std::uint64_t value = 0;
};

void register_handlers(mk::Kernel& k) {
  (void)k.handle<Add>([&k](const Add& add) {
    k.extension<Total>().value += add.value;
    return Value{k.extension<Total>().value};
  });
  // Passes the value on around the ring of kernels until the hops are spent.
  (void)k.handle<Pass>([&k](const Pass& pass) -> mk::Task<mk::Result<Value>> {
    if (pass.hops == 0) co_return Value{pass.value};
    const auto next = static_cast<mk::KernelId>((k.id() + 1) % k.system_size());
    auto reply = co_await k.call(next, Pass{pass.hops - 1, pass.value * 31 + k.id()});
    if (!reply.ok()) co_return reply.error();
    co_return Value{reply->value + 1};
  });
}

/// What the workload computes: each kernel's final total, and the values of the passes.
struct Outcome {
  std::vector<std::uint64_t> totals;
  std::vector<std::uint64_t> passes;
  bool operator==(const Outcome&) const = default;
};

/// Every kernel adds to its neighbours concurrently, then kernel 0 sends values around the
/// ring; the totals do not depend on the interleaving, so both executors must agree.
Outcome run_workload(mk::System& system) {
  Outcome outcome;
  EXPECT_TRUE(system.for_each_kernel(register_handlers).ok());
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    EXPECT_TRUE(system
                    .spawn(id,
                           [](mk::Kernel& k) -> mk::Task<void> {
                             for (std::uint64_t round = 1; round <= 10; ++round) {
                               for (std::size_t step = 1; step < kKernels; ++step) {
                                 const auto to =
                                     static_cast<mk::KernelId>((k.id() + step) % kKernels);
                                 (void)co_await k.call(to, Add{round * (k.id() + 1)});
                               }
                             }
                           })
                    .ok());
  }
  // Wait until every kernel received all its adds: 10 rounds from each of the 7 others.
  std::uint64_t expected = 0;
  for (std::uint64_t round = 1; round <= 10; ++round) {
    for (std::size_t id = 0; id < kKernels; ++id)
      expected += round * (id + 1);
  }
  for (mk::KernelId id = 0; id < kKernels; ++id) {
    // Bounded, so that a wrong total fails the test instead of hanging it.
    for (int attempt = 0; attempt < 100000; ++attempt) {
      auto total = system.run(id, [](mk::Kernel& k) -> mk::Task<std::uint64_t> {
        co_await k.sleep_for(std::chrono::microseconds(100));
        co_return k.extension<Total>().value;
      });
      EXPECT_TRUE(total.ok());
      if (!total.ok()) return outcome;
      std::uint64_t own = 0;
      for (std::uint64_t round = 1; round <= 10; ++round)
        own += round * (id + 1);
      if (*total == expected - own) {
        outcome.totals.push_back(*total);
        break;
      }
    }
  }
  auto passes = system.run(0, [](mk::Kernel& k) -> mk::Task<std::vector<std::uint64_t>> {
    std::vector<std::uint64_t> values;
    for (std::uint64_t start = 1; start <= 5; ++start) {
      auto reply = co_await k.call(1, Pass{start * 7, start});
      values.push_back(reply.ok() ? reply->value : 0);
    }
    co_return values;
  });
  EXPECT_TRUE(passes.ok());
  if (passes.ok()) outcome.passes = *passes;
  return outcome;
}

TEST(Equivalence, SimulatedAndThreadedExecutorsAgree) {
  auto threaded = mk::test::boot(mk::test::config_for(kKernels));
  ASSERT_TRUE(threaded);
  const Outcome real = run_workload(*threaded);
  ASSERT_TRUE(threaded->shutdown().ok());

  for (std::uint64_t seed : {1, 2, 3}) {
    auto sim = create(small_machine(kKernels, seed));
    ASSERT_TRUE(sim);
    const Outcome simulated = run_workload(sim->system());
    EXPECT_EQ(simulated, real) << "seed " << seed;
  }
  ASSERT_EQ(real.totals.size(), kKernels);
  EXPECT_EQ(real.passes.size(), 5u);
  EXPECT_NE(real.passes[0], 0u);
}

}  // namespace
}  // namespace mk_sim_test
