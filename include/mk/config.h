// mk::Config: what System::boot is asked to start.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

#include "mk/answer_path.h"
#include "mk/channel.h"
#include "mk/core_id.h"
#include "mk/result.h"
#include "mk/wake.h"

namespace mk {

class Kernel;

/// How an idle kernel blocks once its poll budget is spent.
enum class WaitBackend {
  automatic,  ///< io_uring when the OS allows it, else eventfd + ppoll (with one log line).
  io_uring,   ///< io_uring only; boot fails with `unavailable` if the OS refuses it.
  poll,       ///< eventfd + ppoll, never io_uring.
};

/// What a kernel is to the operating system.
enum class Isolation {
  /// Every kernel a pinned thread of the program's process: the default, and what the
  /// simulator runs.
  threads,
  /// Every kernel a pinned process of its own, forked from the program at boot (or at
  /// System::add_kernel), sharing only channel memory with the kernels it talks to. A kernel
  /// that crashes takes only itself down. What runs on a kernel must then cross by value:
  /// docs/runtime.md, "Isolation".
  processes,
};

/// What System::boot starts. Every field has a sensible default; boot validates each one and
/// names the bad field in its error.
struct Config {
  /// Cores to run kernels on, one kernel per entry, in KernelId order. Empty: every usable core
  /// of the machine (online and in the process's cpuset), each `kernels_per_core` times.
  std::vector<CoreId> cores;

  /// How many kernels may share one core (1 to 64), at boot or later (System::add_kernel).
  /// The default, 1, requires distinct cores. Raise it only on purpose, e.g. to run 8 kernels
  /// on a 2-core host in tests: kernels that may share a core never poll before sleeping (the
  /// default poll budget is then 0).
  std::size_t kernels_per_core = 1;

  /// Channel kind between two different kernels; empty: the SKB's choice per pair. `local` is
  /// refused, since it carries no atomics and two kernels are two threads.
  std::optional<ChannelKind> channel_kind;

  /// Where the answers to calls between two different kernels travel; empty: the SKB's choice
  /// per pair (Skb::answer_path). `in_line` applies only where it can: to a call alone in
  /// flight on its kernel, over a urpc channel; the others are answered through the channel.
  std::optional<AnswerPath> answer_path;

  /// How long an idle kernel polls before it sleeps (0 to 1 s); empty: the SKB's budget for
  /// this many kernels. Must be 0 when kernels outnumber the usable cores.
  std::optional<std::chrono::nanoseconds> poll_budget;

  /// Slots per channel ring; empty: what the transport derives from the SKB's facts for each
  /// pair (an asserted ring_slots, else kDefaultRingSlots bounded by the receiver's L2:
  /// mk/channel_geometry.h). Checked at boot by the transport's rule, naming this field.
  std::optional<std::size_t> ring_slots;

  /// Most messages a kernel takes from one channel per turn (1 to 65536), so that one busy
  /// sender cannot starve the others or the kernel's ready tasks.
  std::size_t poll_batch = 64;

  /// How idle kernels block.
  WaitBackend wait_backend = WaitBackend::automatic;

  /// How a kernel wakes another that sleeps; empty: the SKB's choice (an asserted mechanism,
  /// else the one with the lowest measured wake cost among those this machine, `wait_backend`
  /// and `isolation` allow). A mechanism given here that the OS or the isolation refuses
  /// fails boot with `unavailable`, saying why.
  std::optional<WakeMechanism> wake_mechanism;

  /// Threads (the default) or processes; one program runs in both.
  Isolation isolation = Isolation::threads;

  /// Runs on every kernel, on its own thread (or in its own process), before it takes any
  /// message or task: the place to register handlers. An error (or an exception) fails boot,
  /// or the System::add_kernel that started the kernel, with that error. In process isolation
  /// it runs on the kernel process's copy of the program's memory as it was when the process
  /// was forked: what it captures is read there, and what it writes stays there.
  std::function<Result<void>(Kernel&)> setup;

  /// The stall detector (threaded executor): a kernel that is awake but has not finished a
  /// turn of its loop for this long (a handler or task that never returns or yields) is
  /// declared failed, as by System::declare_failed. 1 ms to 1 hour; empty: no stall detector.
  /// Pick it well above the longest turn user code may take, and above scheduling delays when
  /// kernels share cores. Kernels that are threads only: Isolation::processes refuses it.
  std::optional<std::chrono::nanoseconds> stall_timeout;
};

}  // namespace mk
