// A concurrent history of NameService operations, recorded on 8 kernels, is linearizable.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <vector>

#include "mk/naming.h"
#include "mk/seed_harness.h"
#include "mk/simulation.h"
#include "runtime/runtime_test_util.h"
#include "services/test_models.h"
#include "support/linearizability.h"
#include "test_scale.h"

namespace naming_linearizability_test {

using mk::Kernel;
using mk::NameService;
using mk::Task;
using mk::test::NamingModel;
namespace lin = mk::test::lin;
using Op = lin::Operation<NamingModel::Input, NamingModel::Output>;
using K = NamingModel::Kind;
using S = NamingModel::Status;

/// Turns a call's Result into the model's output; nullopt when the outcome is unknown.
std::optional<NamingModel::Output> output_of(const mk::Result<void>& r, std::string& unexpected) {
  if (r.ok()) return NamingModel::Output{};
  switch (r.error().code) {
    case mk::Errc::already_exists:
      return NamingModel::Output{S::already_exists, {}};
    case mk::Errc::not_found:
      return NamingModel::Output{S::not_found, {}};
    case mk::Errc::timed_out:
      return std::nullopt;
    default:
      unexpected = r.error().describe();
      return std::nullopt;
  }
}

struct Client {
  std::vector<Op> ops;
  std::string unexpected;  ///< An error no correct run gives.
  std::atomic<bool> done{false};
};

/// Client `id`: `count` random operations on `names`, each stamped from `clock` just before it
/// starts and just after its result is in. The stamps come from one atomic counter shared by
/// every kernel, so a return stamp below a call stamp means real-time precedence.
Task<void> run_client(Kernel& k, NameService ns, std::atomic<std::uint64_t>& clock,
                      std::uint32_t id, std::size_t count, std::size_t names, Client& out) {
  std::mt19937_64 rng(1000 + id);
  for (std::size_t n = 0; n < count; ++n) {
    Op op;
    op.client = id;
    op.input.name = "n" + std::to_string(rng() % names);
    const auto dice = rng() % 10;
    op.input.kind = dice < 4 ? K::lookup : dice < 7 ? K::register_name : K::unregister;
    if (op.input.kind == K::register_name) {
      op.input.value = std::to_string(id) + "." + std::to_string(n);
    }
    op.invoked = clock.fetch_add(1) + 1;
    if (op.input.kind == K::lookup) {
      auto value = co_await ns.lookup(k, op.input.name);
      op.returned = clock.fetch_add(1) + 1;
      if (value) {
        op.output = NamingModel::Output{S::ok, *value};
      } else if (value.error().code == mk::Errc::not_found) {
        op.output = NamingModel::Output{S::not_found, {}};
      } else if (value.error().code != mk::Errc::timed_out) {
        out.unexpected = value.error().describe();
      }
    } else {
      // Not a conditional expression: GCC 12 miscompiles co_await inside ?:.
      mk::Result<void> result;
      if (op.input.kind == K::register_name) {
        result = co_await ns.register_name(k, op.input.name, op.input.value);
      } else {
        result = co_await ns.unregister(k, op.input.name);
      }
      op.returned = clock.fetch_add(1) + 1;
      op.output = output_of(result, out.unexpected);
    }
    out.ops.push_back(std::move(op));
    if (!out.unexpected.empty()) break;
    // Now and then let other tasks of the kernel in, so that operations of kernels sharing a
    // core interleave in varied ways.
    if (rng() % 4 == 0) co_await k.yield();
  }
  out.done = true;
}

/// How many pairs of operations overlap in time: the test is only as strong as this.
std::size_t overlapping_pairs(const std::vector<Op>& history) {
  std::size_t pairs = 0;
  for (std::size_t a = 0; a < history.size(); ++a) {
    for (std::size_t b = a + 1; b < history.size(); ++b) {
      if (history[a].client != history[b].client && history[a].invoked < history[b].returned &&
          history[b].invoked < history[a].returned) {
        ++pairs;
      }
    }
  }
  return pairs;
}

TEST(NamingLinearizability, ConcurrentHistoryOnEightKernelsIsLinearizable) {
  constexpr std::size_t kKernels = 8;
  constexpr std::size_t kNames = 3;  // few names, so that operations conflict
  constexpr std::size_t kPerClient = mk::test::scaled(300);
  auto system = mk::test::boot(mk::test::config_for(kKernels));
  ASSERT_NE(system, nullptr);
  auto made = NameService::create(*system);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  NameService ns = *made;

  std::atomic<std::uint64_t> clock{0};
  std::vector<Client> clients(kKernels);
  for (std::uint32_t id = 0; id < kKernels; ++id) {
    auto spawned = system->spawn(id, [ns, &clock, id, &clients](Kernel& k) {
      return run_client(k, ns, clock, id, kPerClient, kNames, clients[id]);
    });
    ASSERT_TRUE(spawned.ok());
  }
  mk::test::wait_until([&clients] {
    for (const auto& c : clients) {
      if (!c.done) return false;
    }
    return true;
  });

  std::vector<Op> history;
  std::size_t failed_registers = 0, hits = 0, unknown = 0;
  for (const auto& c : clients) {
    ASSERT_TRUE(c.unexpected.empty()) << c.unexpected;
    for (const auto& op : c.ops) {
      history.push_back(op);
      if (!op.output) ++unknown;
      if (op.output && op.input.kind == K::register_name && op.output->status != S::ok) {
        ++failed_registers;
      }
      if (op.output && op.input.kind == K::lookup && op.output->status == S::ok) ++hits;
    }
  }
  ASSERT_EQ(history.size(), kKernels * kPerClient);
  // The history must exercise what it claims to: contention and real concurrency.
  EXPECT_GT(failed_registers, 0u);
  EXPECT_GT(hits, 0u);
  EXPECT_GT(overlapping_pairs(history), history.size() / 4);
  EXPECT_EQ(unknown, 0u) << "operations timed out on an unloaded system";

  auto verdict = lin::check_partitioned(NamingModel{}, history);
  ASSERT_TRUE(verdict.ok()) << verdict.error().describe();
  ASSERT_TRUE(verdict->ok()) << verdict->explanation;
  EXPECT_EQ(verdict->order.size(), history.size());

  // Self-check: the checker catches this history once it is broken on purpose. A lookup that
  // saw a value now claims to have seen a value that was never registered...
  std::size_t victim = history.size();
  for (std::size_t i = 0; i < history.size() && victim == history.size(); ++i) {
    if (history[i].input.kind == K::lookup && history[i].output->status == S::ok) victim = i;
  }
  ASSERT_LT(victim, history.size());
  auto broken = history;
  broken[victim].output->value = "never-registered";
  auto caught = lin::check_partitioned(NamingModel{}, broken);
  ASSERT_TRUE(caught.ok());
  EXPECT_EQ(caught->outcome, lin::Outcome::not_linearizable);
  EXPECT_NE(std::find(caught->failed.begin(), caught->failed.end(), victim), caught->failed.end())
      << caught->explanation;
  // ...and so is a successful register reported as already_exists when no other register of
  // its name had even started before it returned (so the name was free all along).
  std::size_t fresh = history.size();
  for (std::size_t i = 0; i < history.size() && fresh == history.size(); ++i) {
    if (history[i].input.kind != K::register_name || history[i].output->status != S::ok) continue;
    bool alone = true;
    for (std::size_t j = 0; j < history.size(); ++j) {
      if (j != i && history[j].input.kind == K::register_name &&
          history[j].input.name == history[i].input.name &&
          history[j].invoked < history[i].returned) {
        alone = false;
      }
    }
    if (alone) fresh = i;
  }
  if (fresh < history.size()) {
    broken = history;
    broken[fresh].output->status = S::already_exists;
    auto lost = lin::check_partitioned(NamingModel{}, broken);
    ASSERT_TRUE(lost.ok());
    EXPECT_EQ(lost->outcome, lin::Outcome::not_linearizable) << "register #" << fresh;
  }
}

/// The simulated run of one seed: 8 kernels on a two-socket machine, with random stalls and
/// delayed links, every client's operations merged and checked. The first problem is the error.
mk::Result<void> simulated_run(mk::Simulation& sim, std::size_t per_client) {
  constexpr std::size_t kKernels = 8;
  auto made = sim.run(0, [](Kernel& k) { return NameService::create_async(k); });
  if (!made) return made.error();
  if (!*made) return made->error();
  NameService ns = **made;
  // One thread runs every kernel here, so a plain counter would do; the atomic keeps
  // run_client the same as on the threaded executor.
  std::atomic<std::uint64_t> clock{0};
  std::vector<Client> clients(kKernels);
  for (std::uint32_t id = 0; id < kKernels; ++id) {
    auto spawned = sim.spawn(id, [ns, &clock, id, per_client, &clients](Kernel& k) {
      return run_client(k, ns, clock, id, per_client, 3, clients[id]);
    });
    if (!spawned) return spawned;
  }
  if (auto idle = sim.run_until_idle(std::chrono::seconds(60)); !idle) return idle;
  std::vector<Op> history;
  for (std::uint32_t id = 0; id < kKernels; ++id) {
    const Client& c = clients[id];
    if (!c.unexpected.empty()) return mk::error(mk::Errc::internal, c.unexpected);
    if (!c.done) return mk::error(mk::Errc::internal, "client " + std::to_string(id) + " hung");
    history.insert(history.end(), c.ops.begin(), c.ops.end());
  }
  auto verdict = lin::check_partitioned(NamingModel{}, history);
  if (!verdict) return verdict.error();
  if (!verdict->ok()) return mk::error(mk::Errc::internal, verdict->explanation);
  return {};
}

TEST(NamingLinearizability, SimulatedHistoriesAreLinearizableOverManySeeds) {
  using namespace std::chrono_literals;
  mk::SimulationOptions base;
  base.topology = "pack:2 numa:1 core:4 pu:1";
  base.kernels = 8;
  base.costs.jitter = 500ns;  // reorders deliveries between different pairs of kernels
  base.faults.begin = 0us;
  base.faults.end = 2ms;
  base.faults.stalls = 6;
  base.faults.delays = 6;
  mk::SeedOptions seeds;
  seeds.seeds = mk::test::scaled(20);
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  seeds.test_name = std::string(info->test_suite_name()) + "." + info->name();
  constexpr std::size_t kPerClient = mk::test::scaled(100);
  auto report = mk::run_seeds(seeds, base,
                              [](mk::Simulation& sim) { return simulated_run(sim, kPerClient); });
  EXPECT_TRUE(report.ok()) << report.describe();
  // MK_SIM_SEEDS or MK_SIM_SEED (the replay command) may change how many run.
  EXPECT_EQ(report.seeds_run, report.seeds_planned);
}

}  // namespace naming_linearizability_test
