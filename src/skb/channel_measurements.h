// The measured facts about channels that the latency cache keeps beside the latencies: round
// trips per channel kind and per answer path, and the prefetch pair distance.
#pragma once

#include <nlohmann/json.hpp>

#include "mk/skb.h"

namespace mk::detail {

/// Adds `skb`'s measured channel costs ("channel_costs"), answer costs ("answer_costs") and
/// measured prefetch pair distance ("prefetch_pair_distance", null when not measured) to a
/// cache document.
void add_channel_measurements(nlohmann::json& doc, const Skb& skb);

}  // namespace mk::detail
