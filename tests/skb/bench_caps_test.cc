// mk-bench caps: every figure of the capability service beside its shared-memory baseline, and
// revoke projected over every route on the 8 x 4-core AMD profile, none lost to an error.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "skb/skb_test_support.h"

namespace mk {
namespace {

TEST(BenchCaps, EveryFigureIsBesideItsBaselineAndRevokeIsProjectedOverEveryRoute) {
  const test::TempDir temp;
  const std::string path = temp.path() + "/caps.json";
  const test::ToolRun run =
      test::run_tool(MK_BENCH_TOOL, "caps --quick --json " + test::quoted(path));
  ASSERT_EQ(run.status, 0) << run.err;
  const nlohmann::json report = nlohmann::json::parse(test::read_file(path));
  std::map<std::string, nlohmann::json> results;
  for (const nlohmann::json& result : report.at("results"))
    results[result.at("name").get<std::string>()] = result;

  // Every run has at least two kernels, so revoke is measured with copies on one and on two.
  for (const std::string stem : {"copy.", "transfer.", "retype.", "revoke.1.", "revoke.2."}) {
    SCOPED_TRACE(stem);
    const std::string name = "caps." + stem + "latency_ns";
    const std::string baseline = "caps." + stem + "shared_mutex_ns";
    ASSERT_TRUE(results.contains(name)) << run.err;
    ASSERT_TRUE(results.contains(baseline)) << run.err;
    EXPECT_EQ(results[name].at("baseline"), baseline);
    EXPECT_GT(results[name].at("ratio").get<double>(), 0.0);
    EXPECT_GT(results[baseline].at("value").get<double>(), 0.0);
  }
  for (const std::string route : {"unicast", "broadcast", "multicast", "numa_multicast"}) {
    const std::string name = "caps.revoke.projected." + route + ".32.latency_ns";
    ASSERT_TRUE(results.contains(name)) << name << "\n" << run.err;
    EXPECT_GT(results[name].at("value").get<double>(), 0.0) << name;
    if (route == "unicast") continue;
    EXPECT_EQ(results[name].at("baseline"), "caps.revoke.projected.unicast.32.latency_ns");
  }
}

}  // namespace
}  // namespace mk
