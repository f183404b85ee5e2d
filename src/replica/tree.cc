#include "replica/tree.h"

#include <algorithm>
#include <map>

#include "mk/skb.h"

namespace mk::replica {

KernelTree build_tree(Kernel& kernel, KernelId root, std::span<const KernelId> members,
                      RouteKind kind) {
  std::map<CoreId, std::vector<KernelId>> by_core;
  by_core[kernel.core_of(root)].push_back(root);
  for (KernelId member : members) {
    if (member != root) by_core[kernel.core_of(member)].push_back(member);
  }
  const CoreId root_core = kernel.core_of(root);
  std::vector<CoreId> cores;
  for (auto& [core, kernels] : by_core) {
    // The root leads its core; elsewhere the lowest id does.
    if (core == root_core) {
      std::sort(kernels.begin() + 1, kernels.end());
    } else {
      std::sort(kernels.begin(), kernels.end());
    }
    cores.push_back(core);
  }

  KernelTree tree;
  tree.nodes[root];
  auto link = [&tree](KernelId parent, KernelId child, int buffer_numa_node) {
    tree.nodes[parent].children.push_back(FanOutSend{child, buffer_numa_node});
    tree.nodes[child].parent = parent;
  };
  auto fan_out = [&](CoreId core) {
    const auto& kernels = by_core[core];
    for (std::size_t i = 1; i < kernels.size(); ++i)
      link(kernels.front(), kernels[i], -1);
  };

  auto route = kernel.skb().route(root_core, cores, kind);
  if (!route) {
    // The members' cores are the System's, which the SKB knows; should it refuse them anyway,
    // a flat tree from the root still reaches everyone.
    for (CoreId core : cores) {
      if (core != root_core) link(root, by_core[core].front(), -1);
    }
    for (CoreId core : cores)
      fan_out(core);
    return tree;
  }
  for (const RouteNode& node : route->nodes) {
    const KernelId leader = by_core[node.core].front();
    for (const RouteSend& send : node.sends)
      link(leader, by_core[send.to].front(), send.buffer_numa_node);
    fan_out(node.core);
  }
  // Kernels sharing the root's core read its one buffer too.
  tree.nodes[root].shared_buffer = kind == RouteKind::broadcast && route->nodes.size() > 1;
  return tree;
}

}  // namespace mk::replica
