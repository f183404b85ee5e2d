// mk-skb: output on the shared topologies, and a one-line error with a non-zero exit on bad
// input.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

test::ToolRun run(const std::string& arguments) {
  return test::run_tool(MK_SKB_TOOL, arguments);
}

using test::quoted;

TEST(SkbTool, FactsJsonHasCountsAndEveryCore) {
  for (const auto& topology : test::all_topologies()) {
    SCOPED_TRACE(topology.label);
    const test::ToolRun result = run("--topology " + quoted(topology.argument) + " facts --json");
    ASSERT_EQ(result.status, 0) << result.err;
    const auto doc = nlohmann::json::parse(result.out);
    const Skb skb = test::load_or_fail(topology.argument);
    const MachineCounts counts = skb.counts();
    EXPECT_EQ(doc["pus"], counts.pus);
    EXPECT_EQ(doc["cores"], counts.cores);
    EXPECT_EQ(doc["numa_nodes"], counts.numa_nodes);
    EXPECT_EQ(doc["packages"], counts.packages);
    ASSERT_EQ(doc["core_list"].size(), counts.pus);
    for (const auto& core : doc["core_list"]) {
      const CoreId pu = core["pu"].get<CoreId>();
      EXPECT_EQ(core["numa_node"], skb.numa_node_of(pu).value());
      EXPECT_EQ(core["package"], skb.core_info(pu)->package);
    }
    EXPECT_FALSE(doc["facts"].empty());
    for (const auto& fact : doc["facts"])
      EXPECT_TRUE(fact.contains("source"));
  }
}

TEST(SkbTool, ShowRoutePlaceCentral) {
  const std::string amd = "--topology " + quoted(test::topology_file("16amd64-4distances.xml"));
  const test::ToolRun show = run(amd + " show");
  ASSERT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("NUMA node 7"), std::string::npos);
  EXPECT_NE(show.out.find("usable: 16 PUs"), std::string::npos);

  const test::ToolRun route = run(amd + " route --root 0 --kind numa-multicast --json");
  ASSERT_EQ(route.status, 0) << route.err;
  const auto doc = nlohmann::json::parse(route.out);
  EXPECT_EQ(doc["kind"], "numa-multicast");
  EXPECT_EQ(doc["nodes"].size(), 16u);

  const test::ToolRun subset = run(amd + " route --root 2 --kind unicast --members 0-3,8");
  ASSERT_EQ(subset.status, 0) << subset.err;
  EXPECT_NE(subset.out.find("-> pu 8"), std::string::npos);

  const test::ToolRun place = run(amd + " place 8 --policy one-per-numa-node");
  ASSERT_EQ(place.status, 0) << place.err;
  EXPECT_EQ(std::count(place.out.begin(), place.out.end(), ' '), 7);

  const test::ToolRun central = run(amd + " central");
  ASSERT_EQ(central.status, 0) << central.err;
}

TEST(SkbTool, BadInputIsOneLineAndNonZero) {
  const std::string amd = "--topology " + quoted(test::topology_file("16amd64-4distances.xml"));
  struct Case {
    std::string arguments;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"--topology /nonexistent/m.xml show", "/nonexistent/m.xml"},
           {"--topology 'pack:2 bogus:4' show", "bogus:4"},
           {amd + " --facts /nonexistent/f.json show", "/nonexistent/f.json"},
           {amd + " route --root 0 --kind anycast", "anycast"},
           {amd + " route --root 99 --kind unicast", "99"},
           {amd + " route --root 0 --kind unicast --members 1,x", "'x'"},
           {amd + " route --root 0 --kind unicast --members 0,40", "40"},
           {amd + " place 17", "17"},
           {amd + " place 2 --policy scatter", "scatter"},
           {amd + " measure", "live machine"},
           {amd + " frobnicate", "frobnicate"},
       }) {
    SCOPED_TRACE(c.arguments);
    const test::ToolRun result = run(c.arguments);
    EXPECT_NE(result.status, 0);
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_NE(result.err.find(c.expected), std::string::npos) << result.err;
  }
}

// The inputs that once crashed mk-skb (SIGABRT or SIGSEGV): each is one line naming what is
// wrong, and a non-zero exit.
TEST(SkbTool, InputsThatCrashedAreOneLineErrors) {
  const std::string small = "--topology 'pack:1 numa:1 core:2 pu:1'";
  auto facts = [&](const std::string& name) {
    return small + " --facts " + quoted(test::fuzz_input("facts", name)) + " show";
  };
  auto xml = [](const std::string& name) {
    return "--topology " + quoted(test::fuzz_input("topology_xml", name)) + " show";
  };
  struct Case {
    std::string arguments;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {facts("crash-number-beyond-double.json"), ":1:24: malformed JSON: number overflow"},
           {facts("crash-deep-nesting.json"), "nested deeper than 64"},
           {small + " --facts /dev/zero show", "larger than the 64 MiB limit"},
           {xml("crash-infinite-cpuset.xml"), "cpuset of the machine is infinite"},
           {xml("crash-deep-objects.xml"), "hwloc died of SIGSEGV"},
           {xml("crash-hwloc-segv-misspelt-attribute.xml"), "hwloc died of SIGSEGV"},
           {small + " place 18446744073709551615 --oversubscribe", "more than 64 on one"},
           {small + " place -1 --oversubscribe", "not '-1'"},
           {small + " place 99999999999999999999999", "too many"},
           {"--topology 'pack:1000000 core:1000000 pu:1' show", "more than 131072 PUs"},
       }) {
    SCOPED_TRACE(c.arguments);
    const test::ToolRun result = run(c.arguments);
    EXPECT_EQ(result.status, 1);
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_NE(result.err.find("mk-skb: error: "), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(c.expected), std::string::npos) << result.err;
    EXPECT_TRUE(result.out.empty()) << result.out;
  }
}

