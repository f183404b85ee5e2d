// mk-bench peers: every peer built reports its round trip and throughput beside urpc's, and
// every peer left out is named.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "skb/skb_test_support.h"

namespace mk {
namespace {

// The peers CMake built mk-bench with, comma-separated (tests/skb/CMakeLists.txt).
std::set<std::string> built_peers() {
  std::set<std::string> peers;
  std::istringstream list(MK_BENCH_PEERS_BUILT);
  for (std::string name; std::getline(list, name, ',');)
    peers.insert(name);
  return peers;
}

TEST(BenchPeers, EveryBuiltPeerIsMeasuredBesideUrpcAndEveryOtherIsNamed) {
  const std::set<std::string> built = built_peers();
  ASSERT_TRUE(built.contains("urpc"));
  ASSERT_TRUE(built.contains("boost_spsc"));

  const test::TempDir temp;
  const std::string path = temp.path() + "/peers.json";
  const test::ToolRun run =
      test::run_tool(MK_BENCH_TOOL, "peers --quick --json " + test::quoted(path));
  ASSERT_EQ(run.status, 0) << run.err;
  const nlohmann::json report = nlohmann::json::parse(test::read_file(path));
  std::map<std::string, nlohmann::json> results;
  for (const nlohmann::json& result : report.at("results"))
    results[result.at("name").get<std::string>()] = result;

  for (const char* figure : {"rtt_ns", "throughput_mps"}) {
    const std::string urpc = std::string("peer.urpc.") + figure;
    ASSERT_TRUE(results.contains(urpc)) << report.dump(2);
    EXPECT_GT(results[urpc].at("value").get<double>(), 0.0);
    EXPECT_TRUE(results[urpc].at("baseline").is_null()) << results[urpc].dump();
    const std::string urpc_256 = std::string("peer.urpc.256B.") + figure;
    EXPECT_TRUE(results.contains(urpc_256)) << report.dump(2);
  }

  for (const char* peer : {"boost_spsc", "dpdk_rte_ring", "ck_ring", "moodycamel"}) {
    SCOPED_TRACE(peer);
    const std::string absent = std::string("mk-bench peers: ") + peer + " not built (";
    if (!built.contains(peer)) {
      EXPECT_NE(run.err.find(absent), std::string::npos) << run.err;
      EXPECT_FALSE(results.contains(std::string("peer.") + peer + ".rtt_ns"));
      continue;
    }
    EXPECT_EQ(run.err.find(absent), std::string::npos) << run.err;
    for (const char* figure : {"rtt_ns", "throughput_mps"}) {
      for (const std::string size : {"", "256B."}) {
        const std::string name = std::string("peer.") + peer + "." + size + figure;
        ASSERT_TRUE(results.contains(name)) << name << "\n" << run.err;
        const nlohmann::json& result = results[name];
        EXPECT_GT(result.at("value").get<double>(), 0.0) << name;
        EXPECT_EQ(result.at("baseline"), std::string("peer.urpc.") + size + figure) << name;
        EXPECT_GT(result.at("ratio").get<double>(), 0.0) << name;
      }
    }
  }
  // --quick measures 8 and 256 bytes only.
  EXPECT_FALSE(results.contains("peer.urpc.2048B.rtt_ns"));
}

}  // namespace
}  // namespace mk
