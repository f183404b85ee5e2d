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
#include "runtime/doorbell.h"
#include "runtime/inbox.h"

namespace mk::runtime {

class BroadcastArena;

/// The part of a kernel other threads touch: the flag it raises before sleeping, how to wake
/// it, and its inbox. Everything else of a kernel is touched by its own thread only.
struct KernelShared {
  /// How to wake it (runtime/doorbell.h).
  Doorbell doorbell;
  /// Set once the kernel has stopped for good (System::remove_kernel) or failed; never cleared.
  std::atomic<bool> offline{false};
  /// Set, before `offline`, once the kernel has been declared failed; never cleared.
  std::atomic<bool> failed{false};
  /// Its broadcast buffers (runtime/broadcast_arena.h), made by the kernel on its first
  /// shared fan-out and kept until the System is destroyed; null until then and in a kernel
  /// process.
  std::atomic<BroadcastArena*> broadcast_arena{nullptr};
  alignas(kSeparation) Inbox inbox;
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
  Executor* executor = nullptr;                  ///< Makes the channels (Executor::make_channel).
  std::optional<ChannelKind> forced_kind;        ///< Config::channel_kind.
  std::optional<AnswerPath> forced_answer_path;  ///< Config::answer_path.
  std::optional<std::size_t> ring_slots;         ///< Config::ring_slots.
  std::size_t poll_batch = 0;
  std::uint64_t system_id = 0;  ///< BootPlan::system_id.
  /// True when kernels are threads of the default executor: a fan-out to one shared buffer is
  /// then written once, into the sender's broadcast buffers. Other executors price or ignore
  /// FanOut::shared_buffer themselves; kernel processes share no memory but their rings.
  bool shared_buffers = false;
  /// In a kernel process (Isolation::processes): how its monitor reaches other kernels and
  /// the host. Null when kernels are threads: then they use each other's inboxes. In a kernel
  /// process the entries of other kernels are this process's view of them (their notifier
  /// wakes them by the System's wake mechanism: their eventfd or their futex word; their
  /// offline and failed flags are what this kernel has learnt).
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

  /// The channel kind from kernel `from` to kernel `to`.
  ChannelKind kind_between(KernelId from, KernelId to) const;
  /// True when a call from kernel `from` to kernel `to` may ask for its answer in its
  /// request's line: Config::answer_path, else the SKB's choice for their cores.
  bool answers_in_line(KernelId from, KernelId to) const;
  /// The options of the channel from kernel `from` to kernel `to`: the transport's geometry
  /// from the SKB's facts (channel_options_for), on `to`'s NUMA node.
  Result<ChannelOptions> channel_options(KernelId from, KernelId to) const;

  /// Hands `item` to kernel `kernel` (< size(), in this process): into its inbox, then rings
  /// its doorbell. The inbox takes ownership.
  void post(KernelId kernel, InboxItem* item) const noexcept {
    runtime::post(kernels[kernel]->inbox, kernels[kernel]->doorbell, item);
  }
};

}  // namespace mk::runtime
