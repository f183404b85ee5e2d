// The local channel: both ends on one kernel's thread, so no atomics and no fences.
#pragma once

#include "mk/channel.h"
#include "mk/result.h"
#include "mk/slot_format.h"

namespace mk::transport {

/// Both ends of a local channel of `geometry`; they must be used from one thread.
Result<ChannelEnds> make_local_channel(const SlotGeometry& geometry);

}  // namespace mk::transport
