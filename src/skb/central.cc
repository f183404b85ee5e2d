#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <set>

#include "mk/skb.h"
#include "skb/facts.h"

namespace mk {

Result<CoreId> Skb::central_core() const {
  return central_core(facts_->usable);
}

Result<CoreId> Skb::central_core(std::span<const CoreId> cores) const {
  if (cores.empty()) return error(Errc::invalid_argument, "central core of an empty set of cores");
  std::set<CoreId> distinct;
  for (CoreId core : cores) {
    if (!is_usable(core)) {
      return error(facts_->find(core) ? Errc::invalid_argument : Errc::not_found,
                   fmt::format("core {} is not a usable core of the {}", core, origin()));
    }
    distinct.insert(core);
  }
  const std::vector<CoreId> set(distinct.begin(), distinct.end());
  const detail::Proximity proximity(*facts_, set);
  CoreId best = set.front();
  auto best_key =
      std::pair(std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::max());
  for (CoreId candidate : set) {
    std::int64_t worst = 0;
    std::int64_t total = 0;
    for (CoreId other : set) {
      const std::int64_t cost = proximity(candidate, other);
      worst = std::max(worst, cost);
      total += cost;
    }
    // Ascending ids, so on a full tie the lower id is kept.
    if (std::pair(worst, total) < best_key) {
      best_key = {worst, total};
      best = candidate;
    }
  }
  return best;
}

}  // namespace mk
