// The urpc channel: a ring of cache-line slots on the receiver's NUMA node.
#pragma once

#include "mk/channel.h"
#include "mk/result.h"
#include "transport/slot_format.h"

namespace mk::transport {

/// Both ends of a urpc channel of `geometry`, its ring on NUMA node `node` (-1: the caller's).
Result<ChannelEnds> make_urpc_channel(const SlotGeometry& geometry, int node);

}  // namespace mk::transport
