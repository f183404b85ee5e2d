// mk::MemoryRequest: which NUMA node's memory a caller wants, by number or by a rule
// (Skb::memory_node, docs/skb.md "Memory nodes").
#pragma once

#include <string>
#include <utility>

#include "mk/core_id.h"

namespace mk {

/// How a MemoryRequest picks its node.
enum class MemoryRule {
  node,          ///< The node named by `MemoryRequest::node`.
  fastest_near,  ///< The fastest memory for accesses from `MemoryRequest::core`.
  nearest_to,    ///< The node at the smallest distance from `MemoryRequest::core`.
  largest,       ///< The node with the most memory.
};

/// A request for a NUMA node's memory: a node by OS index, or a rule, optionally among nodes
/// of one hwloc kind only ("MCDRAM", "HBM", ...). Build one with the static functions.
struct MemoryRequest {
  MemoryRule rule = MemoryRule::largest;  ///< How the node is picked.
  int node = -1;                          ///< OS index, for MemoryRule::node.
  CoreId core = 0;                        ///< The accessing core, for fastest_near and nearest_to.
  std::string kind;  ///< When not empty, only nodes whose hwloc subtype equals it qualify.

  /// NUMA node `os_index`.
  static MemoryRequest numa_node(int os_index) { return {MemoryRule::node, os_index, 0, {}}; }
  /// The fastest memory for `pu`'s accesses: highest bandwidth from it, else lowest latency,
  /// else smallest distance.
  static MemoryRequest fastest_near(CoreId pu) { return {MemoryRule::fastest_near, -1, pu, {}}; }
  /// The memory at the smallest distance from `pu`.
  static MemoryRequest nearest_to(CoreId pu) { return {MemoryRule::nearest_to, -1, pu, {}}; }
  /// The node with the most memory.
  static MemoryRequest largest_node() { return {MemoryRule::largest, -1, 0, {}}; }
  /// This request restricted to nodes of hwloc subtype `subtype`.
  MemoryRequest of_kind(std::string subtype) const {
    MemoryRequest copy = *this;
    copy.kind = std::move(subtype);
    return copy;
  }
};

}  // namespace mk
