// Finding the central core: the one whose worst cost to the others is lowest.
#pragma once

#include <vector>

#include "mk/core_id.h"
#include "skb/facts.h"

namespace mk::detail {

/// The central core of `set` (distinct usable cores, ascending, not empty) from the cost of
/// every pair: the definition, quadratic in the size of the set. Ties go to the lower total
/// cost, then to the lower id.
CoreId central_core_by_pairs(const SkbFacts& facts, const std::vector<CoreId>& set);

/// The same core when the costs are distances, from the machine's structure in time about
/// linear in the size of the set (docs/skb.md, "The central core").
CoreId central_core_by_structure(const SkbFacts& facts, const std::vector<CoreId>& set);

}  // namespace mk::detail
