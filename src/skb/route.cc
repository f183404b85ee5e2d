#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "mk/skb.h"
#include "skb/facts.h"

namespace mk {
namespace {

// Builds the multicast tree below one sender, level by level: first one leader per other
// NUMA node, then one leader per other package inside the node, then direct sends.
class MulticastBuilder {
 public:
  MulticastBuilder(const detail::SkbFacts& facts, const detail::Proximity& proximity,
                   RouteKind kind, std::map<CoreId, RouteNode>& nodes)
      : facts_(facts), proximity_(proximity), kind_(kind), nodes_(nodes) {}

  // `sender` already has a node; `targets` are the cores below it, not including it.
  void build(CoreId sender, std::vector<CoreId> targets, int level) {
    if (targets.empty()) return;
    if (level == 2) {
      for (CoreId target : targets)
        add_send(sender, target);
      return;
    }
    auto key = [&](CoreId core) {
      const CoreInfo& info = *facts_.find(core);
      return level == 0 ? info.numa_node : info.package;
    };
    std::map<int, std::vector<CoreId>> groups;
    for (CoreId target : targets)
      groups[key(target)].push_back(target);
    const int own = key(sender);
    for (auto& [group, cores] : groups) {
      if (group == own) continue;
      // The leader is the group's core closest to the sender, so the one crossing is short.
      const CoreId leader = *std::min_element(cores.begin(), cores.end(), [&](CoreId a, CoreId b) {
        return std::pair(proximity_(sender, a), a) < std::pair(proximity_(sender, b), b);
      });
      add_send(sender, leader);
      std::erase(cores, leader);
      build(leader, std::move(cores), level + 1);
    }
    if (auto it = groups.find(own); it != groups.end())
      build(sender, std::move(it->second), level + 1);
  }

 private:
  void add_send(CoreId from, CoreId to) {
    const int to_node = facts_.find(to)->numa_node;
    const int from_node = facts_.find(from)->numa_node;
    nodes_[from].sends.push_back(
        RouteSend{to, kind_ == RouteKind::numa_multicast ? to_node : from_node});
    nodes_[to].core = to;
    nodes_[to].parent = from;
  }

  const detail::SkbFacts& facts_;
  const detail::Proximity& proximity_;
  RouteKind kind_;
  std::map<CoreId, RouteNode>& nodes_;
};

}  // namespace

std::string_view to_string(RouteKind kind) noexcept {
  switch (kind) {
    case RouteKind::unicast:
      return "unicast";
    case RouteKind::broadcast:
      return "broadcast";
    case RouteKind::multicast:
      return "multicast";
    case RouteKind::numa_multicast:
      return "numa-multicast";
  }
  return "unknown";
}

Result<RouteKind> parse_route_kind(std::string_view name) {
  for (RouteKind kind : {RouteKind::unicast, RouteKind::broadcast, RouteKind::multicast,
                         RouteKind::numa_multicast}) {
    if (name == to_string(kind)) return kind;
  }
  return error(Errc::invalid_argument,
               fmt::format("unknown route kind '{}' (expected unicast, broadcast, multicast or "
                           "numa-multicast)",
                           name));
}

const RouteNode* Route::find(CoreId core) const noexcept {
  for (const RouteNode& node : nodes) {
    if (node.core == core) return &node;
  }
  return nullptr;
}

std::size_t Route::buffers_written() const noexcept {
  std::size_t sends = 0;
  for (const RouteNode& node : nodes)
    sends += node.sends.size();
  return kind == RouteKind::broadcast ? std::min<std::size_t>(sends, 1) : sends;
}

Result<Route> Skb::route(CoreId root, std::span<const CoreId> members, RouteKind kind) const {
  if (members.empty()) {
    return error(Errc::invalid_argument, "route over an empty set of members");
  }
  std::set<CoreId> seen;
  std::vector<CoreId> targets;
  if (!is_usable(root)) {
    return error(facts_->find(root) ? Errc::invalid_argument : Errc::not_found,
                 fmt::format("route root {} is not a usable core of the {}", root, origin()));
  }
  for (CoreId core : members) {
    if (!is_usable(core)) {
      return error(facts_->find(core) ? Errc::invalid_argument : Errc::not_found,
                   fmt::format("route member {} is not a usable core of the {}", core, origin()));
    }
    if (!seen.insert(core).second) {
      return error(Errc::invalid_argument, fmt::format("route member {} appears twice", core));
    }
    if (core != root) targets.push_back(core);
  }

  std::vector<CoreId> all = targets;
  all.push_back(root);
  const detail::Proximity proximity(*facts_, all);
  const int root_node = facts_->find(root)->numa_node;

  std::map<CoreId, RouteNode> nodes;
  nodes[root].core = root;
  switch (kind) {
    case RouteKind::unicast:
    case RouteKind::broadcast:
      for (CoreId target : targets) {
        const int buffer =
            kind == RouteKind::broadcast ? root_node : facts_->find(target)->numa_node;
        nodes[root].sends.push_back(RouteSend{target, buffer});
        nodes[target].core = target;
        nodes[target].parent = root;
      }
      break;
    case RouteKind::multicast:
    case RouteKind::numa_multicast:
      MulticastBuilder(*facts_, proximity, kind, nodes).build(root, targets, 0);
      break;
  }
  if (kind == RouteKind::numa_multicast) {
    // Farthest first: the longest trips start earliest, so they overlap the short ones.
    for (auto& [core, node] : nodes) {
      std::stable_sort(node.sends.begin(), node.sends.end(),
                       [&, from = core](const RouteSend& a, const RouteSend& b) {
                         return proximity(from, a.to) > proximity(from, b.to);
                       });
    }
  }

  Route route;
  route.kind = kind;
  route.root = root;
  route.nodes.reserve(nodes.size());
  route.nodes.push_back(std::move(nodes[root]));
  // Breadth-first; reserved above, so appending does not move the node being read.
  for (std::size_t i = 0; i < route.nodes.size(); ++i) {
    for (const RouteSend& send : route.nodes[i].sends) {
      route.nodes.push_back(std::move(nodes[send.to]));
    }
  }
  if (route.nodes.size() != targets.size() + 1) {
    return error(Errc::internal, fmt::format("route from {} covers {} of {} cores", root,
                                             route.nodes.size(), targets.size() + 1));
  }
  return route;
}

}  // namespace mk
