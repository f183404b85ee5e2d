// Routes: every kind from every root is a tree over the members with the promised shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

constexpr RouteKind kKinds[] = {RouteKind::unicast, RouteKind::broadcast, RouteKind::multicast,
                                RouteKind::numa_multicast};

int node_of(const Skb& skb, CoreId core) {
  return skb.numa_node_of(core).value();
}

// Checks every invariant of docs/skb.md for one route.
void check_route(const Skb& skb, const Route& route, CoreId root,
                 const std::vector<CoreId>& members) {
  std::set<CoreId> expected(members.begin(), members.end());
  expected.insert(root);

  // Every member exactly once.
  std::multiset<CoreId> seen;
  for (const RouteNode& node : route.nodes)
    seen.insert(node.core);
  ASSERT_EQ(std::set<CoreId>(seen.begin(), seen.end()), expected);
  ASSERT_EQ(seen.size(), expected.size());

  // A tree: the root has no parent, everyone else is sent to exactly once, by its parent,
  // and following parents always reaches the root.
  ASSERT_EQ(route.nodes.front().core, root);
  EXPECT_FALSE(route.nodes.front().parent.has_value());
  std::map<CoreId, int> received;
  for (const RouteNode& node : route.nodes) {
    for (const RouteSend& send : node.sends) {
      ++received[send.to];
      const RouteNode* child = route.find(send.to);
      ASSERT_NE(child, nullptr);
      EXPECT_EQ(child->parent, node.core);
    }
  }
  for (CoreId core : expected)
    EXPECT_EQ(received[core], core == root ? 0 : 1) << core;
  for (const RouteNode& node : route.nodes) {
    CoreId at = node.core;
    for (std::size_t hops = 0; at != root; ++hops) {
      ASSERT_LE(hops, expected.size()) << "cycle through " << node.core;
      at = *route.find(at)->parent;
    }
  }

  const int root_node = node_of(skb, root);
  switch (route.kind) {
    case RouteKind::unicast:
    case RouteKind::broadcast:
      EXPECT_EQ(route.nodes.front().sends.size(), expected.size() - 1);
      for (const RouteSend& send : route.nodes.front().sends) {
        EXPECT_EQ(send.buffer_numa_node,
                  route.kind == RouteKind::broadcast ? root_node : node_of(skb, send.to));
      }
      if (route.kind == RouteKind::broadcast) {
        EXPECT_EQ(route.buffers_written(), expected.size() > 1 ? 1u : 0u);
      }
      break;
    case RouteKind::multicast:
    case RouteKind::numa_multicast: {
      // One message into each remote NUMA node at most.
      std::map<int, int> crossings;
      for (const RouteNode& node : route.nodes) {
        for (const RouteSend& send : node.sends) {
          if (node_of(skb, node.core) != node_of(skb, send.to)) ++crossings[node_of(skb, send.to)];
        }
      }
      for (const auto& [numa, count] : crossings) {
        EXPECT_NE(numa, root_node);
        EXPECT_EQ(count, 1) << "NUMA node " << numa;
      }
      for (const RouteNode& node : route.nodes) {
        for (std::size_t i = 0; i < node.sends.size(); ++i) {
          const RouteSend& send = node.sends[i];
          if (route.kind == RouteKind::numa_multicast) {
            EXPECT_EQ(send.buffer_numa_node, node_of(skb, send.to));
            if (i > 0) {
              EXPECT_GE(skb.distance(node.core, node.sends[i - 1].to).value(),
                        skb.distance(node.core, send.to).value())
                  << "pu " << node.core << " sends nearer before farther";
            }
          } else {
            EXPECT_EQ(send.buffer_numa_node, node_of(skb, node.core));
          }
        }
      }
      break;
    }
  }
}

TEST(SkbRoute, EveryKindFromEveryRootToAllIsAValidTree) {
  for (const auto& topology : test::all_topologies()) {
    SCOPED_TRACE(topology.label);
    const Skb skb = test::load_or_fail(topology.argument);
    const auto& all = skb.usable_cores();
    for (RouteKind kind : kKinds) {
      for (CoreId root : all) {
        SCOPED_TRACE(::testing::Message() << to_string(kind) << " from " << root);
        auto route = skb.route(root, all, kind);
        ASSERT_TRUE(route.ok()) << route.error().describe();
        EXPECT_EQ(route->kind, kind);
        check_route(skb, *route, root, all);
      }
    }
  }
}

TEST(SkbRoute, RandomSubsetsAreValidTrees) {
  std::mt19937 random(42);
  for (const auto& topology : test::all_topologies()) {
    SCOPED_TRACE(topology.label);
    const Skb skb = test::load_or_fail(topology.argument);
    const auto& all = skb.usable_cores();
    for (int round = 0; round < 20; ++round) {
      std::vector<CoreId> members = all;
      std::shuffle(members.begin(), members.end(), random);
      members.resize(1 + random() % members.size());
      const CoreId root = all[random() % all.size()];
      for (RouteKind kind : kKinds) {
        SCOPED_TRACE(::testing::Message() << to_string(kind) << " from " << root);
        auto route = skb.route(root, members, kind);
        ASSERT_TRUE(route.ok()) << route.error().describe();
        check_route(skb, *route, root, members);
      }
    }
  }
}

