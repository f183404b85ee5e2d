// Distances between NUMA nodes, memory-only ones included, and the memory-node requests
// (docs/skb.md, "Memory nodes").
#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "mk/skb.h"
#include "skb/facts.h"

namespace mk {
namespace {

const NumaNodeInfo* find_node(const detail::SkbFacts& facts, int os_index) {
  auto it =
      std::lower_bound(facts.numa_nodes.begin(), facts.numa_nodes.end(), os_index,
                       [](const NumaNodeInfo& node, int index) { return node.os_index < index; });
  return it != facts.numa_nodes.end() && it->os_index == os_index ? &*it : nullptr;
}

// An online PU local to `node`, standing for it where the packages decide a distance.
const CoreInfo* some_core(const detail::SkbFacts& facts, const NumaNodeInfo& node) {
  for (CoreId pu : node.cores) {
    if (const CoreInfo* core = facts.find(pu); core != nullptr && core->online) return core;
  }
  return nullptr;
}

// Distance from an online core's local memory to `node`: 10 for its own node, else the
// distance between the nodes; a core with no local node is remote from every node, except
// that a package matrix may tell how remote the node's cores are.
int core_to_node(const detail::SkbFacts& facts, const CoreInfo& core, const NumaNodeInfo& node) {
  if (core.numa_node == node.os_index) return detail::kSameNode;
  if (core.numa_node >= 0) return detail::numa_node_distance(facts, core.numa_node, node);
  if (const CoreInfo* local = some_core(facts, node)) {
    return detail::node_distance(facts, core, *local);
  }
  return detail::kRemoteNode;
}

std::string kind_text(const MemoryRequest& request) {
  return request.kind.empty() ? std::string() : fmt::format(" of kind '{}'", request.kind);
}

}  // namespace

namespace detail {

int numa_node_distance(const SkbFacts& facts, int from, const NumaNodeInfo& to) {
  if (from == to.os_index) return kSameNode;
  if (facts.numa_distances) {
    if (auto value = facts.numa_distances->normalized(from, to.os_index)) {
      return std::max(*value, kSameNode + 1);
    }
  }
  // Two nodes with cores are as far apart as their cores are across nodes (a package matrix
  // may tell); anything else only as far as an unknown remote node.
  const NumaNodeInfo* source = find_node(facts, from);
  const CoreInfo* x = source == nullptr ? nullptr : some_core(facts, *source);
  const CoreInfo* y = some_core(facts, to);
  if (x != nullptr && y != nullptr) return node_distance(facts, *x, *y);
  return kRemoteNode;
}

}  // namespace detail

Result<int> Skb::numa_distance(int from, int to) const {
  const NumaNodeInfo* target = find_node(*facts_, to);
  for (int index : {from, to}) {
    if (find_node(*facts_, index) == nullptr) {
      return error(Errc::not_found,
                   fmt::format("NUMA node {} does not exist on the {}", index, origin()));
    }
  }
  return detail::numa_node_distance(*facts_, from, *target);
}

Result<int> Skb::memory_node(const MemoryRequest& request) const {
  const detail::SkbFacts& facts = *facts_;
  if (request.rule == MemoryRule::node) {
    const NumaNodeInfo* node = find_node(facts, request.node);
    if (node == nullptr) {
      return error(Errc::not_found,
                   fmt::format("NUMA node {} does not exist on the {}", request.node, origin()));
    }
    if (!request.kind.empty() && node->kind != request.kind) {
      return error(Errc::not_found,
                   fmt::format("NUMA node {} is of kind '{}', not '{}'", request.node,
                               node->kind.empty() ? "unknown" : node->kind, request.kind));
    }
    return request.node;
  }

  std::vector<const NumaNodeInfo*> candidates;
  for (const NumaNodeInfo& node : facts.numa_nodes) {
    if (request.kind.empty() || node.kind == request.kind) candidates.push_back(&node);
  }
  if (candidates.empty()) {
    return error(Errc::not_found,
                 fmt::format("no NUMA node{} on the {}", kind_text(request), origin()));
  }

  if (request.rule == MemoryRule::largest) {
    const NumaNodeInfo* best = nullptr;
    for (const NumaNodeInfo* node : candidates) {
      if (node->memory_bytes > 0 && (best == nullptr || node->memory_bytes > best->memory_bytes)) {
        best = node;
      }
    }
    if (best == nullptr) {
      return error(Errc::not_found, fmt::format("no NUMA node{} on the {} has a known capacity",
                                                kind_text(request), origin()));
    }
    return best->os_index;
  }

  const CoreInfo* core = facts.find(request.core);
  if (core == nullptr) {
    return error(Errc::not_found,
                 fmt::format("core {} does not exist on the {}", request.core, origin()));
  }
  if (!core->online) {
    return error(Errc::not_found,
                 fmt::format("core {} is offline: no memory is near it", request.core));
  }
  // Candidates are ordered by a key, then by distance, then by OS index (they ascend by it).
  auto pick = [&](auto key) {
    const NumaNodeInfo* best = nullptr;
    std::tuple<std::uint64_t, int> best_key{};
    for (const NumaNodeInfo* node : candidates) {
      const std::tuple<std::uint64_t, int> mine{key(*node), core_to_node(facts, *core, *node)};
      if (best == nullptr || mine < best_key) {
        best = node;
        best_key = mine;
      }
    }
    return best->os_index;
  };
  if (request.rule == MemoryRule::fastest_near) {
    // Bandwidth first, where hwloc knows it for this core; then latency; then distance.
    const bool by_bandwidth = std::any_of(candidates.begin(), candidates.end(), [&](auto* node) {
      return node->bandwidth.from(request.core).has_value();
    });
    if (by_bandwidth) {
      // Unknown bandwidth sorts last; higher is better, so the key is its complement.
      return pick([&](const NumaNodeInfo& node) {
        const auto value = node.bandwidth.from(request.core);
        return value ? ~*value : ~std::uint64_t{0};
      });
    }
    const bool by_latency = std::any_of(candidates.begin(), candidates.end(), [&](auto* node) {
      return node->latency.from(request.core).has_value();
    });
    if (by_latency) {
      return pick([&](const NumaNodeInfo& node) {
        return node.latency.from(request.core).value_or(~std::uint64_t{0});
      });
    }
  }
  return pick([](const NumaNodeInfo&) { return std::uint64_t{0}; });
}

}  // namespace mk
