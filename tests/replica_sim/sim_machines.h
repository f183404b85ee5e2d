// State machines and helpers for running the agreement protocols in the simulator.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "mk/replicated.h"
#include "mk/result.h"
#include "mk/route.h"
#include "mk/sim_options.h"
#include "mk/simulation.h"

namespace mk::test {

/// The running test's full name, for the seed harness's replay line.
inline std::string current_test() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

/// Sixteen accounts and an order-sensitive digest of every update applied. Additions commute,
/// so every protocol must leave equal balances; only a total order leaves equal digests.
struct Ledger {
  struct Op {
    std::uint32_t origin = 0;
    std::uint32_t number = 0;
    std::uint32_t account = 0;
    std::int32_t amount = 0;
  };
  using Result = std::uint64_t;

  std::array<std::int64_t, 16> balances{};
  std::uint64_t applied = 0;
  std::uint64_t digest = 1469598103934665603ull;

  Result apply(const Op& op) {
    balances[op.account % balances.size()] += op.amount;
    ++applied;
    digest = (digest ^ ((std::uint64_t{op.origin} << 32) | op.number)) * 1099511628211ull;
    return applied;
  }
  void keys(const Op& op, std::vector<std::uint64_t>& out) const {
    out.push_back(op.account % balances.size());
  }
};

/// Eight slots, each owned by at most one kernel: a claim of a taken slot fails its check, and
/// two concurrent claims of one slot conflict in two-phase commit.
struct Claims {
  struct Op {
    std::uint32_t slot = 0;
    std::uint32_t owner = 0;  ///< Kernel id + 1; 0 never claims.
  };
  using Result = std::uint32_t;

  std::array<std::uint32_t, 8> owners{};

  mk::Result<void> check(const Op& op) const {
    if (op.slot >= owners.size()) return error(Errc::invalid_argument, "no such slot");
    if (owners[op.slot] != 0) {
      return error(Errc::already_exists, "slot " + std::to_string(op.slot) + " is taken");
    }
    return {};
  }
  Result apply(const Op& op) {
    owners[op.slot] = op.owner;
    return op.slot;
  }
  void keys(const Op& op, std::vector<std::uint64_t>& out) const { out.push_back(op.slot); }
};

/// An 8-kernel machine with two packages of two NUMA nodes, so that multicast trees have
/// depth, and `faults` drawn from the seed. The SKB is loaded once: hwloc loads its plugins
/// for every topology, which would cost more than a whole simulated run.
inline SimulationOptions eight_kernels(const RandomFaultPlan& faults) {
  static const char* const kMachine = "pack:2 numa:2 core:2 pu:1";
  static const Result<Skb> loaded = Skb::from_synthetic(kMachine);
  SimulationOptions options;
  options.topology = kMachine;
  if (loaded) options.skb = *loaded;
  options.kernels = 8;
  options.faults = faults;
  return options;
}

/// eight_kernels() with two stalls and two delays in the first 300 us: the faults the
/// failure scenarios run under besides their crashes.
inline SimulationOptions with_stalls_and_delays() {
  RandomFaultPlan plan;
  plan.end = std::chrono::microseconds(300);
  plan.stalls = 2;
  plan.delays = 2;
  return eight_kernels(plan);
}

/// The route kind a seed exercises: every kind, in turn.
inline RouteKind route_for(std::uint64_t seed) {
  static constexpr RouteKind kKinds[] = {RouteKind::unicast, RouteKind::broadcast,
                                         RouteKind::multicast, RouteKind::numa_multicast};
  return kKinds[seed % 4];
}

/// Kernel `kernel`'s replica, read through the simulation; not_found when it has none.
template <class SM>
Result<SM> replica_of(Simulation& sim, const Replicated<SM>& object, KernelId kernel) {
  auto copied = sim.run(kernel, [object](Kernel& k) -> Task<Result<SM>> {
    co_return object.local(k, [](const SM& state) { return state; });
  });
  if (!copied) return std::move(copied).error();
  return std::move(*copied);
}

/// Kernel `kernel`'s applied history, read through the simulation.
template <class SM>
Result<std::vector<OpId>> history_of(Simulation& sim, const Replicated<SM>& object,
                                     KernelId kernel) {
  return sim.run(kernel,
                 [object](Kernel& k) -> Task<std::vector<OpId>> { co_return object.history(k); });
}

}  // namespace mk::test
