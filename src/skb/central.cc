#include "skb/central.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "mk/skb.h"

namespace mk {
namespace detail {
namespace {

// What a candidate is judged by: its worst cost to another core of the set, then the total.
using Costs = std::pair<std::int64_t, std::int64_t>;

Costs costs_by_pairs(const Proximity& proximity, CoreId candidate, const std::vector<CoreId>& set) {
  std::int64_t worst = 0;
  std::int64_t total = 0;
  for (CoreId other : set) {
    const std::int64_t cost = proximity(candidate, other);
    worst = std::max(worst, cost);
    total += cost;
  }
  return {worst, total};
}

// Ascending ids, so on a full tie the lower id is kept.
template <class CostsOf>
CoreId best_of(const std::vector<CoreId>& set, CostsOf costs_of) {
  CoreId best = set.front();
  Costs best_costs{std::numeric_limits<std::int64_t>::max(),
                   std::numeric_limits<std::int64_t>::max()};
  for (std::size_t i = 0; i < set.size(); ++i) {
    const Costs costs = costs_of(i);
    if (costs < best_costs) {
      best_costs = costs;
      best = set[i];
    }
  }
  return best;
}

// Distances from a candidate c to the rest of the set, by classes instead of pairs.
//
// topology_distance() gives another core b the cost of the first of c's *groups* holding b,
// in this order: c's physical core (1), then c's caches innermost first (1 + level). These
// groups are all ancestors of c in hwloc's tree, so each holds the ones before it or lies
// inside them; counting the set's members of each group gives how many cores are at each
// cost. The cores outside c's largest group cost node_distance(), which depends only on
// their (NUMA node, package) *label*; per label counts give their sum and maximum, less the
// members of c's largest group. Without distance matrices every remote node costs the same,
// so that takes a few lookups; with matrices, one pass over the labels per (largest group,
// label) pair, which real machines have few of. All of this holds only while the groups nest
// (nests()).
class Structure {
 public:
  Structure(const SkbFacts& facts, const std::vector<CoreId>& set) : facts_(facts) {
    infos_.reserve(set.size());
    std::map<std::pair<int, int>, int> label_ids;
    std::map<int, int> numa_ids;
    for (CoreId core : set) {
      const CoreInfo* info = facts.find(core);
      infos_.push_back(info);
      const auto [numa, added_numa] =
          numa_ids.try_emplace(info->numa_node, static_cast<int>(numa_counts_.size()));
      if (added_numa) numa_counts_.push_back(0);
      ++numa_counts_[static_cast<std::size_t>(numa->second)];
      const auto [label, added] = label_ids.try_emplace(std::pair(info->numa_node, info->package),
                                                        static_cast<int>(labels_.size()));
      if (added) labels_.push_back(Label{info, numa->second, 0});
      ++labels_[static_cast<std::size_t>(label->second)].count;
      label_of_.push_back(label->second);
    }
    for (std::size_t i = 0; i < infos_.size(); ++i) {
      for (const Group& group : chain(i))
        ++members_[group.id];
    }
    // The largest group of each core, and the labels of every member of those groups.
    std::unordered_set<std::size_t> largest;
    for (std::size_t i = 0; i < infos_.size(); ++i) {
      if (auto id = largest_group(i)) largest.insert(*id);
    }
    for (std::size_t i = 0; i < infos_.size(); ++i) {
      for (const Group& group : chain(i)) {
        if (!largest.contains(group.id)) continue;
        Histogram& histogram = histograms_[group.id];
        ++histogram.size;
        ++histogram.labels[label_of_[i]];
        ++histogram.numas[labels_[static_cast<std::size_t>(label_of_[i])].numa];
      }
    }
    uniform_ = !facts.numa_distances && !facts.package_distances;
    for (const Label& label : labels_) {
      if (label.numa != labels_.front().numa) {
        remote_ = node_distance(facts, *labels_.front().info, *label.info);
        break;
      }
    }
  }

  // Whether every core's groups nest as hwloc's tree makes them: each group is followed by
  // the same next group (or by none) in the chain of every member, so each holds the one
  // before it. A topology that contradicts itself (a PU under two caches of one level, a
  // physical core across packages) breaks that; central_core_by_structure then costs pairs.
  bool nests() const {
    std::unordered_map<std::size_t, std::size_t> next;
    for (std::size_t i = 0; i < infos_.size(); ++i) {
      const std::vector<Group> groups = chain(i);
      for (std::size_t k = 0; k < groups.size(); ++k) {
        const std::size_t after = k + 1 < groups.size() ? groups[k + 1].id : kNoGroup;
        const auto [known, added] = next.try_emplace(groups[k].id, after);
        if (!added && known->second != after) return false;
      }
    }
    return true;
  }

  Costs costs(std::size_t i) {
    std::int64_t worst = 0;
    std::int64_t total = 0;
    std::int64_t covered = 1;  // the candidate itself, at cost 0
    for (const Group& group : chain(i)) {
      const std::int64_t members = members_.at(group.id);
      if (members <= covered) continue;
      total += group.cost * (members - covered);
      worst = std::max<std::int64_t>(worst, group.cost);
      covered = members;
    }
    const std::optional<std::size_t> largest = largest_group(i);
    const Histogram* histogram = largest ? &histograms_.at(*largest) : nullptr;
    const Costs outside = uniform_ ? uniform_outside(i, histogram) : outside_by_labels(i, largest);
    return {std::max(worst, outside.first), total + outside.second};
  }