TEST(SkbRoute, NumaAwareRouteOnTheEightNodeAmdSendsFarthestNodesFirst) {
  const Skb skb = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  const auto& all = skb.usable_cores();
  ASSERT_EQ(all.size(), 16u);
  auto route = skb.route(0, all, RouteKind::numa_multicast);
  ASSERT_TRUE(route.ok()) << route.error().describe();

  const int root_node = node_of(skb, 0);
  std::map<int, int> into;
  for (const RouteNode& node : route->nodes) {
    for (const RouteSend& send : node.sends) {
      if (node_of(skb, node.core) != node_of(skb, send.to)) ++into[node_of(skb, send.to)];
    }
  }
  EXPECT_EQ(into.size(), 7u);
  for (const auto& [numa, count] : into) {
    EXPECT_NE(numa, root_node);
    EXPECT_EQ(count, 1) << "NUMA node " << numa;
  }

  // The root's first sends go to the 4-hop nodes, then 2 hops, then 1 hop, then its own.
  std::vector<int> distances;
  for (const RouteSend& send : route->nodes.front().sends) {
    distances.push_back(skb.distance(0, send.to).value());
  }
  EXPECT_TRUE(std::is_sorted(distances.rbegin(), distances.rend()));
  int farthest = 0;
  for (CoreId core : all)
    farthest = std::max(farthest, skb.distance(0, core).value());
  EXPECT_EQ(distances.front(), farthest);
  EXPECT_EQ(distances.front(), 80);
  EXPECT_EQ(distances.back(), 6);  // core 1, on the root's own package, comes last
}

TEST(SkbRoute, CentralCoreHasMinimalWorstDistance) {
  for (const auto& topology : test::all_topologies()) {
    SCOPED_TRACE(topology.label);
    const Skb skb = test::load_or_fail(topology.argument);
    const auto& all = skb.usable_cores();
    auto worst = [&](CoreId core) {
      int result = 0;
      for (CoreId other : all)
        result = std::max(result, skb.distance(core, other).value());
      return result;
    };
    const CoreId central = skb.central_core().value();
    EXPECT_TRUE(skb.is_usable(central));
    for (CoreId core : all)
      EXPECT_LE(worst(central), worst(core)) << core;
  }
}

TEST(SkbRoute, LatenciesOrderTheRouteWhenEveryPairHasOne) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:4 pu:1");
  // By distance all four cores are alike; measured latencies make 3 the farthest from 0.
  std::vector<CoreLatency> latencies;
  for (CoreId a = 0; a < 4; ++a) {
    for (CoreId b = a + 1; b < 4; ++b) {
      const auto ns = std::chrono::nanoseconds(100 * (a + b));
      latencies.push_back(CoreLatency{a, b, ns, ns, FactSource::measured});
    }
  }
  ASSERT_TRUE(skb.add_measured_latencies(latencies).ok());
  auto route = skb.route(0, skb.usable_cores(), RouteKind::numa_multicast);
  ASSERT_TRUE(route.ok());
  ASSERT_EQ(route->nodes.front().sends.size(), 3u);
  EXPECT_EQ(route->nodes.front().sends[0].to, 3u);
  EXPECT_EQ(route->nodes.front().sends[2].to, 1u);
  // Worst round trips: core 0 300 ns, core 1 400, cores 2 and 3 500.
  EXPECT_EQ(skb.central_core().value(), 0u);
  const std::vector<CoreId> upper = {1, 2, 3};
  EXPECT_EQ(skb.central_core(upper).value(), 1u);
}

TEST(SkbRoute, BadMembersAreErrorsNamingTheCore) {
  const Skb skb = test::load_or_fail(test::topology_file("16em64t-4s2c2t-offlines.xml"));
  const std::vector<CoreId> none;
  auto empty = skb.route(0, none, RouteKind::unicast);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty"), std::string::npos);

  const std::vector<CoreId> unknown = {0, 1, 99};
  auto missing = skb.route(0, unknown, RouteKind::multicast);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  EXPECT_NE(missing.error().message.find("99"), std::string::npos);

  const std::vector<CoreId> offline = {0, 2};
  auto dead = skb.route(0, offline, RouteKind::numa_multicast);
  ASSERT_FALSE(dead.ok());
  EXPECT_NE(dead.error().message.find("member 2"), std::string::npos);

  const std::vector<CoreId> twice = {1, 3, 1};
  auto duplicate = skb.route(0, twice, RouteKind::broadcast);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.error().message.find("1 appears twice"), std::string::npos);

  const std::vector<CoreId> fine = {0, 1};
  auto bad_root = skb.route(5, fine, RouteKind::unicast);
  ASSERT_FALSE(bad_root.ok());
  EXPECT_NE(bad_root.error().message.find("root 5"), std::string::npos);

  EXPECT_FALSE(parse_route_kind("anycast").ok());
  EXPECT_NE(parse_route_kind("anycast").error().message.find("anycast"), std::string::npos);
  EXPECT_EQ(parse_route_kind("numa-multicast").value(), RouteKind::numa_multicast);
}

}  // namespace
}  // namespace mk
