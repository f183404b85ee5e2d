// Checking ChannelOptions and turning them into a ring's geometry.
#pragma once

#include "mk/channel.h"
#include "mk/result.h"
#include "transport/slot_format.h"

namespace mk::transport {

/// The geometry `options` ask for (line size detected when 0), or invalid_argument naming the
/// field that is out of range: line_size, slots or receiver_numa_node.
Result<SlotGeometry> make_geometry(const ChannelOptions& options);

/// Fewest slots a ring of `line_size`-byte slots needs: a kMaxPayload message must fit even
/// while the last quarter ring read is not yet published to the sender.
std::size_t min_slots(std::size_t line_size);

}  // namespace mk::transport
