// Bad input: every case is an error value naming the file, line, field or value.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "mk/latency_cache.h"
#include "mk/skb.h"
#include "skb/hwloc_loader.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

bool mentions(const Error& err, const std::string& text) {
  return err.message.find(text) != std::string::npos;
}

class SkbBadInput : public ::testing::Test {
 protected:
  std::string file(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    test::write_file(path, text);
    return path;
  }
  test::TempDir temp_;
  const std::string& dir_ = temp_.path();
};

TEST_F(SkbBadInput, MissingTopologyFile) {
  auto skb = Skb::from_xml_file(dir_ + "/absent.xml");
  ASSERT_FALSE(skb.ok());
  EXPECT_EQ(skb.error().code, Errc::not_found);
  EXPECT_TRUE(mentions(skb.error(), dir_ + "/absent.xml")) << skb.error().message;
  EXPECT_FALSE(Skb::load(dir_ + "/absent.xml").ok());
  EXPECT_FALSE(Skb::from_xml_file(dir_).ok());
}

TEST_F(SkbBadInput, MalformedTopologyFiles) {
  std::ifstream real(test::topology_file("fakecpukinds.xml"));
  std::stringstream text;
  text << real.rdbuf();
  const std::string whole = text.str();
  for (const auto& [name, contents] : std::vector<std::pair<std::string, std::string>>{
           {"empty.xml", ""},
           {"garbage.xml", "this is not XML at all\n"},
           {"other.xml", "<?xml version=\"1.0\"?>\n<catalog><book/></catalog>\n"},
           {"truncated.xml", whole.substr(0, whole.size() / 2)}}) {
    SCOPED_TRACE(name);
    const std::string path = file(name, contents);
    auto skb = Skb::from_xml_file(path);
    ASSERT_FALSE(skb.ok());
    EXPECT_EQ(skb.error().code, Errc::parse_error);
    EXPECT_TRUE(mentions(skb.error(), path)) << skb.error().message;
  }
}

TEST_F(SkbBadInput, BadSyntheticTokens) {
  for (const auto& [description, token] :
       std::vector<std::pair<std::string, std::string>>{{"pack:2 foo:3 pu:1", "foo:3"},
                                                        {"pack:x core:2", "pack:x"},
                                                        {"pack:0 core:2", "pack:0"},
                                                        {"pack:2 core", "core"},
                                                        {"pack:2 core:-1", "core:-1"}}) {
    SCOPED_TRACE(description);
    auto skb = Skb::from_synthetic(description);
    ASSERT_FALSE(skb.ok());
    EXPECT_EQ(skb.error().code, Errc::parse_error);
    EXPECT_TRUE(mentions(skb.error(), "'" + token + "'")) << skb.error().message;
  }
  auto empty = Skb::from_synthetic("   ");
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(mentions(empty.error(), "empty"));
}

