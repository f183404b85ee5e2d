// mk::Route: how one message travels from a root core to a set of kernels.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "mk/core_id.h"
#include "mk/result.h"

namespace mk {

/// The shape of a route (docs/replica.md, "Routes").
enum class RouteKind : std::uint8_t {
  unicast,         ///< The root sends one message to each member.
  broadcast,       ///< The root writes one buffer once, on its own node; every member reads it.
  multicast,       ///< One message to a leader per NUMA node (then per package), which forwards.
  numa_multicast,  ///< Multicast with buffers on each receiver's node, farthest receivers first.
};

/// Short stable name: "unicast", "broadcast", "multicast" or "numa-multicast".
std::string_view to_string(RouteKind kind) noexcept;

/// Parses a name as printed by to_string(RouteKind); the error names the bad value.
Result<RouteKind> parse_route_kind(std::string_view name);

/// One message of a route: a sender writes it into a buffer that `to` reads.
struct RouteSend {
  CoreId to = 0;              ///< The receiving core.
  int buffer_numa_node = -1;  ///< NUMA node (OS index) the buffer should live on; -1 for any.
};

/// One core of a route and the messages it sends, in the order it sends them.
struct RouteNode {
  CoreId core = 0;               ///< This core.
  std::optional<CoreId> parent;  ///< Who sends to it; empty for the root.
  std::vector<RouteSend> sends;  ///< Its sends, first to last.
};

/// A route: a tree rooted at the sender, with a send order at every node. Every member
/// appears exactly once. For a broadcast the root's sends all read the same single buffer.
struct Route {
  RouteKind kind = RouteKind::unicast;  ///< How the route was built.
  CoreId root = 0;                      ///< The sender.
  std::vector<RouteNode> nodes;         ///< Root first, then breadth-first in send order.

  /// The node of `core`, or nullptr when `core` is not on the route.
  const RouteNode* find(CoreId core) const noexcept;
  /// Number of buffers written: sends, except that a broadcast writes one for all.
  std::size_t buffers_written() const noexcept;
};

}  // namespace mk
