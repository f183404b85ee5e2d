// Loading: every topology loads and agrees with hwloc's own view of it.
#include <gtest/gtest.h>
#include <hwloc.h>
#include <sched.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

// hwloc's view, loaded the default way: disallowed PUs removed, offline ones absent.
struct HwlocView {
  hwloc_topology_t topology = nullptr;
  explicit HwlocView(const std::string& argument) {
    hwloc_topology_init(&topology);
    if (std::filesystem::exists(argument)) {
      hwloc_topology_set_xml(topology, argument.c_str());
    } else {
      hwloc_topology_set_synthetic(topology, argument.c_str());
    }
    EXPECT_EQ(hwloc_topology_load(topology), 0) << argument;
  }
  ~HwlocView() { hwloc_topology_destroy(topology); }
  HwlocView(const HwlocView&) = delete;
  HwlocView& operator=(const HwlocView&) = delete;

  std::size_t count(hwloc_obj_type_t type) const {
    std::size_t n = 0;
    for (hwloc_obj_t obj = hwloc_get_next_obj_by_type(topology, type, nullptr); obj != nullptr;
         obj = hwloc_get_next_obj_by_type(topology, type, obj)) {
      ++n;
    }
    return n;
  }

  // The first NUMA node in hwloc's order whose cpuset holds `pu` (its local memory), or null.
  hwloc_obj_t local_node(hwloc_obj_t pu) const {
    for (hwloc_obj_t node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, nullptr);
         node != nullptr; node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, node)) {
      if (hwloc_bitmap_isset(node->cpuset, pu->os_index)) return node;
    }
    return nullptr;
  }

  // NUMA nodes local to some PU: memory-only nodes (MCDRAM beside DRAM) are not.
  std::size_t local_nodes() const {
    std::set<hwloc_obj_t> nodes;
    for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_PU, nullptr);
         pu != nullptr; pu = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_PU, pu)) {
      if (hwloc_obj_t node = local_node(pu)) nodes.insert(node);
    }
    return nodes.size();
  }
};

TEST(SkbLoad, EveryTopologyLoadsAndAgreesWithHwloc) {
  for (const auto& topology : test::all_topologies()) {
    SCOPED_TRACE(topology.label);
    const Skb skb = test::load_or_fail(topology.argument);
    const HwlocView hwloc(topology.argument);
    const MachineCounts counts = skb.counts();
    EXPECT_EQ(counts.pus, hwloc.count(HWLOC_OBJ_PU));
    EXPECT_EQ(counts.cores, hwloc.count(HWLOC_OBJ_CORE));
    EXPECT_EQ(counts.numa_nodes, hwloc.local_nodes());
    EXPECT_EQ(skb.numa_nodes().size(), hwloc.count(HWLOC_OBJ_NUMANODE));
    // A machine without Package objects is one package.
    const bool has_packages = hwloc.count(HWLOC_OBJ_PACKAGE) > 0;
    EXPECT_EQ(counts.packages, has_packages ? hwloc.count(HWLOC_OBJ_PACKAGE) : 1);
    EXPECT_EQ(skb.usable_cores().size(), counts.pus);
    EXPECT_GE(skb.cache_line_size(), 16u);

    for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(hwloc.topology, HWLOC_OBJ_PU, nullptr);
         pu != nullptr; pu = hwloc_get_next_obj_by_type(hwloc.topology, HWLOC_OBJ_PU, pu)) {
      const CoreId core = pu->os_index;
      ASSERT_TRUE(skb.is_usable(core)) << core;
      const CoreInfo info = skb.core_info(core).value();
      hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(hwloc.topology, HWLOC_OBJ_PACKAGE, pu);
      EXPECT_EQ(info.package, package        ? static_cast<int>(package->logical_index)
                              : has_packages ? -1
                                             : 0)
          << core;
      hwloc_obj_t physical = hwloc_get_ancestor_obj_by_type(hwloc.topology, HWLOC_OBJ_CORE, pu);
      EXPECT_EQ(info.core, physical ? static_cast<int>(physical->logical_index) : -1) << core;
      const int node = skb.numa_node_of(core).value();
      hwloc_obj_t numa = hwloc.local_node(pu);
      EXPECT_EQ(node, numa ? static_cast<int>(numa->os_index) : -1) << core;
      if (numa == nullptr) continue;
      auto local = skb.cores_of_numa_node(node);
      ASSERT_TRUE(local.ok());
      EXPECT_TRUE(std::count(local->begin(), local->end(), core) == 1) << core;
    }
  }
}

TEST(SkbLoad, OfflinePusAreFactsButNeverUsable) {
  const Skb skb = test::load_or_fail(test::topology_file("16em64t-4s2c2t-offlines.xml"));
  // The complete cpuset is 0-15; the online one 0,1,3,4,6,12,15.
  EXPECT_EQ(skb.cores().size(), 16u);
  EXPECT_EQ(skb.usable_cores(), (std::vector<CoreId>{0, 1, 3, 4, 6, 12, 15}));
  for (CoreId offline : {2u, 5u, 7u, 8u, 9u, 10u, 11u, 13u, 14u}) {
    EXPECT_FALSE(skb.is_usable(offline)) << offline;
    EXPECT_FALSE(skb.core_info(offline)->online) << offline;
    EXPECT_FALSE(skb.numa_node_of(offline).ok()) << offline;
    EXPECT_FALSE(skb.distance(0, offline).ok()) << offline;
  }
  EXPECT_FALSE(skb.core_info(16).ok());
}

