// mk::FanOut: one message posted by a kernel to several others, and where its buffers live.
#pragma once

#include <span>

#include "mk/kernel_id.h"

namespace mk {

/// One receiver of a fan-out, and the NUMA node (OS index) its buffer should live on.
struct FanOutSend {
  KernelId to = 0;            ///< The receiving kernel.
  int buffer_numa_node = -1;  ///< Where the buffer this message is written into lives; -1: any.
};

/// One message posted by one kernel to several, in order: a step of an SKB route
/// (docs/replica.md, "Routes"). It says where the route wants the message's buffers, which an
/// executor that models memory (the simulator's cache-line model) prices. With kernels as
/// threads a shared buffer is real (docs/runtime.md, "Shared buffers"); every other message
/// goes into its pair's ring, which boot put on the receiver's node.
struct FanOut {
  std::span<const FanOutSend> sends;  ///< The receivers, first to last.
  /// The receivers all read one buffer, written once on the sender's own node (a broadcast
  /// route's root); each send's `buffer_numa_node` is then ignored. Kernel processes, or a
  /// fan-out with one receiver, get a copy each.
  bool shared_buffer = false;
};

}  // namespace mk
