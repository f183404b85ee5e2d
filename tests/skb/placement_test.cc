// Placement: never an unusable core, and each policy's promise.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

constexpr PlacementPolicy kPolicies[] = {PlacementPolicy::compact, PlacementPolicy::spread,
                                         PlacementPolicy::one_per_numa_node,
                                         PlacementPolicy::by_cpukind};

TEST(SkbPlacement, EveryPolicyPicksDistinctUsableCores) {
  for (const auto& topology : test::all_topologies()) {
    SCOPED_TRACE(topology.label);
    const Skb skb = test::load_or_fail(topology.argument);
    const std::size_t usable = skb.usable_cores().size();
    for (PlacementPolicy policy : kPolicies) {
      SCOPED_TRACE(to_string(policy));
      const std::size_t most =
          policy == PlacementPolicy::one_per_numa_node ? skb.counts().numa_nodes : usable;
      for (std::size_t n = 1; n <= most; ++n) {
        auto cores = skb.place(n, policy);
        ASSERT_TRUE(cores.ok()) << n << ": " << cores.error().describe();
        ASSERT_EQ(cores->size(), n);
        EXPECT_EQ(std::set<CoreId>(cores->begin(), cores->end()).size(), n);
        for (CoreId core : *cores)
          EXPECT_TRUE(skb.is_usable(core)) << core;
      }
      auto too_many = skb.place(most + 1, policy);
      ASSERT_FALSE(too_many.ok());
      EXPECT_EQ(too_many.error().code, Errc::invalid_argument);
      EXPECT_NE(too_many.error().message.find(std::to_string(most + 1)), std::string::npos);
    }
  }
}

TEST(SkbPlacement, NeverAnOfflineCore) {
  const Skb skb = test::load_or_fail(test::topology_file("16em64t-4s2c2t-offlines.xml"));
  const std::set<CoreId> offline = {2, 5, 7, 8, 9, 10, 11, 13, 14};
  for (PlacementPolicy policy : kPolicies) {
    PlacementOptions options;
    options.allow_oversubscription = policy != PlacementPolicy::one_per_numa_node;
    const std::size_t n = policy == PlacementPolicy::one_per_numa_node ? 1 : 16;
    auto cores = skb.place(n, policy, options);
    ASSERT_TRUE(cores.ok()) << to_string(policy) << ": " << cores.error().describe();
    for (CoreId core : *cores)
      EXPECT_FALSE(offline.contains(core)) << to_string(policy);
  }
}

TEST(SkbPlacement, CompactFillsACoreThenSpreadLeavesIt) {
  const Skb skb = test::load_or_fail(test::topology_file("24em64t-2n6c2t-pci.xml"));
  auto compact = skb.place(2, PlacementPolicy::compact).value();
  EXPECT_EQ(skb.core_info(compact[0])->core, skb.core_info(compact[1])->core);
  auto spread = skb.place(2, PlacementPolicy::spread).value();
  EXPECT_NE(skb.numa_node_of(spread[0]).value(), skb.numa_node_of(spread[1]).value());
  // Twelve physical cores: spread uses each once before any SMT sibling.
  auto twelve = skb.place(12, PlacementPolicy::spread).value();
  std::set<int> physical;
  for (CoreId core : twelve)
    physical.insert(skb.core_info(core)->core);
  EXPECT_EQ(physical.size(), 12u);
}

TEST(SkbPlacement, OnePerNumaNode) {
  const Skb skb = test::load_or_fail(test::topology_file("28intel64-2p2g7c-CoDgroups.xml"));
  auto cores = skb.place(4, PlacementPolicy::one_per_numa_node).value();
  std::set<int> nodes;
  for (CoreId core : cores)
    nodes.insert(skb.numa_node_of(core).value());
  EXPECT_EQ(nodes.size(), 4u);
  EXPECT_FALSE(skb.place(5, PlacementPolicy::one_per_numa_node).ok());
}

TEST(SkbPlacement, ByCpuKindTakesTheFastestKindFirst) {
  const Skb skb = test::load_or_fail(test::topology_file("fakecpukinds.xml"));
  EXPECT_EQ(skb.place(1, PlacementPolicy::by_cpukind).value(), (std::vector<CoreId>{3}));
  EXPECT_EQ(skb.place(2, PlacementPolicy::by_cpukind).value(), (std::vector<CoreId>{3, 2}));
  EXPECT_EQ(skb.place(4, PlacementPolicy::by_cpukind).value(), (std::vector<CoreId>{3, 2, 0, 1}));
  PlacementOptions small;
  small.cpukind = 0;
  EXPECT_EQ(skb.place(2, PlacementPolicy::by_cpukind, small).value(), (std::vector<CoreId>{0, 1}));
  EXPECT_FALSE(skb.place(3, PlacementPolicy::by_cpukind, small).ok());
  PlacementOptions missing;
  missing.cpukind = 7;
  auto bad = skb.place(1, PlacementPolicy::by_cpukind, missing);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::not_found);
  EXPECT_NE(bad.error().message.find("cpukind 7"), std::string::npos);
}

TEST(SkbPlacement, OversubscriptionReusesCoresOnlyWhenAllowed) {
  const Skb skb = test::load_or_fail("pack:1 core:2 pu:1");
  EXPECT_FALSE(skb.place(8, PlacementPolicy::compact).ok());
  EXPECT_FALSE(skb.place(0, PlacementPolicy::compact).ok());
  PlacementOptions share;
  share.allow_oversubscription = true;
  auto cores = skb.place(5, PlacementPolicy::compact, share).value();
  EXPECT_EQ(cores, (std::vector<CoreId>{0, 1, 0, 1, 0}));
  EXPECT_EQ(skb.poll_budget(cores.size()).count(), 0);
}

TEST(SkbPlacement, PolicyNames) {
  for (PlacementPolicy policy : kPolicies) {
    EXPECT_EQ(parse_placement_policy(to_string(policy)).value(), policy);
  }
  auto bad = parse_placement_policy("scatter");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("scatter"), std::string::npos);
}

}  // namespace
}  // namespace mk
