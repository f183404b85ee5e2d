// mk::Simulation: a System run in one thread on virtual time, with seeded scheduling and faults.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mk/clock.h"
#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/result.h"
#include "mk/sim_options.h"
#include "mk/system.h"
#include "mk/task.h"

namespace mk {

/// A System whose kernels all run on the calling thread, on virtual time: messages arrive after
/// a latency taken from the SKB, sending and receiving cost virtual time, and a generator seeded
/// by SimulationOptions::seed decides jitter and ties. The kernels, protocols and tasks are the
/// real ones, unchanged. Nothing runs except inside the calls that drive it (run, run_for,
/// run_until_idle, System::run, shutdown), so the same seed, machine and scenario give the same
/// sequence of events, whose hash trace_hash() returns. Not thread-safe: use it from one
/// thread, and never from inside its kernels (as for System).
class Simulation {
 public:
  /// Loads the machine, boots the kernels on the simulated executor, and schedules the random
  /// faults. invalid_argument names a bad field (kernels, cores, costs.*, faults.*, ...); an
  /// unknown topology gives the SKB's error prefixed with "topology".
  static Result<std::unique_ptr<Simulation>> create(SimulationOptions options);

  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;
  /// Shuts down, if shutdown() was not called.
  ~Simulation();

  /// The simulated System: create domains, spawn, run (which drives the simulation, with
  /// options().run_limit), read stats and the SKB through it.
  System& system() noexcept;
  /// The options it was made with.
  const SimulationOptions& options() const noexcept;
  /// The machine the kernels run on.
  const Skb& skb() const noexcept;
  /// The simulation's time: the latest instant its scheduler reached. Starts at Instant{}.
  Instant now() const noexcept;
  /// How long `duration` after the start is, as an Instant (for scheduling faults).
  static Instant at(Duration since_start) noexcept { return Instant{} + since_start; }

  /// Runs `f(kernel)`, which returns a Task<T>, on kernel `kernel` and drives the simulation
  /// until it finishes. Errors as System::run, and timed_out when `limit` of virtual time
  /// passes first, or when nothing is left to simulate before the task ends (a deadlock, or a
  /// task waiting on a crashed kernel without a timeout).
  template <class F>
  Result<detail::TaskValue<F>> run(KernelId kernel, F f, Duration limit) {
    set_run_limit(limit);
    auto result = system().run(kernel, std::move(f));
    set_run_limit(options().run_limit);
    return result;
  }
  /// run(kernel, f, options().run_limit).
  template <class F>
  Result<detail::TaskValue<F>> run(KernelId kernel, F f) {
    return system().run(kernel, std::move(f));
  }
  /// Starts `f(kernel)`, a Task<void>, on kernel `kernel` without running anything yet.
  template <class F>
  requires std::is_invocable_r_v<Task<void>, F&, Kernel&> Result<void> spawn(KernelId kernel, F f) {
    return system().spawn(kernel, std::move(f));
  }

  /// Simulates until no kernel has anything left to do (every live kernel asleep with no timer
  /// and no message on its way). timed_out if that has not happened after `limit`.
  Result<void> run_until_idle(Duration limit);
  /// Simulates everything due in the next `duration`; now() is then `duration` later.
  Result<void> run_for(Duration duration);

  /// Kernel `kernel` does nothing from `at` for `duration`: it takes no message and fires no
  /// timer, and continues afterwards as if it had been descheduled. invalid_argument for an
  /// instant in the past or a non-positive duration; not_found for an unknown kernel.
  Result<void> stall(KernelId kernel, Instant at, Duration duration);
  /// Kernel `kernel` stops for good at `at`: it never runs again; messages to it stay in its
  /// channels, so their senders eventually see back-pressure and their calls time out.
  Result<void> crash(KernelId kernel, Instant at);
  /// Kernel `kernel` crashes in the middle of a turn: in its first turn at or after `at` that
  /// sends more than `after_sends` messages, right after the `after_sends`-th. The turn's later
  /// messages are lost with it (a coordinator dies half-way through a wave), and the crash is
  /// reported when the turn ends. System messages the turn posts through the monitors' inboxes
  /// (channel bindings) still go. A kernel that never sends that many in one turn again never
  /// crashes from this (a crash() still takes effect). Errors as crash.
  Result<void> crash_mid_turn(KernelId kernel, Instant at, std::size_t after_sends);
  /// Messages from `from` to `to` sent in [start, end) arrive `extra` later. The channel keeps
  /// their order: a message sent after a delayed one is never delivered before it.
  Result<void> delay(KernelId from, KernelId to, Instant start, Instant end, Duration extra);
  /// Schedules the faults of `plan`, drawn from the seed's fault stream.
  Result<void> add_random_faults(const RandomFaultPlan& plan);
  /// True once kernel `kernel` has crashed (its crash instant has passed; a mid-turn crash, once
  /// it happened).
  bool crashed(KernelId kernel) const noexcept;

  /// The model's one-way latency from kernel `from` to kernel `to`, without jitter, faults or
  /// costs; not_found for an unknown kernel.
  Result<Duration> one_way_latency(KernelId from, KernelId to) const;
  /// A hash of every event so far (turns, sleeps, sends, receipts, faults) with its instant and
  /// kernel: equal hashes mean equal runs.
  std::uint64_t trace_hash() const noexcept;
  /// How many events the trace has.
  std::uint64_t trace_events() const noexcept;
  /// The events as text lines ("<ns> k<id> <event> ..."), when options().trace is set.
  const std::vector<std::string>& trace() const noexcept;

  /// Stops the kernels (driving them until they have) and frees them. Idempotent.
  Result<void> shutdown();

 private:
  struct Impl;
  explicit Simulation(std::unique_ptr<Impl> impl);
  void set_run_limit(Duration limit) noexcept;

  std::unique_ptr<Impl> impl_;
};

}  // namespace mk
