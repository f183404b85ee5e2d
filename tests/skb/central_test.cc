// The central core against its definition: the core with the lowest worst cost to the others
// (then the lowest total, then the lowest id), computed here pair by pair through the public
// distance() and latency() queries. central_core() finds it from the machine's structure.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "mk/skb.h"
#include "skb/central_reference.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

using test::central_by_definition;

// Subsets a caller may ask about: every core, each NUMA node's, each package's, every other
// core, pairs, and random ones (fixed seed).
std::vector<std::vector<CoreId>> subsets(const Skb& skb) {
  const std::vector<CoreId>& all = skb.usable_cores();
  std::vector<std::vector<CoreId>> sets{all};
  for (const NumaNodeInfo& node : skb.numa_nodes()) {
    if (auto local = skb.cores_of_numa_node(node.os_index); local && !local->empty())
      sets.push_back(*local);
  }
  std::set<int> packages;
  for (CoreId core : all)
    packages.insert(skb.core_info(core)->package);
  for (int package : packages) {
    if (auto cores = skb.cores_of_package(package); cores && !cores->empty())
      sets.push_back(*cores);
  }
  std::vector<CoreId> alternate;
  for (std::size_t i = 0; i < all.size(); i += 2)
    alternate.push_back(all[i]);
  sets.push_back(alternate);
  sets.push_back({all.front(), all.back()});
  std::mt19937 random(12345);
  for (int round = 0; round < 8; ++round) {
    std::vector<CoreId> some;
    for (CoreId core : all) {
      if (random() % 3 == 0) some.push_back(core);
    }
    if (!some.empty()) sets.push_back(some);
  }
  return sets;
}

void expect_definition(const Skb& skb) {
  for (const std::vector<CoreId>& cores : subsets(skb)) {
    SCOPED_TRACE(testing::Message() << cores.size() << " cores from " << cores.front());
    auto central = skb.central_core(cores);
    ASSERT_TRUE(central.ok()) << central.error().describe();
    EXPECT_EQ(*central, central_by_definition(skb, cores));
  }
}

// Shapes beyond test::all_topologies(): caches above NUMA nodes and packages (a cache whose
// cores span several nodes), no caches, flat machines, odd counts.
const char* const kShapes[] = {
    "pack:3 numa:2 l3:1 l2:3 core:2 pu:2",
    "pack:2 l3:1 numa:2 core:3 pu:2",
    "l3:1 pack:4 core:2 pu:1",
    "numa:3 core:5 pu:1",
    "pack:5 pu:3",
    "core:7 pu:1",
    "pack:2 numa:3 l2:2 core:1 pu:3",
    "pack:4 numa:2 l3:2 core:8 pu:2",
};

TEST(SkbCentral, EqualsTheDefinitionOnEveryTopology) {
  std::vector<std::string> machines;
  for (const auto& topology : test::all_topologies())
    machines.push_back(topology.argument);
  machines.insert(machines.end(), std::begin(kShapes), std::end(kShapes));
  machines.push_back(test::fuzz_input("topology_xml", "seed-2pack-distances.xml"));
  for (const std::string& machine : machines) {
    SCOPED_TRACE(machine);
    expect_definition(test::load_or_fail(machine));
  }
}

// Asserted distances replace single pairs, and disabled cores leave the set.
TEST(SkbCentral, EqualsTheDefinitionWithAssertedFacts) {
  for (const std::string& machine :
       {test::topology_file("16amd64-4distances.xml"), std::string(kShapes[0])}) {
    SCOPED_TRACE(machine);
    Skb skb = test::load_or_fail(machine);
    ASSERT_TRUE(skb.assert_facts_json(R"({
      "cores": [{"pu": 0, "usable": false}, {"pu": 5, "usable": false}],
      "distances": [{"between": [1, 2], "value": 1000}, {"between": [3, 9], "value": 2},
                    {"between": [4, 11], "value": 12}, {"between": [6, 7], "value": 999999}]
    })",
                                      "facts.json")
                    .ok());
    expect_definition(skb);
  }
}

// With a latency for every pair, latencies decide (they are another unit than distances).
TEST(SkbCentral, EqualsTheDefinitionByLatency) {
  Skb skb = test::load_or_fail("pack:2 numa:1 core:2 pu:1");
  ASSERT_TRUE(skb.assert_facts_json(R"({"latencies": [
      {"between": [0, 1], "median_ns": 900}, {"between": [0, 2], "median_ns": 100},
      {"between": [0, 3], "median_ns": 800}, {"between": [1, 2], "median_ns": 200},
      {"between": [1, 3], "median_ns": 300}, {"between": [2, 3], "median_ns": 250}]})",
                                    "latencies.json")
                  .ok());
  EXPECT_EQ(skb.central_core().value(), 2u);
  expect_definition(skb);
}

}  // namespace
}  // namespace mk
