// What the kernels of one System see of each other: their doorbells, inboxes and placement.
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <vector>

#include "mk/channel.h"
#include "mk/core_id.h"
#include "mk/executor.h"
#include "mk/kernel_id.h"
#include "mk/skb.h"
#include "runtime/barrier.h"
#include "runtime/inbox.h"

namespace mk::runtime {

/// Alignment that keeps two independently written atomics off each other's cache lines: two
/// lines, so that adjacent-line prefetch does not pair them either. A compile-time bound only;
/// channel geometry still comes from the SKB's line size.
inline constexpr std::size_t kSeparation = 128;

/// The part of a kernel other threads touch: the flag it raises before sleeping, how to wake
/// it, and its inbox. Everything else of a kernel is touched by its own thread only.
struct KernelShared {
  /// True from the moment the kernel announces sleep until it (or a waker) clears it.
  alignas(kSeparation) std::atomic<bool> sleeping{false};
  /// Set by the executor before the kernel first runs; read-only afterwards.
  Notifier* notifier = nullptr;
  /// Set once the kernel has stopped for good (System::remove_kernel) or failed; never cleared.
  std::atomic<bool> offline{false};
  /// Set, before `offline`, once the kernel has been declared failed; never cleared.
  std::atomic<bool> failed{false};
  alignas(kSeparation) Inbox inbox;
};

/// Per bound channel, shared by its two kernels (in the channel's own memory when the kernels
/// are processes): the two halves of the wake-up handshake that concern this pair.
struct PairFlags {
  /// Set by the sender when it sleeps with messages waiting for room; cleared by the receiver
  /// when it made room and woke it.
  alignas(kSeparation) std::atomic<bool> room_wanted{false};
  /// Set by the receiver, on each channel it receives on, from the moment it announces sleep
  /// until it wakes; a sender that publishes a message and finds it set wakes the receiver.
  alignas(kSeparation) std::atomic<bool> receiver_asleep{false};
};

class ControlPort;

/// The System-wide facts kernels use to reach each other. The vectors are sized to the most
/// kernels the System may ever have and never resized; entry `id` is written before `count`
/// publishes it (boot, System::add_kernel) and is read-only afterwards.
struct Fabric {
  std::vector<KernelShared*> kernels;  ///< By KernelId.
  std::vector<CoreId> cores;           ///< By KernelId.
  std::vector<int> numa_nodes;         ///< By KernelId: the node of its core.
  std::atomic<std::size_t> count{0};   ///< Kernels booted or added so far.
  const Skb* skb = nullptr;
  Executor* executor = nullptr;            ///< Makes the channels (Executor::make_channel).
  std::optional<ChannelKind> forced_kind;  ///< Config::channel_kind.
  std::size_t ring_slots = 0;
  std::size_t line_size = 0;
  std::size_t poll_batch = 0;
  std::uint64_t system_id = 0;  ///< BootPlan::system_id.
  /// In a kernel process (Isolation::processes): how its monitor reaches other kernels and
  /// the host. Null when kernels are threads: then they use each other's inboxes. In a kernel
  /// process the entries of other kernels are this process's view of them (their notifier
  /// writes their eventfd; their offline and failed flags are what this kernel has learnt).
  ControlPort* control = nullptr;

  /// Kernels running now (ids below it are valid).
  std::size_t size() const noexcept {
    // Acquire pairs with the release that publishes a new kernel: whoever sees its id below
    // size() also sees its entries.
    return count.load(std::memory_order_acquire);
  }
  /// True once kernel `kernel` (< size()) has been taken offline.
  bool offline(KernelId kernel) const noexcept {
    // Acquire: pairs with remove_kernel's release. A stale `false` is harmless: what is sent
    // meanwhile is failed when the kernel's PeerOffline notice arrives.
    return kernels[kernel]->offline.load(std::memory_order_acquire);
  }
  /// True once kernel `kernel` (< size()) has been declared failed.
  bool failed(KernelId kernel) const noexcept {
    // Acquire: pairs with the release that declares it, like `offline`.
    return kernels[kernel]->failed.load(std::memory_order_acquire);
  }
  /// True for a kernel that exists and has not been taken offline.
  bool online(KernelId kernel) const noexcept { return kernel < size() && !offline(kernel); }

  /// Wakes the receiver of a channel with `flags` (kernel `to`) if it announced sleep; called
  /// after publishing a message into the channel. The same handshake as ring(), on the flag
  /// the receiver raised in this channel's own memory.
  void ring_channel(KernelId to, PairFlags& flags) const noexcept {
    light_barrier();
    // Relaxed, as in ring(); the exchange makes one sender per channel pay for the wake-up.
    if (flags.receiver_asleep.load(std::memory_order_relaxed) &&
        flags.receiver_asleep.exchange(false, std::memory_order_acq_rel)) {
      kernels[to]->notifier->notify();
    }
  }
  /// The channel kind from kernel `from` to kernel `to`.
  ChannelKind kind_between(KernelId from, KernelId to) const;

  /// Wakes kernel `kernel` if it announced sleep; called after putting work in its inbox. The
  /// fast path is a compiler barrier and one relaxed load (runtime/barrier.h says why).
  void ring(KernelId kernel) const noexcept {
    KernelShared& target = *kernels[kernel];
    light_barrier();
    // Relaxed load: light_barrier and the sleeper's heavy_barrier order it against the
    // published work. The exchange makes exactly one waker pay for the notification; acq_rel
    // is more than the notification needs but keeps the flag's history simple to reason about.
    if (target.sleeping.load(std::memory_order_relaxed) &&
        target.sleeping.exchange(false, std::memory_order_acq_rel)) {
      target.notifier->notify();
    }
  }
};

}  // namespace mk::runtime
