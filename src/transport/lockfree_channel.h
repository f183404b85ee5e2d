// The lockfree channel: the same slots carried by boost::lockfree::spsc_queue.
#pragma once

#include "mk/channel.h"
#include "mk/result.h"
#include "mk/slot_format.h"

namespace mk::transport {

/// Both ends of a lockfree channel of `geometry` (any line size make_geometry accepts).
Result<ChannelEnds> make_lockfree_channel(const SlotGeometry& geometry);

}  // namespace mk::transport