TEST_F(SkbBadInput, FactsFileErrorsNameFileLineAndField) {
  Skb skb = test::load_or_fail("pack:2 numa:1 core:2 pu:1");
  auto missing = skb.assert_facts_file(dir_ + "/none.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  EXPECT_TRUE(mentions(missing.error(), dir_ + "/none.json"));

  const std::string malformed = file("bad.json", "{\n  \"cores\": [\n    {\"pu\": 1,,}\n  ]\n}\n");
  auto syntax = skb.assert_facts_file(malformed);
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.error().code, Errc::parse_error);
  EXPECT_TRUE(mentions(syntax.error(), malformed + ":3:")) << syntax.error().message;

  struct Case {
    std::string json;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"cores": [{"pu": 99, "usable": false}]})", "cores[0].pu: core 99 does not exist"},
           {R"({"cores": [{"pu": 1, "usable": "no"}]})", "cores[0].usable"},
           {R"({"cores": [{"pu": 1, "speed": 3}]})", "unknown field 'speed'"},
           {R"({"cores": [{"usable": false}]})", "missing field 'pu'"},
           {R"({"cores": {"pu": 1}})", "cores: must be a JSON array"},
           {R"({"coers": []})", "unknown field 'coers'"},
           {R"([1, 2])", "must be a JSON object"},
           {R"({"latencies": [{"between": [0, 9], "median_ns": 5}]})", "core 9 does not exist"},
           {R"({"latencies": [{"between": [0, 0], "median_ns": 5}]})", "names core 0 twice"},
           {R"({"latencies": [{"between": [0, 1], "min_ns": 9, "median_ns": 5}]})",
            "latencies[0].min_ns: 9 is out of range"},
           {R"({"latencies": [{"between": [0, 1], "median_ns": -5}]})", "median_ns: -5"},
           {R"({"latencies": [{"between": [0, 1], "median_ns": 1.5}]})", "not an integer"},
           {R"({"transports": [{"from": 0, "to": 1, "kind": "carrier-pigeon"}]})",
            "unknown transport 'carrier-pigeon'"},
           {R"({"transports": [{"from": 0, "to": 1, "kind": "local"}]})", "both ends on one core"},
           {R"({"ring_slots": 0})", "ring_slots: 0 is out of range"},
           {R"({"ring_slots": "many"})", "ring_slots: \"many\" is not an integer"},
           {R"({"cache_line_size": 48})", "cache_line_size: 48 is not a power of two"},
           {R"({"prefetch_pair_distance": 96})",
            "prefetch_pair_distance: 96 is not a power of two"},
           {R"({"prefetch_pair_distance": 8192})", "prefetch_pair_distance: 8192 is out of range"},
           {R"({"cache_line_size": 128, "prefetch_pair_distance": 64})",
            "prefetch_pair_distance: 64 is less than the cache line size, 128"},
           {R"({"poll_budget_ns": 18446744073709551615})", "poll_budget_ns: 18446744073709551615"},
           {R"({"cores": [{"pu": 1, "cpukind": 0}]})", "the machine has no cpukinds"},
           {R"({"notes": "why"})", "notes: must be an array of strings"},
           {R"({"notes": ["why", 7]})", "notes[1]: 7 is not a string"},
           {R"({"topology": ""})", "topology: \"\" is not a non-empty string"},
           {R"({"clock_ghz": 0})", "clock_ghz: 0 is not a number in (0, 100]"},
           {R"({"clock_ghz": "2.0"})", "clock_ghz"},
           {R"({"cpukinds": [{"efficiency": 1, "cores": [0]}, {"efficiency": 2, "cores": [0]}]})",
            "core 0 is in two kinds"},
           {R"({"cores": [{"pu": 0, "usable": false}, {"pu": 1, "usable": false},
                          {"pu": 2, "usable": false}, {"pu": 3, "usable": false}]})",
            "no usable core"},
       }) {
    SCOPED_TRACE(c.json);
    auto result = skb.assert_facts_json(c.json, "user.json");
    ASSERT_FALSE(result.ok());
    EXPECT_TRUE(mentions(result.error(), "user.json")) << result.error().message;
    EXPECT_TRUE(mentions(result.error(), c.expected)) << result.error().message;
  }
  EXPECT_EQ(skb.usable_cores().size(), 4u);
}

TEST_F(SkbBadInput, OfflineCoreCannotBeAssertedUsable) {
  Skb skb = test::load_or_fail(test::topology_file("16em64t-4s2c2t-offlines.xml"));
  auto result = skb.assert_facts_json(R"({"cores": [{"pu": 5, "usable": true}]})", "f.json");
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(mentions(result.error(), "cores[0].usable: core 5 is offline"))
      << result.error().message;
  EXPECT_FALSE(skb.is_usable(5));
}

TEST_F(SkbBadInput, MalformedLatencyCache) {
  const Skb skb = test::load_or_fail("pack:1 core:2 pu:1");
  const std::string broken = file("broken.json", "{\"fingerprint\": ");
  auto syntax = load_latency_cache(broken, skb);
  ASSERT_FALSE(syntax.ok());
  EXPECT_TRUE(mentions(syntax.error(), broken + ":1:")) << syntax.error().message;

  const std::string foreign = file(
      "foreign.json", R"({"fingerprint": ")" + skb.fingerprint() +
                          R"(", "latencies": [{"between": [0, 7], "min_ns": 1, "median_ns": 2}]})");
  auto wrong_core = load_latency_cache(foreign, skb);
  ASSERT_FALSE(wrong_core.ok());
  EXPECT_TRUE(mentions(wrong_core.error(), "latencies[0]")) << wrong_core.error().message;
}

TEST_F(SkbBadInput, MeasuredLatencyForAnUnknownCore) {
  Skb skb = test::load_or_fail("pack:1 core:2 pu:1");
  const std::vector<CoreLatency> bad = {
      {0, 5, std::chrono::nanoseconds(1), std::chrono::nanoseconds(2), FactSource::measured}};
  auto result = skb.add_measured_latencies(bad);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(mentions(result.error(), "core 5"));
  EXPECT_FALSE(skb.latency(0, 5).ok());
}

// --- Inputs that once crashed mk (docs/skb.md, "Untrusted input") ----------------------------

