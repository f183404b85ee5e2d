// mk::SimulationOptions, mk::SimCosts, mk::RandomFaultPlan: what a Simulation is made of.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mk/clock.h"
#include "mk/core_id.h"
#include "mk/kernel_id.h"
#include "mk/result.h"
#include "mk/skb.h"

namespace mk {

class Kernel;

/// The cache-line cost model (docs/simulation.md, "The cache-line model"): a message's cost is
/// the cache lines it moves. Each slot the sender writes travels from its core to the NUMA node
/// where the receiver's buffer lives, while the sender goes on (a store retires into the store
/// buffer; its line transfer does not stall the core); the message is visible once its slots
/// have arrived. The receiver pays one line transfer per slot it reads, priced from its own
/// core to that node (a load does stall the core).
struct LineCosts {
  /// Off: the per-message model (SimCosts::send, receive and a pair's one-way latency).
  bool enabled = false;
  /// How many line transfers one message between two cores takes, one way: a transfer is
  /// priced at the one-way latency from the core to the nearest other core of the buffer's
  /// node (measured or asserted, else by distance with SimCosts::one_way_base) divided by
  /// this. 2: the sender's write takes the line, the receiver's read fetches it back.
  int transfers_per_message = 2;
};

/// The simulator's cost model, in virtual time. Defaults are in the range of a cache-coherent
/// x86 server (docs/simulation.md says where they come from); a projection replaces them with
/// costs measured by the channel bench on the host. Every field must be zero or positive, and
/// `turn` positive, or Simulation::create names it in an invalid_argument error.
struct SimCosts {
  /// Charged to the sender per message put into a channel: its clock moves on by this much,
  /// so a kernel sending n messages in one turn stamps them 1x to nx this later.
  Duration send = std::chrono::nanoseconds(60);
  /// Charged to the receiver per message taken from a channel, before its handler runs.
  Duration receive = std::chrono::nanoseconds(40);
  /// Charged per kernel turn (the loop's own overhead). Positive, so virtual time always
  /// moves on while a kernel has work, even a task that only yields.
  Duration turn = std::chrono::nanoseconds(20);
  /// One-way latency between two cores at SKB distance 10 (one NUMA node); other distances
  /// scale it linearly: latency = one_way_base * distance / 10. Used for pairs without a
  /// measured or asserted latency.
  Duration one_way_base = std::chrono::nanoseconds(100);
  /// Each message's delivery is later by a seeded draw from 0 to this (inclusive).
  Duration jitter = std::chrono::nanoseconds(20);
  /// When the SKB has a measured or asserted round trip for a pair, use its median / 2 as the
  /// one-way latency instead of the distance.
  bool use_measured_latencies = true;
  /// The cache-line model; when enabled it replaces `send`, `receive` and the channels'
  /// one-way latency (wake-ups still travel the one-way latency).
  LineCosts lines;
  /// Also charge each kernel the host CPU time its turns take, as they run (execution-driven:
  /// a send is stamped after the work that preceded it in the turn). For projecting the host
  /// the simulation runs on, whose software costs no fixed figure captures; it adds the
  /// simulator's own bookkeeping too, and makes virtual time depend on this run, so a
  /// simulation that charges it is not reproducible. Off: virtual time depends on the seed alone.
  bool host_cpu_time = false;
};

/// Faults drawn from the simulation's seed (a stream of its own, so the plan does not change
/// when the schedule does). Times are offsets from the simulation's start.
struct RandomFaultPlan {
  Duration begin{0};       ///< Faults start in [begin, end).
  Duration end{0};         ///< Must be after begin when any fault is asked for.
  std::size_t stalls = 0;  ///< How many stalls of random kernels.
  Duration max_stall = std::chrono::microseconds(20);  ///< Each lasts 1 ns to this.
  std::size_t delays = 0;  ///< How many delay windows on random pairs of distinct kernels.
  Duration max_delay = std::chrono::microseconds(20);          ///< Extra latency, 1 ns to this.
  Duration max_delay_window = std::chrono::microseconds(100);  ///< Window length, 1 ns to this.
  std::size_t crashes = 0;          ///< How many distinct kernels of `may_crash` crash.
  std::vector<KernelId> may_crash;  ///< Candidates for crashes (never the test's driver).
  /// When positive, each crash happens in the middle of a turn (Simulation::crash_mid_turn),
  /// after a number of that turn's sends drawn from 0 to this; 0: crashes between turns.
  std::size_t mid_turn_sends = 0;
};

/// What Simulation::create builds: a machine, kernels on it, a seed and a cost model.
struct SimulationOptions {
  /// The machine, in Skb::load syntax: an hwloc XML file, or a synthetic description such as
  /// "pack:8 numa:1 core:4 pu:1"; empty: this machine (Skb::discover). Ignored when `skb`
  /// is set.
  std::string topology;
  /// The machine as an already loaded SKB (with measured or asserted facts, say).
  std::optional<Skb> skb;
  /// Cores of the kernels, one kernel per entry, in KernelId order; a core may repeat.
  std::vector<CoreId> cores;
  /// With `cores` empty: this many kernels on the usable cores in order, wrapping around (two
  /// per core when there are twice as many kernels as cores). Must be positive then.
  std::size_t kernels = 0;
  /// Decides jitter, ties between kernels ready at the same instant, and random faults.
  std::uint64_t seed = 1;
  /// The cost and latency model.
  SimCosts costs;
  /// Keeps the trace's text lines (Simulation::trace); the hash is kept either way.
  bool trace = false;
  /// Channel capacity in slots, as Config::ring_slots.
  std::size_t ring_slots = 256;
  /// Messages a kernel takes from one channel per turn, as Config::poll_batch.
  std::size_t poll_batch = 64;
  /// How much virtual time Simulation::run (and System::run under it) may let pass before it
  /// gives up with timed_out.
  Duration run_limit = std::chrono::seconds(10);
  /// Faults scheduled at creation from the seed.
  RandomFaultPlan faults;
  /// Runs on every kernel before it takes any message, as Config::setup: the place to register
  /// handlers. An error (or an exception) fails Simulation::create with that error.
  std::function<Result<void>(Kernel&)> setup;
};

}  // namespace mk
