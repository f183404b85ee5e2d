// How a channel's shape follows from the SKB's facts: the transport's one rule for it.
#pragma once

#include <cstddef>
#include <optional>

#include "mk/channel.h"
#include "mk/core_id.h"
#include "mk/result.h"
#include "mk/skb.h"

namespace mk {

/// The options of a channel from core `from` to core `to` of `skb`'s machine, derived by the
/// rule make_channel checks (docs/transport.md, "Geometry"):
/// - line_size: the SKB's cache_line_size;
/// - separation: the SKB's prefetch_pair_distance;
/// - slots: `slots` when given (Config::ring_slots), else the SKB's asserted ring_slots, else
///   kDefaultRingSlots lowered to the largest power of two that fits in half of `to`'s L2, but
///   never below the fewest a kMaxPayload message needs;
/// - receiver_numa_node: `to`'s NUMA node.
/// Errors: not_found for a core the machine lacks or an offline one; invalid_argument naming
/// the fact (and whether it was asserted, measured, discovered or derived) or `ring_slots` when
/// a value is one no channel can be laid out with. The receiver's node is not checked against
/// this host's NUMA nodes (a described machine is not this host); make_channel does that.
Result<ChannelOptions> channel_options_for(const Skb& skb, CoreId from, CoreId to,
                                           std::optional<std::size_t> slots = std::nullopt);

/// Fewest slots a ring of `line_size`-byte slots may have: a kMaxPayload message must fit in
/// three quarters of it, since the sender may see the receiver's progress a quarter ring late.
std::size_t min_ring_slots(std::size_t line_size);

}  // namespace mk
