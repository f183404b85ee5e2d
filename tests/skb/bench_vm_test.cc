// mk-bench vm: unmap on every route beside Linux's munmap on as many cores, the best route with
// its target, map and protect beside mmap and mprotect, and the projection on both machines
// beside the paper's readings, none lost to an error.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "skb/skb_test_support.h"

namespace mk {
namespace {

TEST(BenchVm, UnmapIsBesideLinuxOnEveryRouteAndProjectedBesideThePaper) {
  const test::TempDir temp;
  const std::string path = temp.path() + "/vm.json";
  const test::ToolRun run =
      test::run_tool(MK_BENCH_TOOL, "vm --quick --json " + test::quoted(path));
  ASSERT_EQ(run.status, 0) << run.err;
  const nlohmann::json report = nlohmann::json::parse(test::read_file(path));
  std::map<std::string, nlohmann::json> results;
  for (const nlohmann::json& result : report.at("results"))
    results[result.at("name").get<std::string>()] = result;
  auto value_of = [&](const std::string& name) {
    return results.at(name).at("value").get<double>();
  };

  // Every run has at least two kernels, so n = 2 is always measured.
  for (const std::string name : {"linux.munmap.1.latency_ns", "linux.munmap.2.latency_ns",
                                 "linux.mmap.latency_ns", "linux.mprotect.latency_ns"}) {
    ASSERT_TRUE(results.contains(name)) << name << "\n" << run.err;
    EXPECT_GT(value_of(name), 0.0) << name;
  }
  for (const std::string route : {"unicast", "broadcast", "multicast", "numa_multicast"}) {
    const std::string name = "vm.unmap." + route + ".2.latency_ns";
    ASSERT_TRUE(results.contains(name)) << name << "\n" << run.err;
    EXPECT_EQ(results[name].at("baseline"), "linux.munmap.2.latency_ns");
    EXPECT_GT(results[name].at("ratio").get<double>(), 0.0);
  }
  // The best route is the fastest of the four.
  ASSERT_TRUE(results.contains("vm.unmap.best.2.latency_ns")) << run.err;
  const nlohmann::json& best = results["vm.unmap.best.2.latency_ns"];
  EXPECT_EQ(best.at("baseline"), "linux.munmap.2.latency_ns");
  for (const std::string route : {"unicast", "broadcast", "multicast", "numa_multicast"})
    EXPECT_LE(value_of("vm.unmap.best.2.latency_ns"),
              value_of("vm.unmap." + route + ".2.latency_ns"));
  for (const auto& [name, baseline] :
       {std::pair<std::string, std::string>{"vm.map.latency_ns", "linux.mmap.latency_ns"},
        {"vm.protect.latency_ns", "linux.mprotect.latency_ns"}}) {
    ASSERT_TRUE(results.contains(name)) << name << "\n" << run.err;
    EXPECT_EQ(results[name].at("baseline"), baseline);
  }

  for (const std::string paper : {"paper.barrelfish.2.ns", "paper.barrelfish.32.ns",
                                  "paper.linux.2.ns", "paper.linux.32.ns", "paper.windows.32.ns"}) {
    ASSERT_TRUE(results.contains(paper)) << paper;
  }
  // At 2.0 GHz, 10.3k cycles are 5150 ns.
  EXPECT_DOUBLE_EQ(value_of("paper.barrelfish.2.ns"), 5150.0);
  for (const std::string machine : {"amd_8x4", "hwloc96"}) {
    for (const std::string route : {"unicast", "broadcast", "multicast", "numa_multicast"}) {
      for (const std::string cores : {"2", "4", "8", "16", "32"}) {
        const std::string name =
            "vm.unmap.projected." + machine + "." + route + "." + cores + ".latency_ns";
        ASSERT_TRUE(results.contains(name)) << name << "\n" << run.err;
        // Never below the local munmap every kernel does.
        EXPECT_GE(value_of(name), value_of("linux.munmap.1.latency_ns")) << name;
      }
    }
  }
  EXPECT_EQ(results["vm.unmap.projected.amd_8x4.numa_multicast.32.latency_ns"].at("baseline"),
            "paper.barrelfish.32.ns");
}

}  // namespace
}  // namespace mk
