// Kernel-level trees built from the SKB's core-level routes.
#pragma once

#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "mk/fan_out.h"
#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/route.h"

namespace mk::replica {

/// Where one kernel sits in a wave's tree.
struct TreeLinks {
  std::optional<KernelId> parent;  ///< Empty for the root.
  /// Its children in send order, each with the node the route puts its buffer on (-1 for a
  /// kernel on the sender's own core, which the route does not cover).
  std::vector<FanOutSend> children;
  /// The children read one buffer the sender writes once (a broadcast route's root).
  bool shared_buffer = false;

  /// The children as one fan-out.
  FanOut fan_out() const noexcept { return FanOut{children, shared_buffer}; }
};

/// A wave's tree over kernels: every member once, rooted at the wave's root.
struct KernelTree {
  std::unordered_map<KernelId, TreeLinks> nodes;

  /// The links of `kernel`, or nullptr when it is not on the tree.
  const TreeLinks* find(KernelId kernel) const {
    auto it = nodes.find(kernel);
    return it == nodes.end() ? nullptr : &it->second;
  }
};

/// The tree of a `kind` route from `root` over `members` (the root joins them if absent).
/// The SKB routes over cores; kernels sharing a core hang below the one that leads it (the
/// root on its own core, else the lowest id), after that core's sends to other cores, so the
/// slow crossings start first. Deterministic: every kernel builds the same tree.
KernelTree build_tree(Kernel& kernel, KernelId root, std::span<const KernelId> members,
                      RouteKind kind);

}  // namespace mk::replica
