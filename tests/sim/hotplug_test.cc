// System::add_kernel and remove_kernel under the simulator: an added kernel's clock starts at
// the simulation's present and it exchanges calls with the booted kernels; calls to a kernel
// taken offline fail with `closed`; runs stay deterministic.
#include <gtest/gtest.h>

#include <vector>

#include "mk/simulation.h"
#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

/// What one run with a kernel added half-way saw.
struct HotplugRun {
  mk::KernelId added = 0;
  std::vector<std::uint64_t> replies;  ///< From kernel 0 to every kernel, then back to 0.
  bool clock_in_present = false;
  std::uint64_t trace_hash = 0;
};

HotplugRun run_with_added_kernel(std::uint64_t seed) {
  HotplugRun run;
  auto sim = create(small_machine(3, seed));
  if (!sim) return run;
  handle_bump_everywhere(*sim);
  // Some virtual time passes before the core comes online.
  EXPECT_TRUE(sim->run(0, [](mk::Kernel& k) -> mk::Task<void> { co_await k.sleep_for(5ms); }).ok());
  const mk::Instant online_at = sim->now();
  auto added = sim->system().add_kernel(5);
  EXPECT_TRUE(added.ok()) << (added.ok() ? "" : added.error().describe());
  if (!added) return run;
  run.added = *added;
  auto clock = sim->run(*added, [](mk::Kernel& k) -> mk::Task<mk::Instant> {
    auto registered = k.handle<Bump>([id = k.id()](const Bump& b) { return Value{b.value + id}; });
    EXPECT_TRUE(registered.ok());
    co_return k.now();
  });
  EXPECT_TRUE(clock.ok());
  run.clock_in_present = clock.ok() && *clock >= online_at;
  for (mk::KernelId from : {mk::KernelId{0}, *added}) {
    auto replies = sim->run(from, [](mk::Kernel& k) -> mk::Task<std::vector<std::uint64_t>> {
      std::vector<std::uint64_t> out;
      for (mk::KernelId to = 0; to < k.system_size(); ++to) {
        auto reply = co_await k.call(to, Bump{100});
        out.push_back(reply ? reply->value : 0);
      }
      co_return out;
    });
    EXPECT_TRUE(replies.ok());
    if (replies) run.replies.insert(run.replies.end(), replies->begin(), replies->end());
  }
  // Nothing is left to do: the added kernel sleeps like the others.
  EXPECT_TRUE(sim->run_until_idle(1s).ok());
  run.trace_hash = sim->trace_hash();
  return run;
}

TEST(SimHotplug, AnAddedKernelRunsOnVirtualTimeAndTalksToTheOthers) {
  const HotplugRun run = run_with_added_kernel(7);
  EXPECT_EQ(run.added, 3u);
  EXPECT_TRUE(run.clock_in_present);
  // Bump answers value + responder id: kernels 0 to 3, asked by 0 and then by 3.
  EXPECT_EQ(run.replies, (std::vector<std::uint64_t>{100, 101, 102, 103, 100, 101, 102, 103}));
}

TEST(SimHotplug, TheSameSeedGivesTheSameRun) {
  const HotplugRun first = run_with_added_kernel(11);
  const HotplugRun again = run_with_added_kernel(11);
  EXPECT_EQ(first.trace_hash, again.trace_hash);
  EXPECT_NE(first.trace_hash, 0u);
}

TEST(SimHotplug, ACoreInUseIsRefused) {
  auto sim = create(small_machine(3));
  ASSERT_TRUE(sim);
  auto core = sim->system().core_of(1);
  ASSERT_TRUE(core.ok());
  auto added = sim->system().add_kernel(*core);
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().code, mk::Errc::invalid_argument);
  EXPECT_EQ(sim->system().size(), 3u);
}

TEST(SimHotplug, CallsToARemovedKernelFailWithClosed) {
  auto sim = create(small_machine(3));
  ASSERT_TRUE(sim);
  handle_bump_everywhere(*sim);
  ASSERT_TRUE(sim->system().remove_kernel(1).ok());
  EXPECT_FALSE(sim->system().is_online(1));
  auto codes = sim->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<int>> {
    std::vector<int> out;
    for (mk::KernelId to = 0; to < k.system_size(); ++to) {
      auto reply = co_await k.call(to, Bump{1});
      out.push_back(reply ? 0 : static_cast<int>(reply.error().code));
    }
    co_return out;
  });
  ASSERT_TRUE(codes.ok()) << codes.error().describe();
  EXPECT_EQ(*codes, (std::vector<int>{0, static_cast<int>(mk::Errc::closed), 0}));
  EXPECT_TRUE(sim->run_until_idle(1s).ok());
}

}  // namespace
}  // namespace mk_sim_test
