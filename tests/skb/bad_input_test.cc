// Bad input: every case is an error value naming the file, line, field or value.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "mk/latency_cache.h"
#include "mk/skb.h"
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
           {R"({"ring_slots": 1000})", "ring_slots: 1000 is not a power of two"},
           {R"({"ring_slots": 8})", "ring_slots: 8 is out of range"},
           {R"({"cache_line_size": 48})", "cache_line_size: 48 is not a power of two"},
           {R"({"poll_budget_ns": 18446744073709551615})", "poll_budget_ns: 18446744073709551615"},
           {R"({"cores": [{"pu": 1, "cpukind": 0}]})", "the machine has no cpukinds"},
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

}  // namespace
}  // namespace mk
