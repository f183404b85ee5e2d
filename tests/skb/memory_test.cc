// Memory-only NUMA nodes: distances over every node, hwloc's memory attributes, and the
// memory-node requests, checked against what hwloc itself reads from the same files.
#include <gtest/gtest.h>
#include <hwloc.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

const char* const kKnl = "64intel64-fakeKNL-SNC4-hybrid.xml";
const char* const kKnlSlit = "64intel64-fakeKNL-SNC4-hybrid-slit.xml";

// The file as hwloc reads it, for expectations computed from the XML rather than typed in.
struct Hwloc {
  hwloc_topology_t topology = nullptr;
  explicit Hwloc(const std::string& path) {
    hwloc_topology_init(&topology);
    hwloc_topology_set_xml(topology, path.c_str());
    EXPECT_EQ(hwloc_topology_load(topology), 0) << path;
  }
  ~Hwloc() { hwloc_topology_destroy(topology); }
  Hwloc(const Hwloc&) = delete;
  Hwloc& operator=(const Hwloc&) = delete;

  std::vector<hwloc_obj_t> nodes() const {
    std::vector<hwloc_obj_t> all;
    for (hwloc_obj_t node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, nullptr);
         node != nullptr; node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, node)) {
      all.push_back(node);
    }
    return all;
  }

  // hwloc's value of `attribute` for accesses from PU `pu` to `node`.
  std::optional<std::uint64_t> value(hwloc_memattr_id_t attribute, hwloc_obj_t node,
                                     CoreId pu) const {
    hwloc_obj_t obj = hwloc_get_pu_obj_by_os_index(topology, pu);
    hwloc_location initiator{};
    initiator.type = HWLOC_LOCATION_TYPE_CPUSET;
    initiator.location.cpuset = obj->cpuset;
    hwloc_uint64_t out = 0;
    if (hwloc_memattr_get_value(topology, attribute, node, &initiator, 0, &out) != 0) {
      return std::nullopt;
    }
    return out;
  }

  // The NUMA latency matrix on the SKB scale (10 on the diagonal), by OS index.
  std::map<std::pair<int, int>, int> matrix() const {
    std::map<std::pair<int, int>, int> out;
    unsigned count = 1;
    hwloc_distances_s* dist = nullptr;
    if (hwloc_distances_get_by_type(topology, HWLOC_OBJ_NUMANODE, &count, &dist, 0, 0) != 0 ||
        count == 0) {
      return out;
    }
    const unsigned n = dist->nbobjs;
    for (unsigned i = 0; i < n; ++i) {
      for (unsigned j = 0; j < n; ++j) {
        const auto self = dist->values[i * n + i];
        out[{static_cast<int>(dist->objs[i]->os_index),
             static_cast<int>(dist->objs[j]->os_index)}] =
            static_cast<int>((dist->values[i * n + j] * 10 + self / 2) / self);
      }
    }
    hwloc_distances_release(topology, dist);
    return out;
  }
};

const NumaNodeInfo& node_info(const Skb& skb, int os_index) {
  for (const NumaNodeInfo& node : skb.numa_nodes()) {
    if (node.os_index == os_index) return node;
  }
  ADD_FAILURE() << "no NUMA node " << os_index;
  return skb.numa_nodes().front();
}

TEST(SkbMemory, DistancesCoverEveryKnlNode) {
  const std::string path = test::topology_file(kKnlSlit);
  const Skb skb = test::load_or_fail(path);
  const auto expected = Hwloc(path).matrix();
  ASSERT_EQ(expected.size(), 64u);
  ASSERT_EQ(skb.numa_nodes().size(), 8u);
  for (const NumaNodeInfo& from : skb.numa_nodes()) {
    for (const NumaNodeInfo& to : skb.numa_nodes()) {
      EXPECT_EQ(skb.numa_distance(from.os_index, to.os_index).value(),
                expected.at({from.os_index, to.os_index}))
          << from.os_index << "-" << to.os_index;
    }
  }
  // A fact per pair of nodes, memory-only ones included, on the SKB scale.
  std::map<std::string, std::string> distance_facts;
  for (const Fact& fact : skb.facts()) {
    if (fact.property == "distance" && fact.subject.starts_with("numa ")) {
      distance_facts[fact.subject] = fact.value;
    }
  }
  EXPECT_EQ(distance_facts.size(), 64u);
  EXPECT_EQ(distance_facts["numa 0-numa 7"], std::to_string(expected.at({0, 7})));
  EXPECT_EQ(distance_facts["numa 6-numa 3"], std::to_string(expected.at({6, 3})));

  // Without a matrix every pair still has a distance: 10 to itself, 20 otherwise.
  const Skb plain = test::load_or_fail(test::topology_file(kKnl));
  for (const NumaNodeInfo& from : plain.numa_nodes()) {
    for (const NumaNodeInfo& to : plain.numa_nodes()) {
      EXPECT_EQ(plain.numa_distance(from.os_index, to.os_index).value(),
                from.os_index == to.os_index ? 10 : 20);
    }
  }
  EXPECT_EQ(plain.numa_distance(0, 8).error().code, Errc::not_found);
  EXPECT_EQ(plain.numa_distance(-1, 0).error().code, Errc::not_found);
}

