// mk::ChannelCost: the measured round trip between two cores over channels of one kind.
#pragma once

#include "mk/channel_kind.h"
#include "mk/latency.h"

namespace mk {

/// What a round trip between two cores costs over a pair of channels of `kind` (one each way).
/// The SKB keeps one per measured kind and pair and picks the cheaper kind for the pair
/// (Skb::transport). Round trips are symmetric, so one value serves both directions.
struct ChannelCost {
  ChannelKind kind = ChannelKind::urpc;  ///< The kind both channels were.
  CoreLatency round_trip;                ///< Between round_trip.a and round_trip.b.
};

}  // namespace mk