TEST_F(SkbBadInput, NumbersBeyondDoubleAreErrorsNamingTheirPlace) {
  Skb skb = test::load_or_fail("pack:2 numa:1 core:2 pu:1");
  auto top = skb.assert_facts_json("{\n  \"poll_budget_ns\": 1e400\n}\n", "user.json");
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.error().code, Errc::parse_error);
  EXPECT_TRUE(mentions(top.error(), "user.json:2:")) << top.error().message;
  EXPECT_TRUE(mentions(top.error(), "number overflow parsing '1e400'")) << top.error().message;

  auto nested =
      skb.assert_facts_file(test::fuzz_input("facts", "crash-number-beyond-double-nested.json"));
  ASSERT_FALSE(nested.ok());
  EXPECT_TRUE(mentions(nested.error(), "-1e400")) << nested.error().message;

  const std::string cache = file("cache.json", "{\"fingerprint\": \"x\", \"latencies\": [1e999]}");
  auto loaded = load_latency_cache(cache, skb);
  ASSERT_FALSE(loaded.ok());
  EXPECT_TRUE(mentions(loaded.error(), cache + ":1:")) << loaded.error().message;
  EXPECT_EQ(skb.poll_budget(1), std::chrono::microseconds(20));
}

TEST_F(SkbBadInput, DeepNestingIsRefusedBeforeAnythingWalksIt) {
  Skb skb = test::load_or_fail("pack:2 numa:1 core:2 pu:1");
  auto deep = skb.assert_facts_file(test::fuzz_input("facts", "crash-deep-nesting.json"));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.error().code, Errc::parse_error);
  EXPECT_TRUE(mentions(deep.error(), "nested deeper than 64")) << deep.error().message;
  // At the limit the document parses, and its field is judged (and quoted briefly).
  const std::string at_limit =
      "{\"poll_budget_ns\": " + std::string(63, '[') + std::string(63, ']') + "}";
  auto shallow = skb.assert_facts_json(at_limit, "user.json");
  ASSERT_FALSE(shallow.ok());
  EXPECT_TRUE(mentions(shallow.error(), "poll_budget_ns: [[[[")) << shallow.error().message;
  EXPECT_TRUE(mentions(shallow.error(), "... is not an integer")) << shallow.error().message;
  EXPECT_LT(shallow.error().message.size(), 200u);
}

TEST_F(SkbBadInput, FilesAreReadUpToALimit) {
  Skb skb = test::load_or_fail("pack:2 numa:1 core:2 pu:1");
  auto endless = skb.assert_facts_file("/dev/zero");
  ASSERT_FALSE(endless.ok());
  EXPECT_EQ(endless.error().code, Errc::too_large);
  EXPECT_TRUE(mentions(endless.error(), "'/dev/zero': larger than the 64 MiB limit"))
      << endless.error().message;

  // A sparse file one byte over the limit.
  const std::string big = dir_ + "/big.json";
  { std::ofstream create(big); }
  std::filesystem::resize_file(big, (std::uintmax_t{64} << 20) + 1);
  auto over = skb.assert_facts_file(big);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::too_large);
  auto topology = Skb::from_xml_file(big);
  ASSERT_FALSE(topology.ok());
  EXPECT_EQ(topology.error().code, Errc::too_large);
  auto cache = load_latency_cache(big, skb);
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.error().code, Errc::too_large);

  auto text = Skb::from_xml_text(std::string((std::size_t{64} << 20) + 1, ' '), "big.xml");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code, Errc::too_large);
}

TEST_F(SkbBadInput, AnInfiniteCpusetIsAnError) {
  const std::string path = test::fuzz_input("topology_xml", "crash-infinite-cpuset.xml");
  auto skb = Skb::from_xml_file(path);
  ASSERT_FALSE(skb.ok());
  EXPECT_EQ(skb.error().code, Errc::parse_error);
  EXPECT_TRUE(mentions(skb.error(), path)) << skb.error().message;
  EXPECT_TRUE(mentions(skb.error(), "infinite")) << skb.error().message;
}

