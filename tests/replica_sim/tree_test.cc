// A wave's tree carries its route's buffers: the node each child's buffer lives on, and whether
// the root's children share one buffer (a broadcast).
#include "replica/tree.h"

#include <gtest/gtest.h>

#include <vector>

#include "mk/route.h"
#include "mk/simulation.h"

namespace mk::test {
namespace {

class WaveTree : public ::testing::Test {
 protected:
  void SetUp() override {
    SimulationOptions options;
    options.topology = "pack:4 numa:1 core:2 pu:1";
    options.kernels = 8;
    auto sim = Simulation::create(options);
    ASSERT_TRUE(sim.ok()) << sim.error().describe();
    sim_ = std::move(*sim);
  }

  /// The tree of a `kind` wave from kernel 0 over all eight kernels.
  replica::KernelTree tree(RouteKind kind) {
    std::vector<KernelId> members{0, 1, 2, 3, 4, 5, 6, 7};
    auto built = sim_->run(0, [&](Kernel& k) -> Task<replica::KernelTree> {
      co_return replica::build_tree(k, 0, members, kind);
    });
    EXPECT_TRUE(built.ok());
    return built.ok() ? std::move(*built) : replica::KernelTree{};
  }

  int node_of(KernelId kernel) const {
    auto core = sim_->system().core_of(kernel);
    auto node = core.ok() ? sim_->system().skb().numa_node_of(*core) : core.error();
    EXPECT_TRUE(node.ok());
    return node.ok() ? *node : -2;
  }

  std::unique_ptr<Simulation> sim_;
};

TEST_F(WaveTree, ABroadcastsRootWritesOneBufferForAllItsChildren) {
  const replica::KernelTree broadcast = tree(RouteKind::broadcast);
  const replica::TreeLinks* root = broadcast.find(0);
  ASSERT_NE(root, nullptr);
  EXPECT_TRUE(root->shared_buffer);
  EXPECT_EQ(root->children.size(), 7u);
  EXPECT_TRUE(root->fan_out().shared_buffer);
  for (RouteKind kind : {RouteKind::unicast, RouteKind::multicast, RouteKind::numa_multicast}) {
    for (const auto& [kernel, links] : tree(kind).nodes)
      EXPECT_FALSE(links.shared_buffer) << to_string(kind) << " kernel " << kernel;
  }
}

TEST_F(WaveTree, EachChildsBufferIsWhereTheRoutePutsIt) {
  std::size_t multicast_sends = 0;
  for (const auto& [sender, links] : tree(RouteKind::multicast).nodes) {
    for (const FanOutSend& send : links.children) {
      EXPECT_EQ(send.buffer_numa_node, node_of(sender))
          << "multicast " << sender << " to " << send.to;
      ++multicast_sends;
    }
  }
  EXPECT_EQ(multicast_sends, 7u);
  for (RouteKind kind : {RouteKind::unicast, RouteKind::numa_multicast}) {
    std::size_t sends = 0;
    for (const auto& [sender, links] : tree(kind).nodes) {
      for (const FanOutSend& send : links.children) {
        EXPECT_EQ(send.buffer_numa_node, node_of(send.to)) << to_string(kind) << " to " << send.to;
        ++sends;
      }
    }
    EXPECT_EQ(sends, 7u) << to_string(kind);
  }
}

}  // namespace
}  // namespace mk::test