// Names from files may hold invalid UTF-8 (this cpukind's CoreType has a 0xff byte): JSON
// output replaces it instead of aborting.
TEST(SkbTool, InvalidUtf8InAFileIsPrintedReplaced) {
  const std::string file = test::fuzz_input("topology_xml", "crash-invalid-utf8-cpukind-name.xml");
  const test::ToolRun result = run("--topology " + quoted(file) + " facts --json");
  ASSERT_EQ(result.status, 0) << result.err;
  const auto doc = nlohmann::json::parse(result.out);
  EXPECT_NE(doc.dump().find("My\xEF\xBF\xBD"
                            "Core"),
            std::string::npos);
}

// Every NUMA node, memory-only ones included, with its capacity, kind, bandwidth and the full
// distance matrix, in show and in facts --json.
TEST(SkbTool, ShowAndFactsListMemoryOnlyNodes) {
  const std::string knl =
      "--topology " + quoted(test::topology_file("64intel64-fakeKNL-SNC4-hybrid-slit.xml"));
  const test::ToolRun show = run(knl + " show");
  ASSERT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("NUMA node 7 (2 GiB, MCDRAM): memory only, near pus 0-3,16-19,32-35,"
                          "48-51; bandwidth 90000 MiB/s"),
            std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("NUMA node 0 (1 GiB); bandwidth 22500 MiB/s"), std::string::npos);
  // The matrix has a row and a column for each of the 8 nodes; row 7 is the XML's SLIT row.
  EXPECT_NE(show.out.find("          0    1    2    3    4    5    6    7\n"), std::string::npos);
  EXPECT_NE(show.out.find("    7    31   41   41   41   41   41   41   10\n"), std::string::npos)
      << show.out;

  const test::ToolRun facts = run(knl + " facts --json");
  ASSERT_EQ(facts.status, 0) << facts.err;
  const auto doc = nlohmann::json::parse(facts.out);
  ASSERT_EQ(doc["numa_node_list"].size(), 8u);
  EXPECT_EQ(doc["numa_nodes"], 4);
  for (const auto& node : doc["numa_node_list"]) {
    EXPECT_EQ(node["distances"].size(), 8u);
    EXPECT_EQ(node["memory_only"], node.value("kind", "") == "MCDRAM") << node.dump();
    EXPECT_TRUE(node.contains("bandwidth_mib_s")) << node.dump();
  }
  std::size_t distance_facts = 0;
  for (const auto& fact : doc["facts"]) {
    if (fact["property"] == "distance" && fact["subject"].get<std::string>().starts_with("numa ")) {
      ++distance_facts;
    }
  }
  EXPECT_EQ(distance_facts, 64u);
}

// A PU in no NUMA node's cpuset is usable, shown in a group of its own, and node -1 in JSON.
TEST(SkbTool, CoresWithoutALocalNodeAreShown) {
  const std::string file =
      "--topology " + quoted(test::topology_file("4pu-2p-package-without-numa.xml"));
  const test::ToolRun show = run(file + " show");
  ASSERT_EQ(show.status, 0) << show.err;
  const auto start = show.out.find("no local NUMA node");
  ASSERT_NE(start, std::string::npos) << show.out;
  const std::string group = show.out.substr(start, show.out.find("central core") - start);
  EXPECT_NE(group.find("package 1\n    core 2   pu 2\n    core 3   pu 3\n"), std::string::npos)
      << show.out;
  EXPECT_EQ(group.find("pu 0"), std::string::npos) << show.out;

  const test::ToolRun facts = run(file + " facts --json");
  ASSERT_EQ(facts.status, 0) << facts.err;
  const auto doc = nlohmann::json::parse(facts.out);
  ASSERT_EQ(doc["core_list"].size(), 4u);
  EXPECT_EQ(doc["core_list"][2]["numa_node"], -1);
  EXPECT_EQ(doc["core_list"][2]["package"], 1);
}

// Without Package objects the machine is one package, and every core is in it.
TEST(SkbTool, AMachineWithoutPackagesIsOnePackage) {
  const test::ToolRun facts = run("--topology 'numa:2 core:2 pu:1' facts --json");
  ASSERT_EQ(facts.status, 0) << facts.err;
  const auto doc = nlohmann::json::parse(facts.out);
  EXPECT_EQ(doc["packages"], 1);
  for (const auto& core : doc["core_list"])
    EXPECT_EQ(core["package"], 0) << core.dump();
  const test::ToolRun show = run("--topology 'numa:2 core:2 pu:1' show");
  ASSERT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("usable: 4 PUs, 4 cores, 1 packages, 2 NUMA nodes"), std::string::npos)
      << show.out;
  EXPECT_EQ(show.out.find("(no package)"), std::string::npos) << show.out;
}

}  // namespace
}  // namespace mk