TEST(SkbMemory, MemoryOnlyNodesHaveNoCores) {
  const std::string path = test::topology_file(kKnl);
  const Skb skb = test::load_or_fail(path);
  const Hwloc hwloc(path);
  std::size_t memory_only = 0;
  for (hwloc_obj_t obj : hwloc.nodes()) {
    const NumaNodeInfo& node = node_info(skb, static_cast<int>(obj->os_index));
    const std::string subtype = obj->subtype == nullptr ? "" : obj->subtype;
    EXPECT_EQ(node.kind, subtype);
    EXPECT_EQ(node.memory_bytes, obj->attr->numanode.local_memory);
    EXPECT_EQ(node.near.size(), static_cast<std::size_t>(hwloc_bitmap_weight(obj->cpuset)));
    // In this file the MCDRAM nodes come second in each cluster: no PU's local memory.
    EXPECT_EQ(node.memory_only(), subtype == "MCDRAM") << node.os_index;
    EXPECT_EQ(node.cores.empty(), node.memory_only());
    if (node.memory_only()) {
      ++memory_only;
      EXPECT_TRUE(skb.cores_of_numa_node(node.os_index)->empty());
    }
  }
  EXPECT_EQ(memory_only, 4u);
  EXPECT_EQ(skb.counts().numa_nodes, 4u);
  for (CoreId core : skb.usable_cores())
    EXPECT_FALSE(node_info(skb, skb.numa_node_of(core).value()).memory_only()) << core;
}

TEST(SkbMemory, AttributesAreHwlocsWhereTheFileHasThem) {
  for (const char* file : {kKnl, "8intel64-4n2t-memattrs.xml", "16amd64-4distances.xml"}) {
    SCOPED_TRACE(file);
    const std::string path = test::topology_file(file);
    const Skb skb = test::load_or_fail(path);
    const Hwloc hwloc(path);
    std::size_t known = 0;
    for (hwloc_obj_t obj : hwloc.nodes()) {
      const NumaNodeInfo& node = node_info(skb, static_cast<int>(obj->os_index));
      for (CoreId core : skb.usable_cores()) {
        const auto bandwidth = hwloc.value(HWLOC_MEMATTR_ID_BANDWIDTH, obj, core);
        EXPECT_EQ(node.bandwidth.from(core), bandwidth) << node.os_index << " from " << core;
        EXPECT_EQ(node.latency.from(core), hwloc.value(HWLOC_MEMATTR_ID_LATENCY, obj, core));
        known += bandwidth.has_value();
      }
    }
    if (std::string(file) == kKnl) {
      // Every core sees its cluster's DDR at 22500 MiB/s and its MCDRAM at 90000.
      EXPECT_EQ(known, 2 * skb.usable_cores().size());
      EXPECT_EQ(node_info(skb, 0).bandwidth.local, 22500u);
      EXPECT_EQ(node_info(skb, 7).bandwidth.local, 90000u);
    } else if (std::string(file) == "16amd64-4distances.xml") {
      EXPECT_EQ(known, 0u);
      EXPECT_FALSE(node_info(skb, 0).bandwidth.local);
    }
  }
}

