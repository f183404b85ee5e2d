// What the services' simulator tests share: the fault a seed injects while an operation is under
// way, the machine they run on, and which members are still alive.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "mk/clock.h"
#include "mk/kernel_id.h"
#include "mk/sim_options.h"
#include "mk/simulation.h"
#include "mk/skb.h"

namespace mk::test {

/// The agreement's timeout in these tests: an update not done by then fails with timed_out.
inline constexpr Duration kServiceSimTimeout = std::chrono::microseconds(200);
/// Every operation returns within this much virtual time after it starts, plus the length of a
/// stall injected into its own kernel (a stalled kernel resumes nothing until the stall ends).
inline constexpr Duration kServiceSimDeadline = 2 * kServiceSimTimeout;
/// How far a driver lets the simulation run between looks at what is in flight.
inline constexpr Duration kServiceSimStep = std::chrono::nanoseconds(250);

/// The fault a seed injects while an operation is under way, besides random stalls and delays.
enum class SeedFault { none, crash, crash_mid_turn, stall };

/// The fault's name, for a failing seed's message.
inline const char* fault_name(SeedFault fault) {
  switch (fault) {
    case SeedFault::none:
      return "none";
    case SeedFault::crash:
      return "crash";
    case SeedFault::crash_mid_turn:
      return "crash mid-turn";
    case SeedFault::stall:
      return "stall";
  }
  return "?";
}

/// `kernels` kernels on two packages of two nodes of two cores, with jitter, and three stalls
/// and three delays in the first 400 us.
inline SimulationOptions services_machine(std::size_t kernels) {
  using namespace std::chrono_literals;
  static const char* const kMachine = "pack:2 numa:2 core:2 pu:1";
  static const Result<Skb> loaded = Skb::from_synthetic(kMachine);
  SimulationOptions options;
  options.topology = kMachine;
  if (loaded) options.skb = *loaded;
  options.kernels = kernels;
  options.costs.jitter = 300ns;
  options.faults.end = 400us;
  options.faults.stalls = 3;
  options.faults.delays = 3;
  return options;
}

/// The kernels of `members` the simulation has not crashed.
inline std::vector<KernelId> live_members(Simulation& sim, const std::vector<KernelId>& members) {
  std::vector<KernelId> out;
  for (KernelId id : members) {
    if (!sim.crashed(id)) out.push_back(id);
  }
  return out;
}

}  // namespace mk::test
