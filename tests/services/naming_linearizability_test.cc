// A concurrent history of NameService operations, recorded on 8 kernels (as threads and as
// processes), is linearizable.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mk/codec.h"
#include "mk/naming.h"
#include "mk/seed_harness.h"
#include "mk/simulation.h"
#include "runtime/runtime_test_util.h"
#include "services/test_models.h"
#include "support/linearizability.h"
#include "test_scale.h"

namespace naming_linearizability_test {

using Op = mk::test::lin::Operation<mk::test::NamingModel::Input, mk::test::NamingModel::Output>;

/// What one client did: its operations, and an error no correct run gives (empty if none).
struct ClientLog {
  std::vector<Op> ops;
  std::string unexpected;
};

}  // namespace naming_linearizability_test

// A client's log crosses back from a kernel process field by field.

template <>
struct mk::Codec<mk::test::NamingModel::Input> {
  using Input = mk::test::NamingModel::Input;
  static void encode(const Input& in, std::vector<std::byte>& out) {
    encode_fields(out, static_cast<std::uint8_t>(in.kind), in.name, in.value);
  }
  static Result<Input> decode(std::span<const std::byte> bytes) {
    auto fields = decode_fields<std::uint8_t, std::string, std::string>(bytes);
    if (!fields) return std::move(fields).error();
    auto& [kind, name, value] = *fields;
    if (kind > static_cast<std::uint8_t>(mk::test::NamingModel::Kind::lookup)) {
      return error(Errc::parse_error, "NamingModel::Input: kind " + std::to_string(kind));
    }
    return Input{static_cast<mk::test::NamingModel::Kind>(kind), std::move(name), std::move(value)};
  }
};

template <>
struct mk::Codec<mk::test::NamingModel::Output> {
  using Output = mk::test::NamingModel::Output;
  static void encode(const Output& output, std::vector<std::byte>& out) {
    encode_fields(out, static_cast<std::uint8_t>(output.status), output.value);
  }
  static Result<Output> decode(std::span<const std::byte> bytes) {
    auto fields = decode_fields<std::uint8_t, std::string>(bytes);
    if (!fields) return std::move(fields).error();
    auto& [status, value] = *fields;
    if (status > static_cast<std::uint8_t>(mk::test::NamingModel::Status::not_found)) {
      return error(Errc::parse_error, "NamingModel::Output: status " + std::to_string(status));
    }
    return Output{static_cast<mk::test::NamingModel::Status>(status), std::move(value)};
  }
};

template <>
struct mk::Codec<naming_linearizability_test::Op> {
  using Op = naming_linearizability_test::Op;
  static void encode(const Op& op, std::vector<std::byte>& out) {
    encode_fields(out, op.client, op.input, op.output, op.invoked, op.returned);
  }
  static Result<Op> decode(std::span<const std::byte> bytes) {
    using Input = mk::test::NamingModel::Input;
    using Output = std::optional<mk::test::NamingModel::Output>;
    auto fields = decode_fields<std::uint32_t, Input, Output, std::uint64_t, std::uint64_t>(bytes);
    if (!fields) return std::move(fields).error();
    auto& [client, input, output, invoked, returned] = *fields;
    return Op{client, std::move(input), std::move(output), invoked, returned};
  }
};

template <>
struct mk::Codec<naming_linearizability_test::ClientLog> {
  using ClientLog = naming_linearizability_test::ClientLog;
  static void encode(const ClientLog& log, std::vector<std::byte>& out) {
    encode_fields(out, log.ops, log.unexpected);
  }
  static Result<ClientLog> decode(std::span<const std::byte> bytes) {
    auto fields = decode_fields<std::vector<naming_linearizability_test::Op>, std::string>(bytes);
    if (!fields) return std::move(fields).error();
    auto& [ops, unexpected] = *fields;
    return ClientLog{std::move(ops), std::move(unexpected)};
  }
};

