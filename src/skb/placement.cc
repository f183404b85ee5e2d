#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "mk/skb.h"
#include "skb/facts.h"

namespace mk {
namespace {

// System::boot lets at most 64 kernels share a core (Config::kernels_per_core); more is a
// mistake, such as -1 read as 2^64 - 1, and must not become an allocation that size.
constexpr std::size_t kMaxKernelsPerCore = 64;

// Tree order: hwloc's logical PU order lists a core's PUs together, then a cache's cores,
// a package's, a node's.
std::vector<CoreId> compact_order(const detail::SkbFacts& facts, std::vector<CoreId> cores) {
  std::sort(cores.begin(), cores.end(), [&](CoreId a, CoreId b) {
    return facts.find(a)->logical_index < facts.find(b)->logical_index;
  });
  return cores;
}

std::vector<CoreId> interleave(const std::vector<std::vector<CoreId>>& sequences) {
  std::vector<CoreId> result;
  for (std::size_t round = 0;; ++round) {
    bool any = false;
    for (const auto& sequence : sequences) {
      if (round < sequence.size()) {
        result.push_back(sequence[round]);
        any = true;
      }
    }
    if (!any) return result;
  }
}

// Round-robin at every level (NUMA node, package, physical core), so each new kernel lands
// as far as possible from those placed before it.
std::vector<CoreId> spread_order(const detail::SkbFacts& facts, const std::vector<CoreId>& cores,
                                 int level) {
  if (level == 3) return cores;
  std::map<int, std::vector<CoreId>> groups;
  for (CoreId core : cores) {
    const CoreInfo& info = *facts.find(core);
    const int key = level == 0 ? info.numa_node : level == 1 ? info.package : info.core;
    groups[key].push_back(core);
  }
  std::vector<std::vector<CoreId>> sequences;
  for (auto& [key, members] : groups)
    sequences.push_back(spread_order(facts, members, level + 1));
  return interleave(sequences);
}

}  // namespace

std::string_view to_string(PlacementPolicy policy) noexcept {
  switch (policy) {
    case PlacementPolicy::compact:
      return "compact";
    case PlacementPolicy::spread:
      return "spread";
    case PlacementPolicy::one_per_numa_node:
      return "one-per-numa-node";
    case PlacementPolicy::by_cpukind:
      return "by-cpukind";
  }
  return "unknown";
}

Result<PlacementPolicy> parse_placement_policy(std::string_view name) {
  for (PlacementPolicy policy : {PlacementPolicy::compact, PlacementPolicy::spread,
                                 PlacementPolicy::one_per_numa_node, PlacementPolicy::by_cpukind}) {
    if (name == to_string(policy)) return policy;
  }
  return error(Errc::invalid_argument,
               fmt::format("unknown placement policy '{}' (expected compact, spread, "
                           "one-per-numa-node or by-cpukind)",
                           name));
}

Result<std::vector<CoreId>> Skb::place(std::size_t n, PlacementPolicy policy,
                                       const PlacementOptions& options) const {
  if (n == 0) return error(Errc::invalid_argument, "placement of 0 kernels");
  const detail::SkbFacts& facts = *facts_;
  std::vector<CoreId> order;
  switch (policy) {
    case PlacementPolicy::compact:
      order = compact_order(facts, facts.usable);
      break;
    case PlacementPolicy::spread:
      order = spread_order(facts, compact_order(facts, facts.usable), 0);
      break;
    case PlacementPolicy::one_per_numa_node: {
      for (const NumaNodeInfo& node : facts.numa_nodes) {
        auto local = cores_of_numa_node(node.os_index);
        if (!local || local->empty()) continue;
        auto center = central_core(*local);
        if (!center) return std::move(center).error();
        order.push_back(*center);
      }
      if (n > order.size()) {
        return error(Errc::invalid_argument,
                     fmt::format("{} kernels one per NUMA node, but the {} has {} NUMA nodes "
                                 "with usable cores",
                                 n, origin(), order.size()));
      }
      break;
    }
    case PlacementPolicy::by_cpukind: {
      if (options.cpukind &&
          (*options.cpukind < 0 || *options.cpukind >= static_cast<int>(facts.cpukinds.size()))) {
        return error(Errc::not_found,
                     fmt::format("cpukind {} does not exist on the {} ({} kinds)", *options.cpukind,
                                 origin(), facts.cpukinds.size()));
      }
      std::vector<CoreId> candidates;
      for (CoreId core : facts.usable) {
        if (!options.cpukind || facts.find(core)->cpukind == *options.cpukind) {
          candidates.push_back(core);
        }
      }
      order = compact_order(facts, candidates);
      std::stable_sort(order.begin(), order.end(), [&](CoreId a, CoreId b) {
        return facts.find(a)->efficiency > facts.find(b)->efficiency;
      });
      break;
    }
  }
  if (order.empty()) {
    return error(Errc::unavailable,
                 fmt::format("no usable core fits placement policy {}", to_string(policy)));
  }
  if (n > order.size() && !options.allow_oversubscription) {
    return error(Errc::invalid_argument,
                 fmt::format("{} kernels under policy {}, but only {} usable cores fit (allow "
                             "oversubscription to share cores)",
                             n, to_string(policy), order.size()));
  }
  if (n > kMaxKernelsPerCore * order.size()) {
    return error(Errc::too_large,
                 fmt::format("{} kernels under policy {} would put more than {} on one of the {} "
                             "usable cores",
                             n, to_string(policy), kMaxKernelsPerCore, order.size()));
  }
  std::vector<CoreId> placed;
  placed.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    placed.push_back(order[i % order.size()]);
  return placed;
}

}  // namespace mk