TEST(SkbLoad, CpuKindsComeFromHwloc) {
  const Skb skb = test::load_or_fail(test::topology_file("fakecpukinds.xml"));
  ASSERT_EQ(skb.cpukinds().size(), 3u);
  EXPECT_EQ(skb.cpukinds()[0].cores, (std::vector<CoreId>{0, 1}));
  EXPECT_EQ(skb.cpukinds()[0].name, "MySmallCore");
  EXPECT_EQ(skb.cpukinds()[2].cores, (std::vector<CoreId>{3}));
  EXPECT_EQ(skb.cpukinds()[2].name, "IntelCore");
  EXPECT_LT(skb.cpukinds()[0].efficiency, skb.cpukinds()[1].efficiency);
  EXPECT_LT(skb.cpukinds()[1].efficiency, skb.cpukinds()[2].efficiency);
  EXPECT_EQ(skb.core_info(2)->cpukind, 1);
  EXPECT_EQ(skb.core_info(3)->efficiency, skb.cpukinds()[2].efficiency);
}

TEST(SkbLoad, LiveMachineIsTheProcessAffinity) {
  auto skb = Skb::discover();
  ASSERT_TRUE(skb.ok()) << skb.error().describe();
  EXPECT_TRUE(skb->is_live());
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  for (CoreId core : skb->usable_cores())
    EXPECT_TRUE(CPU_ISSET(core, &set)) << core;
  EXPECT_EQ(skb->usable_cores().size(), static_cast<std::size_t>(CPU_COUNT(&set)));
  EXPECT_GE(skb->cache_line_size(), 16u);
  EXPECT_EQ(skb->fingerprint(), Skb::discover()->fingerprint());
}

TEST(SkbLoad, DistancesFollowTheDocumentedScale) {
  const Skb skb = test::load_or_fail("pack:2 numa:1 l3:1 l2:2 core:2 pu:2");
  // PUs: package 0 holds 0-7; each core has 2 PUs, each L2 two cores, one L3 per package.
  EXPECT_EQ(skb.distance(0, 0).value(), 0);
  EXPECT_EQ(skb.distance(0, 1).value(), 1);   // same core
  EXPECT_EQ(skb.distance(0, 2).value(), 3);   // shared L2
  EXPECT_EQ(skb.distance(0, 4).value(), 4);   // shared L3
  EXPECT_EQ(skb.distance(0, 8).value(), 20);  // another NUMA node, no matrix
  EXPECT_EQ(skb.distance(8, 0).value(), 20);
  EXPECT_EQ(skb.cores_sharing_cache(0, 2).value(), (std::vector<CoreId>{0, 1, 2, 3}));
  EXPECT_EQ(skb.cores_of_package(1)->size(), 8u);
  EXPECT_FALSE(skb.cores_of_package(2).ok());
  EXPECT_FALSE(skb.cores_of_numa_node(7).ok());
  EXPECT_FALSE(skb.cores_sharing_cache(0, 4).ok());

  const Skb amd = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  // Cores 0 and 1 share package 0 without sharing a cache; 2 is one hop away, 4 is four.
  EXPECT_EQ(amd.distance(0, 1).value(), 6);
  EXPECT_EQ(amd.distance(0, 2).value(), 20);
  EXPECT_EQ(amd.distance(0, 6).value(), 40);
  EXPECT_EQ(amd.distance(0, 4).value(), 80);
}

TEST(SkbLoad, FirstQueries) {
  const Skb skb = test::load_or_fail("pack:2 numa:1 core:2 pu:1");
  EXPECT_EQ(skb.transport(1, 1), ChannelKind::local);
  EXPECT_EQ(skb.transport(0, 3), ChannelKind::urpc);
  EXPECT_GT(skb.poll_budget(4).count(), 0);
  EXPECT_EQ(skb.poll_budget(5).count(), 0);
  EXPECT_FALSE(skb.asserted_ring_slots().has_value());
  EXPECT_EQ(skb.numa_node_of(2).value(), 1);
  EXPECT_FALSE(skb.numa_node_of(4).ok());
  EXPECT_FALSE(skb.is_usable(4));
}

TEST(SkbLoad, FactsListEveryCoreWithItsSource) {
  const Skb skb = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  const auto facts = skb.facts();
  std::set<std::string> subjects;
  for (const Fact& fact : facts) {
    if (fact.property == "numa_node") {
      EXPECT_EQ(fact.source, FactSource::discovered);
      subjects.insert(fact.subject);
    }
  }
  EXPECT_EQ(subjects.size(), 16u);
  EXPECT_TRUE(std::any_of(facts.begin(), facts.end(), [](const Fact& fact) {
    return fact.subject == "numa 1-numa 0" && fact.value == "20";
  }));
}

}  // namespace
}  // namespace mk