TEST(SkbMemory, FastestNearACoreFollowsTheBandwidth) {
  for (const char* file : {kKnl, kKnlSlit, "8intel64-4n2t-memattrs.xml"}) {
    SCOPED_TRACE(file);
    const std::string path = test::topology_file(file);
    const Skb skb = test::load_or_fail(path);
    const Hwloc hwloc(path);
    for (CoreId core : skb.usable_cores()) {
      // The highest bandwidth hwloc gives from this core; ties go to the lower OS index.
      std::optional<std::pair<std::uint64_t, int>> best;
      for (hwloc_obj_t obj : hwloc.nodes()) {
        const auto value = hwloc.value(HWLOC_MEMATTR_ID_BANDWIDTH, obj, core);
        const int index = static_cast<int>(obj->os_index);
        if (value &&
            (!best || *value > best->first || (*value == best->first && index < best->second))) {
          best = std::pair(*value, index);
        }
      }
      ASSERT_TRUE(best) << core;
      EXPECT_EQ(skb.memory_node(MemoryRequest::fastest_near(core)).value(), best->second) << core;
    }
  }
  // On the KNL that is the MCDRAM of the core's own cluster.
  const Skb knl = test::load_or_fail(test::topology_file(kKnl));
  for (CoreId core : knl.usable_cores()) {
    const NumaNodeInfo& fastest =
        node_info(knl, knl.memory_node(MemoryRequest::fastest_near(core)).value());
    EXPECT_EQ(fastest.kind, "MCDRAM") << core;
    EXPECT_TRUE(std::binary_search(fastest.near.begin(), fastest.near.end(), core)) << core;
  }
}

TEST(SkbMemory, FastestFallsBackToLatencyThenDistance) {
  // The KNL's values read as latencies: now the lower value, the DDR, is the faster.
  std::string text = test::read_file(test::topology_file(kKnl));
  const auto at = text.find("<memattr name=\"Bandwidth\" flags=\"5\">");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 36, "<memattr name=\"Latency\" flags=\"6\">");
  const Skb latency = Skb::from_xml_text(text, "knl-latency.xml").value();
  EXPECT_FALSE(node_info(latency, 0).bandwidth.local);
  EXPECT_EQ(node_info(latency, 0).latency.local, 22500u);
  for (CoreId core : latency.usable_cores()) {
    EXPECT_EQ(latency.memory_node(MemoryRequest::fastest_near(core)).value(),
              latency.numa_node_of(core).value())
        << core;
  }

  // No attributes: the nearest node, the core's own.
  const Skb plain = test::load_or_fail("pack:2 numa:2 core:2 pu:1");
  for (CoreId core : plain.usable_cores()) {
    EXPECT_EQ(plain.memory_node(MemoryRequest::fastest_near(core)).value(),
              plain.numa_node_of(core).value());
  }
}

TEST(SkbMemory, NearestAndLargest) {
  const std::string path = test::topology_file(kKnlSlit);
  const Skb skb = test::load_or_fail(path);
  const auto matrix = Hwloc(path).matrix();
  for (CoreId core : {0u, 5u, 63u}) {
    const int local = skb.numa_node_of(core).value();
    EXPECT_EQ(skb.memory_node(MemoryRequest::nearest_to(core)).value(), local);
    // The nearest MCDRAM by the file's matrix.
    int best = -1;
    for (const NumaNodeInfo& node : skb.numa_nodes()) {
      if (node.kind == "MCDRAM" &&
          (best < 0 || matrix.at({local, node.os_index}) < matrix.at({local, best}))) {
        best = node.os_index;
      }
    }
    EXPECT_EQ(skb.memory_node(MemoryRequest::nearest_to(core).of_kind("MCDRAM")).value(), best);
  }
  // The largest: the MCDRAM nodes (2 GiB against 1), the lowest OS index first.
  std::uint64_t most = 0;
  int largest = -1;
  for (const NumaNodeInfo& node : skb.numa_nodes()) {
    if (node.memory_bytes > most) {
      most = node.memory_bytes;
      largest = node.os_index;
    }
  }
  EXPECT_EQ(largest, 4);
  EXPECT_EQ(skb.memory_node(MemoryRequest::largest_node()).value(), largest);
  EXPECT_EQ(skb.memory_node(MemoryRequest::largest_node().of_kind("")).value(), largest);
}