// Rewrites the first occurrence of `from` in fakecpukinds.xml.
std::string edited_fakecpukinds(const std::string& from, const std::string& to) {
  std::string text = test::read_file(test::topology_file("fakecpukinds.xml"));
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST_F(SkbBadInput, PuIndexesBeyondTheLimitAreErrors) {
  // Bit 200000 of a cpuset: 6250 32-bit words after the one holding it.
  std::string huge = "0x00000001";
  for (int i = 0; i < 6250; ++i)
    huge += ",0x00000000";
  auto skb = Skb::from_xml_text(
      edited_fakecpukinds("complete_cpuset=\"0x0000000f\"", "complete_cpuset=\"" + huge + "\""),
      "huge.xml");
  ASSERT_FALSE(skb.ok());
  EXPECT_EQ(skb.error().code, Errc::too_large);
  EXPECT_TRUE(mentions(skb.error(), "PU 200000")) << skb.error().message;
  EXPECT_TRUE(mentions(skb.error(), "131071")) << skb.error().message;
}

TEST_F(SkbBadInput, ACoreInsideACoreIsAnError) {
  const std::string core =
      "<object type=\"Core\" os_index=\"0\" cpuset=\"0x00000005\" complete_cpuset=\"0x00000005\" "
      "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" gp_index=\"4\">";
  const std::string inner =
      "<object type=\"Core\" os_index=\"5\" cpuset=\"0x00000005\" complete_cpuset=\"0x00000005\" "
      "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" gp_index=\"40\">";
  std::string text = edited_fakecpukinds(core, core + inner);
  const std::string end_of_core = "gp_index=\"6\"/>\n      </object>";
  text.replace(text.find(end_of_core), end_of_core.size(), end_of_core + "</object>");
  auto skb = Skb::from_xml_text(text, "cores.xml");
  ASSERT_FALSE(skb.ok());
  EXPECT_EQ(skb.error().code, Errc::parse_error);
  EXPECT_TRUE(mentions(skb.error(), "inside 2 Core objects")) << skb.error().message;
}

TEST_F(SkbBadInput, AnAbsurdCacheLineSizeIsIgnored) {
  auto skb = Skb::from_xml_text(test::read_file(test::topology_file("16em64t-4s2c2t-offlines.xml")),
                                "lines.xml");
  ASSERT_TRUE(skb.ok());
  const std::string linesize = "cache_linesize=\"64\"";
  std::string text = test::read_file(test::topology_file("24em64t-2n6c2t-pci.xml"));
  for (auto at = text.find(linesize); at != std::string::npos; at = text.find(linesize, at)) {
    text.replace(at, linesize.size(), "cache_linesize=\"3\"");
  }
  auto odd = Skb::from_xml_text(text, "odd.xml");
  ASSERT_TRUE(odd.ok()) << odd.error().describe();
  EXPECT_EQ(odd->cache_line_size(), 64u);
}

// Found by the fuzzer: cpusets that claim PUs the tree does not have.
TEST_F(SkbBadInput, EveryUsableCoreHasAPlace) {
  for (const char* name : {"found-cpuset-without-pus.xml", "found-pu-in-no-numa-node.xml"}) {
    SCOPED_TRACE(name);
    auto skb = Skb::from_xml_file(test::fuzz_input("topology_xml", name));
    ASSERT_TRUE(skb.ok()) << skb.error().describe();
    for (CoreId core : skb->usable_cores()) {
      EXPECT_TRUE(skb->numa_node_of(core).ok()) << core;
      EXPECT_GE(skb->core_info(core)->logical_index, 0) << core;
    }
  }
}

TEST_F(SkbBadInput, PlacementsBeyondSixtyFourKernelsPerCoreAreErrors) {
  const Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  PlacementOptions oversubscribe;
  oversubscribe.allow_oversubscription = true;
  EXPECT_EQ(skb.place(128, PlacementPolicy::compact, oversubscribe)->size(), 128u);
  for (std::size_t n : {std::size_t{129}, std::numeric_limits<std::size_t>::max()}) {
    auto placed = skb.place(n, PlacementPolicy::spread, oversubscribe);
    ASSERT_FALSE(placed.ok()) << n;
    EXPECT_EQ(placed.error().code, Errc::too_large);
    EXPECT_TRUE(mentions(placed.error(), std::to_string(n) + " kernels")) << placed.error().message;
    EXPECT_TRUE(mentions(placed.error(), "more than 64")) << placed.error().message;
  }
}

TEST_F(SkbBadInput, SyntheticMachinesBeyondTheLimitsAreErrors) {
  struct Case {
    std::string description;
    Errc code;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"pack:1000000 core:1000000 pu:1", Errc::too_large, "more than 131072 PUs"},
           {"pack:18446744073709551616 pu:1", Errc::too_large, "more than 131072 PUs"},
           {"core:100000 pu:1", Errc::too_large, "hwloc would take minutes"},
           {"pack:2 pu:2(indexes=0,1,2,4294967295)", Errc::too_large, "index 4294967295"},
           {std::string("pack:2\x01 pu:1"), Errc::parse_error, "unexpected byte 0x01"},
       }) {
    SCOPED_TRACE(c.description);
    auto skb = Skb::from_synthetic(c.description);
    ASSERT_FALSE(skb.ok());
    EXPECT_EQ(skb.error().code, c.code);
    EXPECT_TRUE(mentions(skb.error(), c.expected)) << skb.error().message;
  }
  // 100,000 PUs are within the limits (building them takes hwloc about a minute, so this
  // only measures the description).
  EXPECT_TRUE(detail::measure_synthetic("pack:100 numa:2 l3:1 core:250 pu:2").ok());
}

}  // namespace
}  // namespace mk
