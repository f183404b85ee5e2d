// mk::PlacementPolicy and mk::PlacementOptions: how the SKB chooses cores for n kernels.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "mk/result.h"

namespace mk {

/// Where to put n kernels. No policy ever picks an offline, disallowed or disabled core.
enum class PlacementPolicy : std::uint8_t {
  compact,            ///< Closest cores first: fill a core's PUs, a cache, a package, a node.
  spread,             ///< Farthest apart first: round-robin over NUMA nodes, packages, cores.
  one_per_numa_node,  ///< One kernel on each NUMA node (its central core); n <= nodes.
  by_cpukind,         ///< Fastest kind of core first (highest hwloc efficiency), compact within.
};

/// Short stable name: "compact", "spread", "one-per-numa-node" or "by-cpukind".
std::string_view to_string(PlacementPolicy policy) noexcept;

/// Parses a name as printed by to_string(PlacementPolicy); the error names the bad value.
Result<PlacementPolicy> parse_placement_policy(std::string_view name);

/// Refinements of a placement.
struct PlacementOptions {
  /// With by_cpukind: use only cores of this kind (index into Skb::cpukinds()).
  std::optional<int> cpukind;
  /// Allow more kernels than usable cores; cores are then reused in the policy's order.
  bool allow_oversubscription = false;
};

}  // namespace mk