 private:
  struct Label {
    const CoreInfo* info;  // any core with this label
    int numa;              // dense id of its NUMA node
    std::int64_t count;    // cores of the set with this label
  };
  struct Group {
    std::size_t id;  // physical core 2k, cache 2k + 1
    int cost;
  };
  struct Histogram {
    std::int64_t size = 0;
    std::unordered_map<int, std::int64_t> labels;
    std::unordered_map<int, std::int64_t> numas;
  };

  // The groups of core i in topology_distance()'s order.
  std::vector<Group> chain(std::size_t i) const {
    const CoreInfo& info = *infos_[i];
    std::vector<Group> groups;
    if (info.core >= 0) groups.push_back({2 * static_cast<std::size_t>(info.core), kSameCore});
    for (std::size_t cache : info.caches)
      groups.push_back({2 * cache + 1, kCacheBase + facts_.caches[cache].level});
    return groups;
  }

  // The group of core i with the most members (the union of all of them); none for a core
  // without a physical core or cache.
  std::optional<std::size_t> largest_group(std::size_t i) const {
    std::optional<std::size_t> largest;
    std::int64_t most = 0;
    for (const Group& group : chain(i)) {
      if (const std::int64_t members = members_.at(group.id); members > most) {
        most = members;
        largest = group.id;
      }
    }
    return largest;
  }

  static std::int64_t count(const std::unordered_map<int, std::int64_t>& counts, int key) {
    const auto it = counts.find(key);
    return it == counts.end() ? 0 : it->second;
  }

  // Without matrices: own label, rest of the own node (kSameNode), other nodes (remote_).
  Costs uniform_outside(std::size_t i, const Histogram* histogram) const {
    const int label = label_of_[i];
    const Label& own = labels_[static_cast<std::size_t>(label)];
    const auto all = static_cast<std::int64_t>(infos_.size());
    const std::int64_t in_node = numa_counts_[static_cast<std::size_t>(own.numa)];
    const std::int64_t group_label = histogram ? count(histogram->labels, label) : 1;
    const std::int64_t group_node = histogram ? count(histogram->numas, own.numa) : 1;
    const std::int64_t group = histogram ? histogram->size : 1;
    const std::int64_t same_label = own.count - group_label;
    const std::int64_t same_node = (in_node - own.count) - (group_node - group_label);
    const std::int64_t remote = (all - in_node) - (group - group_node);
    const std::int64_t own_cost = node_distance(facts_, *own.info, *own.info);
    std::int64_t worst = 0;
    if (same_label > 0) worst = std::max(worst, own_cost);
    if (same_node > 0) worst = std::max<std::int64_t>(worst, kSameNode);
    if (remote > 0) worst = std::max<std::int64_t>(worst, remote_);
    return {worst, own_cost * same_label + std::int64_t{kSameNode} * same_node + remote_ * remote};
  }

  // With matrices: every label's cost, once per (largest group, label).
  Costs outside_by_labels(std::size_t i, std::optional<std::size_t> largest) {
    const int label = label_of_[i];
    const auto key = std::pair(largest.value_or(kNoGroup), label);
    if (auto it = outside_.find(key); it != outside_.end()) return it->second;
    const CoreInfo& own = *labels_[static_cast<std::size_t>(label)].info;
    std::unordered_map<int, std::int64_t> solo{{label, 1}};
    const auto& in_group = largest ? histograms_.at(*largest).labels : solo;
    std::int64_t worst = 0;
    std::int64_t total = 0;
    for (std::size_t other = 0; other < labels_.size(); ++other) {
      const std::int64_t outside = labels_[other].count - count(in_group, static_cast<int>(other));
      if (outside <= 0) continue;
      const std::int64_t cost = node_distance(facts_, own, *labels_[other].info);
      worst = std::max(worst, cost);
      total += cost * outside;
    }
    return outside_[key] = Costs{worst, total};
  }

  static constexpr std::size_t kNoGroup = std::numeric_limits<std::size_t>::max();

  const SkbFacts& facts_;
  std::vector<const CoreInfo*> infos_;
  std::vector<int> label_of_;
  std::vector<Label> labels_;
  std::vector<std::int64_t> numa_counts_;
  std::unordered_map<std::size_t, std::int64_t> members_;
  std::unordered_map<std::size_t, Histogram> histograms_;
  bool uniform_ = true;
  std::int64_t remote_ = 0;
  std::map<std::pair<std::size_t, int>, Costs> outside_;
};

}  // namespace

CoreId central_core_by_pairs(const SkbFacts& facts, const std::vector<CoreId>& set) {
  const Proximity proximity(facts, set);
  return best_of(set, [&](std::size_t i) { return costs_by_pairs(proximity, set[i], set); });
}

CoreId central_core_by_structure(const SkbFacts& facts, const std::vector<CoreId>& set) {
  // An asserted distance replaces one pair's cost: its two cores are costed pair by pair.
  std::unordered_set<CoreId> asserted;
  for (const auto& [pair, value] : facts.asserted_distances) {
    if (std::binary_search(set.begin(), set.end(), pair.first) &&
        std::binary_search(set.begin(), set.end(), pair.second)) {
      asserted.insert(pair.first);
      asserted.insert(pair.second);
    }
  }
  Structure structure(facts, set);
  if (!structure.nests()) return central_core_by_pairs(facts, set);
  const Proximity proximity(facts, set);
  return best_of(set, [&](std::size_t i) {
    return asserted.contains(set[i]) ? costs_by_pairs(proximity, set[i], set) : structure.costs(i);
  });
}

}  // namespace detail

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
  // Latencies exist pair by pair, so costing every pair is linear in the facts there are.
  if (detail::Proximity(*facts_, set).by_latency()) {
    return detail::central_core_by_pairs(*facts_, set);
  }
  return detail::central_core_by_structure(*facts_, set);
}

}  // namespace mk
