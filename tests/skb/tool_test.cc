// mk-skb: output on the shared topologies, and a one-line error with a non-zero exit on bad
// input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

struct ToolRun {
  int status = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string slurp(const std::string& path) {
  std::string text;
  if (FILE* file = std::fopen(path.c_str(), "r")) {
    std::array<char, 4096> buffer;
    while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), file)) {
      text.append(buffer.data(), n);
    }
    std::fclose(file);
  }
  return text;
}

ToolRun run(const std::string& arguments) {
  const test::TempDir temp;
  const std::string& dir = temp.path();
  const std::string command =
      std::string(MK_SKB_TOOL) + " " + arguments + " >" + dir + "/out 2>" + dir + "/err";
  ToolRun result;
  const int raw = std::system(command.c_str());
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  result.out = slurp(dir + "/out");
  result.err = slurp(dir + "/err");
  return result;
}

std::string quoted(const std::string& text) {
  return "'" + text + "'";
}

TEST(SkbTool, FactsJsonHasCountsAndEveryCore) {
  for (const auto& topology : test::all_topologies()) {
    SCOPED_TRACE(topology.label);
    const ToolRun result = run("--topology " + quoted(topology.argument) + " facts --json");
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
  const ToolRun show = run(amd + " show");
  ASSERT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("NUMA node 7"), std::string::npos);
  EXPECT_NE(show.out.find("usable: 16 PUs"), std::string::npos);

  const ToolRun route = run(amd + " route --root 0 --kind numa-multicast --json");
  ASSERT_EQ(route.status, 0) << route.err;
  const auto doc = nlohmann::json::parse(route.out);
  EXPECT_EQ(doc["kind"], "numa-multicast");
  EXPECT_EQ(doc["nodes"].size(), 16u);

  const ToolRun subset = run(amd + " route --root 2 --kind unicast --members 0-3,8");
  ASSERT_EQ(subset.status, 0) << subset.err;
  EXPECT_NE(subset.out.find("-> pu 8"), std::string::npos);

  const ToolRun place = run(amd + " place 8 --policy one-per-numa-node");
  ASSERT_EQ(place.status, 0) << place.err;
  EXPECT_EQ(std::count(place.out.begin(), place.out.end(), ' '), 7);

  const ToolRun central = run(amd + " central");
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
    const ToolRun result = run(c.arguments);
    EXPECT_NE(result.status, 0);
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_NE(result.err.find(c.expected), std::string::npos) << result.err;
  }
}

}  // namespace
}  // namespace mk
