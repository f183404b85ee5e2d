// The simulated channel: a FIFO of messages, each stamped with the virtual instant it arrives.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "mk/channel.h"
#include "mk/clock.h"
#include "mk/kernel_id.h"
#include "mk/result.h"

namespace mk::runtime {

class SimExecutor;

/// What a simulated channel is: who talks, how far apart, what a message costs each end, and
/// how much it holds. A message of n slots costs the sender `send` and the receiver `receive +
/// n * read_per_slot`, and becomes visible `latency + n * flight_per_slot` after its send
/// (SimExecutor::make_channel fills them in from the per-message or the cache-line model).
struct SimChannelShape {
  KernelId from = 0;
  KernelId to = 0;
  Duration latency{0};  ///< Between the sender's last write and the message's visibility.
  Duration send{0};
  /// Added to the visibility per slot: the line's way from the sender's store buffer to the
  /// buffer's node, while the sender goes on.
  Duration flight_per_slot{0};
  Duration receive{0};
  Duration read_per_slot{0};
  std::size_t slots = 0;         ///< Capacity, in slots, as the real ring's.
  std::size_t slot_payload = 0;  ///< Payload bytes per slot, as the real ring's.
};

/// One buffer a kernel writes once and several receivers read (a fan-out with a shared
/// buffer, Executor::begin_fan_out). Its line is served to one reader at a time: a reader's
/// copy arrives only after those of the readers before it, so the k-th reader pays about k
/// transfers where the first pays one.
struct SimSharedBuffer {
  int numa_node = -1;  ///< Where it lives: the writer's node.
  bool written = false;
  std::vector<std::byte> payload;  ///< The fan-out's message, the same for every receiver.
  Instant visible{};               ///< When the writer's slots have arrived at the node.
  Instant free_at{};               ///< When its line can next be served to a reader.
};

/// Where one message is written when not into its channel's own buffer.
struct SimPlacement {
  std::shared_ptr<SimSharedBuffer> shared;  ///< The fan-out's one buffer.
  int numa_node = -1;                       ///< Else a buffer on this node; -1: the channel's.
};

/// Both ends of a channel that delivers each message no earlier than its send instant plus the
/// latency, never before the message sent ahead of it, and only once the receiver's virtual
/// clock has reached that instant. Messages take slots as in the real ring, so a full channel
/// gives SendStatus::full and the runtime's back-pressure works as it does on threads.
ChannelEnds make_sim_channel(SimExecutor& executor, const SimChannelShape& shape);

}  // namespace mk::runtime