namespace naming_linearizability_test {

using mk::Kernel;
using mk::NameService;
using mk::Task;
using mk::test::NamingModel;
namespace lin = mk::test::lin;
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

/// Client `id`: `count` random operations on `names`, each stamped from `clock` just before it
/// starts and just after its result is in. The stamps come from one atomic counter shared by
/// every kernel (in memory every kernel process maps too), so a return stamp below a call
/// stamp means real-time precedence.
Task<ClientLog> run_client(Kernel& k, NameService ns, std::atomic<std::uint64_t>* clock,
                           std::uint32_t id, std::size_t count, std::size_t names) {
  ClientLog out;
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
    op.invoked = clock->fetch_add(1) + 1;
    if (op.input.kind == K::lookup) {
      auto value = co_await ns.lookup(k, op.input.name);
      op.returned = clock->fetch_add(1) + 1;
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
      op.returned = clock->fetch_add(1) + 1;
      op.output = output_of(result, out.unexpected);
    }
    out.ops.push_back(std::move(op));
    if (!out.unexpected.empty()) break;
    // Now and then let other tasks of the kernel in, so that operations of kernels sharing a
    // core interleave in varied ways.
    if (rng() % 4 == 0) co_await k.yield();
  }
  co_return out;
}

class NamingLinearizability : public mk::test::BothIsolations {};

TEST_P(NamingLinearizability, ConcurrentHistoryOnEightKernelsIsLinearizable) {
  constexpr std::size_t kKernels = 8;
  constexpr std::size_t kNames = 3;  // few names, so that operations conflict
  constexpr std::size_t kPerClient = mk::test::scaled(300);
  // Made before boot, so that kernel processes map it too.
  mk::test::Shared<std::atomic<std::uint64_t>> clock;
  auto system = mk::test::boot(config(kKernels));
  ASSERT_NE(system, nullptr);
  auto made = NameService::create(*system);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  NameService ns = *made;

  // One host thread per kernel, so that the clients run at the same time.
  std::vector<mk::Result<ClientLog>> logs(kKernels, mk::error(mk::Errc::internal, "not run"));
  std::vector<std::thread> clients;
  for (std::uint32_t id = 0; id < kKernels; ++id) {
    clients.emplace_back([&, id] {
      logs[id] = system->run(
          id,
          [](Kernel& k, NameService service, std::atomic<std::uint64_t>* stamps,
             std::uint32_t client, std::size_t count,
             std::size_t names) { return run_client(k, service, stamps, client, count, names); },
          ns, clock.get(), id, kPerClient, kNames);
    });
  }
  for (auto& client : clients)
    client.join();

  std::vector<Op> history;
  std::size_t failed_registers = 0, hits = 0, unknown = 0;
  for (std::uint32_t id = 0; id < kKernels; ++id) {
    ASSERT_TRUE(logs[id].ok()) << "client " << id << ": " << logs[id].error().describe();
    const ClientLog& c = *logs[id];
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
  EXPECT_GT(lin::overlapping_pairs(history), history.size() / 4);
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

/// A client under the simulator, which (its kernels being threads) may write into the test.
struct SimulatedClient {
  ClientLog log;
  bool done = false;
};

Task<void> run_simulated_client(Kernel& k, NameService ns, std::atomic<std::uint64_t>* clock,
                                std::uint32_t id, std::size_t count, SimulatedClient* out) {
  out->log = co_await run_client(k, ns, clock, id, count, 3);
  out->done = true;
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
  // run_client the same as on the executors.
  std::atomic<std::uint64_t> clock{0};
  std::vector<SimulatedClient> clients(kKernels);
  for (std::uint32_t id = 0; id < kKernels; ++id) {
    auto spawned = sim.spawn(id, [ns, &clock, id, per_client, &clients](Kernel& k) {
      return run_simulated_client(k, ns, &clock, id, per_client, &clients[id]);
    });
    if (!spawned) return spawned;
  }
  if (auto idle = sim.run_until_idle(std::chrono::seconds(60)); !idle) return idle;
  std::vector<Op> history;
  for (std::uint32_t id = 0; id < kKernels; ++id) {
    const SimulatedClient& c = clients[id];
    if (!c.done) return mk::error(mk::Errc::internal, "client " + std::to_string(id) + " hung");
    if (!c.log.unexpected.empty()) return mk::error(mk::Errc::internal, c.log.unexpected);
    history.insert(history.end(), c.log.ops.begin(), c.log.ops.end());
  }
  auto verdict = lin::check_partitioned(NamingModel{}, history);
  if (!verdict) return verdict.error();
  if (!verdict->ok()) return mk::error(mk::Errc::internal, verdict->explanation);
  return {};
}

// Thread-only: the simulator runs its kernels as threads.
TEST(NamingLinearizabilitySimulated, SimulatedHistoriesAreLinearizableOverManySeeds) {
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

INSTANTIATE_TEST_SUITE_P(Isolations, NamingLinearizability, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace naming_linearizability_test
