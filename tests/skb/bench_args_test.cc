// mk-bench's argument errors: named, and found before any suite runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

test::ToolRun bench(const std::string& arguments) {
  return test::run_tool(MK_BENCH_TOOL, arguments);
}

TEST(BenchArguments, AnUnknownSuiteIsNamedWithTheSuites) {
  const test::ToolRun result = bench("chanel --quick");
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("unknown suite or argument 'chanel'"), std::string::npos) << result.err;
  for (const char* suite : {"all", "channel", "rpc", "idle", "project", "caps"})
    EXPECT_NE(result.err.find(suite), std::string::npos) << suite << ": " << result.err;
}

TEST(BenchArguments, AnUnwritableJsonPathFailsBeforeAnySuiteRuns) {
  const test::TempDir temp;
  const std::string path = temp.path() + "/no/such/dir/results.json";
  const test::ToolRun result = bench("--json " + test::quoted(path) + " channel --quick");
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find(path), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("No such file or directory"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("running"), std::string::npos) << result.err;
  EXPECT_TRUE(result.out.empty()) << result.out;
}

// The check writes nothing: a run refused afterwards (here for its --topology) leaves an
// earlier results file as it was, and creates no file where there was none.
TEST(BenchArguments, CheckingTheJsonPathChangesNothing) {
  const test::TempDir temp;
  const std::string earlier = temp.path() + "/earlier.json";
  test::write_file(earlier, "{\"earlier\": true}\n");
  const std::string fresh = temp.path() + "/fresh.json";
  for (const std::string& path : {earlier, fresh}) {
    const test::ToolRun result =
        bench("--json " + test::quoted(path) + " --topology 'pack:2 bogus:1' project --quick");
    EXPECT_EQ(result.status, 2);
    EXPECT_NE(result.err.find("bogus:1"), std::string::npos) << result.err;
  }
  EXPECT_EQ(test::read_file(earlier), "{\"earlier\": true}\n");
  EXPECT_FALSE(std::filesystem::exists(fresh));
}

TEST(BenchArguments, ABadProfileIsNamedBeforeAnySuiteRuns) {
  const test::TempDir temp;
  const std::string wrong_core = temp.path() + "/wrong-core.json";
  test::write_file(wrong_core, R"({"topology": "pack:1 core:2 pu:1", "clock_ghz": 2,
      "latencies": [{"between": [0, 5], "median_ns": 300}]})");
  const std::string no_clock = temp.path() + "/no-clock.json";
  test::write_file(no_clock, R"({"topology": "pack:1 core:2 pu:1"})");
  const std::string malformed = temp.path() + "/malformed.json";
  test::write_file(malformed, "{\"topology\": ");
  // A good profile whose reference figures are not: the reference is checked with it.
  const char* kGood = R"({"topology": "pack:2 core:1 pu:1", "clock_ghz": 2})";
  const std::string bad_route = temp.path() + "/bad-route.json";
  test::write_file(bad_route, kGood);
  test::write_file(temp.path() + "/bad-route.reference.json",
                   R"({"source": "s", "unit": "cycles",
                       "points": [{"cores": 2, "route": "anycast", "value": 10}]})");
  const std::string bad_unit = temp.path() + "/bad-unit.json";
  test::write_file(bad_unit, kGood);
  test::write_file(temp.path() + "/bad-unit.reference.json",
                   R"({"source": "s", "unit": 7, "points": []})");
  struct Case {
    std::string arguments;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"--profile no-such-machine project", "no no-such-machine.json in"},
           {"--profile " + test::quoted(wrong_core) + " project", "core 5 does not exist"},
           {"--profile " + test::quoted(no_clock) + " project", "must give \"clock_ghz\""},
           {"--profile " + test::quoted(malformed) + " project", "parse error"},
           {"--profile amd-8x4 --topology 'pack:2 core:2 pu:1' project", "give one"},
           {"--profile " + test::quoted(bad_route) + " project",
            "bad-route.reference.json: points[0]: unknown route kind 'anycast'"},
           {"--profile " + test::quoted(bad_unit) + " project", "\"unit\" must be \"cycles\""},
       }) {
    SCOPED_TRACE(c.arguments);
    const test::ToolRun result = bench(c.arguments);
    EXPECT_EQ(result.status, 2);
    EXPECT_NE(result.err.find(c.expected), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find("running"), std::string::npos) << result.err;
  }
}

// A projection on a profile depends on the profile alone: it measures nothing on this host,
// and two runs give the same figures to the last bit.
TEST(BenchArguments, AProjectionOnAProfileIsTheSameEveryRun) {
  const test::TempDir temp;
  std::vector<std::string> outputs;
  for (const char* name : {"/first.json", "/second.json"}) {
    const std::string path = temp.path() + name;
    const test::ToolRun result =
        bench("--json " + test::quoted(path) + " --profile amd-8x4 project");
    ASSERT_EQ(result.status, 0) << result.err;
    outputs.push_back(test::read_file(path));
  }
  EXPECT_EQ(outputs[0], outputs[1]);
  EXPECT_NE(outputs[0].find("project.numa_multicast.32.latency_cycles"), std::string::npos)
      << outputs[0];
  EXPECT_EQ(outputs[0].find("project.host"), std::string::npos) << outputs[0];
  // Its reference figures come with it, each projected point beside its reading.
  EXPECT_NE(outputs[0].find("\"project.reference.unicast.32.latency_cycles\""), std::string::npos)
      << outputs[0];
}

// Every machine of the test data projects: each route at each core count of a quick run (2,
// 4, 8, ... and all usable cores) has its figure, none lost to an error.
TEST(BenchArguments, EveryTestTopologyProjects) {
  const test::TempDir temp;
  std::size_t machines = 0;
  for (const auto& entry : std::filesystem::directory_iterator(MK_TOPOLOGIES_DIR)) {
    if (entry.path().extension() != ".xml") continue;
    ++machines;
    const std::string file = entry.path().string();
    SCOPED_TRACE(file);
    auto skb = Skb::load(file);
    ASSERT_TRUE(skb.ok()) << skb.error().describe();
    const std::size_t cores = skb->usable_cores().size();
    const std::string json = temp.path() + "/" + entry.path().stem().string() + ".json";
    const test::ToolRun result = bench("--quick --json " + test::quoted(json) + " --topology " +
                                       test::quoted(file) + " project");
    ASSERT_EQ(result.status, 0) << result.err;
    const std::string output = test::read_file(json);
    std::vector<std::size_t> counts;
    for (std::size_t n = 2; n < cores; n *= 2)
      counts.push_back(n);
    counts.push_back(cores);
    for (std::size_t n : counts) {
      for (const char* route : {"unicast", "broadcast", "multicast", "numa_multicast"}) {
        const std::string name =
            "\"project." + std::string(route) + "." + std::to_string(n) + ".latency_ns\"";
        EXPECT_NE(output.find(name), std::string::npos) << name << "\n" << result.err;
      }
    }
  }
  EXPECT_GE(machines, 6u);
}

}  // namespace
}  // namespace mk