TEST(SkbMemory, BadRequestsAreErrors) {
  const Skb skb = test::load_or_fail(test::topology_file(kKnl));
  EXPECT_EQ(skb.memory_node(MemoryRequest::numa_node(5)).value(), 5);
  EXPECT_EQ(skb.memory_node(MemoryRequest::numa_node(5).of_kind("MCDRAM")).value(), 5);
  struct Case {
    MemoryRequest request;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {MemoryRequest::numa_node(8), "NUMA node 8 does not exist"},
           {MemoryRequest::numa_node(-1), "NUMA node -1 does not exist"},
           {MemoryRequest::numa_node(5).of_kind("DRAM"), "kind 'MCDRAM', not 'DRAM'"},
           {MemoryRequest::fastest_near(64), "core 64 does not exist"},
           {MemoryRequest::nearest_to(1000), "core 1000 does not exist"},
           {MemoryRequest::fastest_near(0).of_kind("HBM"), "no NUMA node of kind 'HBM'"},
           {MemoryRequest::largest_node().of_kind("NVM"), "no NUMA node of kind 'NVM'"},
       }) {
    auto node = skb.memory_node(c.request);
    ASSERT_FALSE(node.ok()) << c.expected;
    EXPECT_EQ(node.error().code, Errc::not_found);
    EXPECT_NE(node.error().message.find(c.expected), std::string::npos) << node.error().message;
  }
  // An offline core has no memory near it.
  const Skb offline = test::load_or_fail(test::topology_file("16em64t-4s2c2t-offlines.xml"));
  auto node = offline.memory_node(MemoryRequest::nearest_to(2));
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.error().message.find("offline"), std::string::npos);
  // No node's capacity known: no node is the largest.
  std::string text = test::read_file(test::topology_file("4pu-2p-package-without-numa.xml"));
  const auto at = text.find(" local_memory=\"1073741824\"");
  ASSERT_NE(at, std::string::npos);
  text.erase(at, 26);
  const Skb unknown = Skb::from_xml_text(text, "no-capacity.xml").value();
  EXPECT_EQ(unknown.numa_nodes().front().memory_bytes, 0u);
  auto largest = unknown.memory_node(MemoryRequest::largest_node());
  ASSERT_FALSE(largest.ok());
  EXPECT_NE(largest.error().message.find("has a known capacity"), std::string::npos)
      << largest.error().message;
}

TEST(SkbMemory, CoresWithoutALocalNodeAreUsable) {
  const Skb skb = test::load_or_fail(test::topology_file("4pu-2p-package-without-numa.xml"));
  EXPECT_EQ(skb.usable_cores(), (std::vector<CoreId>{0, 1, 2, 3}));
  EXPECT_EQ(skb.numa_node_of(0).value(), 0);
  EXPECT_EQ(skb.numa_node_of(2).value(), -1);
  EXPECT_EQ(skb.counts().numa_nodes, 1u);
  EXPECT_EQ(skb.counts().packages, 2u);
  EXPECT_EQ(skb.distance(0, 2).value(), 20);
  EXPECT_EQ(skb.memory_node(MemoryRequest::nearest_to(2)).value(), 0);
  auto route = skb.route(2, skb.usable_cores(), RouteKind::numa_multicast);
  ASSERT_TRUE(route.ok()) << route.error().describe();
  EXPECT_EQ(route->nodes.size(), 4u);
}

TEST(SkbMemory, AMachineWithoutPackagesIsOnePackage) {
  for (const char* description : {"core:4 pu:1", "numa:2 core:2 pu:1"}) {
    SCOPED_TRACE(description);
    const Skb skb = test::load_or_fail(description);
    EXPECT_EQ(skb.counts().packages, 1u);
    for (CoreId core : skb.usable_cores())
      EXPECT_EQ(skb.core_info(core)->package, 0);
    EXPECT_EQ(skb.cores_of_package(0).value(), skb.usable_cores());
    // Cores of one node share its package: 6 on the scale, not 10.
    EXPECT_EQ(skb.distance(0, 1).value(), 6);
  }
}

TEST(SkbMemory, RoutesAndPlacementsUseNodesWithCores) {
  const Skb skb = test::load_or_fail(test::topology_file(kKnlSlit));
  auto placed = skb.place(4, PlacementPolicy::one_per_numa_node);
  ASSERT_TRUE(placed.ok()) << placed.error().describe();
  EXPECT_FALSE(skb.place(5, PlacementPolicy::one_per_numa_node).ok());
  auto route = skb.route(0, skb.usable_cores(), RouteKind::numa_multicast);
  ASSERT_TRUE(route.ok()) << route.error().describe();
  for (const RouteNode& node : route->nodes) {
    for (const RouteSend& send : node.sends)
      EXPECT_FALSE(node_info(skb, send.buffer_numa_node).memory_only()) << send.to;
  }
}

}  // namespace
}  // namespace mk
