// mk::KernelStats: counters a kernel keeps about itself.
#pragma once

#include <cstdint>

namespace mk {

/// A snapshot of one kernel's counters, readable from any thread (System::stats) or from the
/// kernel itself (Kernel::stats). Counters only grow.
struct KernelStats {
  std::uint64_t sleeps = 0;             ///< Times the kernel blocked after its poll budget.
  std::uint64_t messages_received = 0;  ///< Messages taken from its channels.
  std::uint64_t messages_sent = 0;      ///< Messages put into its channels to other kernels.
  std::uint64_t calls_completed = 0;    ///< Its calls that ended, with a reply or an error.
  std::uint64_t task_failures = 0;      ///< Spawned tasks or one-way handlers that threw.
  std::uint64_t rejected_messages = 0;  ///< Messages dropped: malformed, late or unhandled.
  std::uint64_t channels_bound = 0;     ///< Channels bound to it from other kernels.
  std::uint64_t turns = 0;              ///< Turns of its loop (Kernel::run_turn) it has run.
  /// Fan-outs it wrote once into its broadcast buffers for all their receivers to read,
  /// instead of once per receiver (threads only: docs/runtime.md, "Shared buffers").
  std::uint64_t shared_fan_outs = 0;
  /// Calls it answered in the line their request came in (docs/runtime.md, "Answers in the
  /// request's line"); messages_sent counts them too.
  std::uint64_t answers_in_line = 0;
};

}  // namespace mk
