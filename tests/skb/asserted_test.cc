// Asserted and measured facts: precedence, listing, and the latency cache.
#include <gtest/gtest.h>

#include <algorithm>

#include "mk/latency_cache.h"
#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

using test::has_fact;

using std::chrono::nanoseconds;

TEST(SkbAsserted, MarkingACoreUnusableRemovesItEverywhere) {
  Skb skb = test::load_or_fail("pack:2 numa:1 core:2 pu:1");
  ASSERT_TRUE(skb.assert_facts_json(R"({"cores": [{"pu": 1, "usable": false}]})", "t.json").ok());
  EXPECT_FALSE(skb.is_usable(1));
  EXPECT_EQ(skb.usable_cores(), (std::vector<CoreId>{0, 2, 3}));
  EXPECT_EQ(skb.counts().pus, 3u);
  EXPECT_TRUE(has_fact(skb, "pu 1", "usable", "false", FactSource::asserted));
  PlacementOptions share;
  share.allow_oversubscription = true;
  for (PlacementPolicy policy :
       {PlacementPolicy::compact, PlacementPolicy::spread, PlacementPolicy::by_cpukind}) {
    auto cores = skb.place(6, policy, share).value();
    EXPECT_EQ(std::count(cores.begin(), cores.end(), 1u), 0) << to_string(policy);
  }
  const std::vector<CoreId> members = {0, 1};
  EXPECT_FALSE(skb.route(0, members, RouteKind::unicast).ok());
}

TEST(SkbAsserted, AssertedLatencyBeatsMeasuredWhichBeatsDistance) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:3 pu:1");
  EXPECT_FALSE(skb.latency(0, 1).ok());
  const std::vector<CoreLatency> measured = {
      {0, 1, nanoseconds(100), nanoseconds(110), FactSource::measured},
      {0, 2, nanoseconds(900), nanoseconds(950), FactSource::measured},
      {1, 2, nanoseconds(100), nanoseconds(120), FactSource::measured}};
  ASSERT_TRUE(skb.add_measured_latencies(measured).ok());
  EXPECT_EQ(skb.latency(1, 0)->median, nanoseconds(110));
  EXPECT_EQ(skb.latency(1, 0)->source, FactSource::measured);
  // By distance every core is alike and 0 wins the tie; by latency 1 is in the middle.
  EXPECT_EQ(skb.central_core().value(), 1u);

  ASSERT_TRUE(
      skb.assert_facts_json(
             R"({"latencies": [{"between": [1, 2], "min_ns": 5000, "median_ns": 6000}]})", "t.json")
          .ok());
  EXPECT_EQ(skb.latency(2, 1)->median, nanoseconds(6000));
  EXPECT_EQ(skb.latency(2, 1)->source, FactSource::asserted);
  EXPECT_EQ(skb.central_core().value(), 0u);
  // A later measurement does not replace what the user asserted.
  ASSERT_TRUE(skb.add_measured_latencies(measured).ok());
  EXPECT_EQ(skb.latency(2, 1)->median, nanoseconds(6000));
  EXPECT_TRUE(has_fact(skb, "pu 1-pu 2", "latency_median_ns", "6000", FactSource::asserted));
  EXPECT_TRUE(has_fact(skb, "pu 0-pu 1", "latency_median_ns", "110", FactSource::measured));
}

TEST(SkbAsserted, TransportRingPollBudgetLineSizeAndDistance) {
  Skb skb = test::load_or_fail("pack:2 numa:1 core:2 pu:1");
  const auto before = skb.poll_budget(2);
  ASSERT_TRUE(skb.assert_facts_json(R"({
      "transports": [{"from": 0, "to": 3, "kind": "lockfree"}],
      "ring_slots": 1024,
      "poll_budget_ns": 123456,
      "cache_line_size": 128,
      "distances": [{"between": [0, 3], "value": 99}]
    })",
                                    "t.json")
                  .ok());
  EXPECT_EQ(skb.transport(0, 3), ChannelKind::lockfree);
  EXPECT_EQ(skb.transport(3, 0), ChannelKind::urpc);
  EXPECT_EQ(skb.asserted_ring_slots(), 1024u);
  EXPECT_EQ(skb.poll_budget(2), nanoseconds(123456));
  EXPECT_NE(before, skb.poll_budget(2));
  EXPECT_EQ(skb.poll_budget(5).count(), 0);  // kernels outnumber cores: never spin
  EXPECT_EQ(skb.cache_line_size(), 128u);
  EXPECT_EQ(skb.distance(3, 0).value(), 99);
  EXPECT_EQ(skb.distance(0, 2).value(), 20);
  EXPECT_TRUE(has_fact(skb, "pu 0->pu 3", "transport", "lockfree", FactSource::asserted));
  EXPECT_TRUE(has_fact(skb, "machine", "cache_line_size", "128", FactSource::asserted));
  EXPECT_TRUE(has_fact(skb, "machine", "ring_slots", "1024", FactSource::asserted));
}

TEST(SkbAsserted, DescriptionsAreCheckedAndChangeNoFact) {
  Skb skb = test::load_or_fail("pack:2 numa:1 core:2 pu:1");
  const auto before = skb.facts().size();
  ASSERT_TRUE(skb.assert_facts_json(R"({
      "topology": "pack:2 numa:1 core:2 pu:1",
      "clock_ghz": 2.5,
      "notes": ["where each number comes from"]
    })",
                                    "t.json")
                  .ok());
  EXPECT_EQ(skb.facts().size(), before);
}

TEST(SkbAsserted, CpuKindsCanBeAssertedOnAMachineWithout) {
  Skb skb = test::load_or_fail("pack:1 core:4 pu:1");
  EXPECT_TRUE(skb.cpukinds().empty());
  ASSERT_TRUE(skb.assert_facts_json(R"({"cpukinds": [
      {"name": "little", "efficiency": 0, "cores": [0, 1]},
      {"name": "big", "efficiency": 1, "cores": [2, 3]}],
      "cores": [{"pu": 1, "cpukind": 1}]})",
                                    "kinds.json")
                  .ok());
  ASSERT_EQ(skb.cpukinds().size(), 2u);
  EXPECT_EQ(skb.cpukinds()[1].cores, (std::vector<CoreId>{1, 2, 3}));
  EXPECT_EQ(skb.cpukinds()[1].source, FactSource::asserted);
  EXPECT_EQ(skb.place(3, PlacementPolicy::by_cpukind).value(), (std::vector<CoreId>{1, 2, 3}));
  PlacementOptions little;
  little.cpukind = 0;
  EXPECT_EQ(skb.place(1, PlacementPolicy::by_cpukind, little).value(), (std::vector<CoreId>{0}));
}

TEST(SkbAsserted, FailedAssertionChangesNothing) {
  Skb skb = test::load_or_fail("pack:1 core:2 pu:1");
  auto bad = skb.assert_facts_json(
      R"({"poll_budget_ns": 5, "cores": [{"pu": 0, "usable": false}, {"pu": 7}]})", "t.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(skb.is_usable(0));
  EXPECT_NE(skb.poll_budget(1), nanoseconds(5));
}

TEST(SkbAsserted, FactsFileFromDisk) {
  const test::TempDir temp;
  const std::string& dir = temp.path();
  const std::string path = dir + "/facts.json";
  test::write_file(path, R"({"cores": [{"pu": 0, "efficiency": 3}]})");
  Skb skb = test::load_or_fail(test::topology_file("fakecpukinds.xml"));
  ASSERT_TRUE(skb.assert_facts_file(path).ok());
  EXPECT_EQ(skb.core_info(0)->efficiency, 3);
  EXPECT_EQ(skb.core_info(0)->kind_source, FactSource::asserted);
  EXPECT_EQ(skb.place(1, PlacementPolicy::by_cpukind).value(), (std::vector<CoreId>{0}));
}

TEST(SkbLatencyCache, RoundTripsThroughAFileKeyedByTheMachine) {
  const test::TempDir temp;
  const std::string& dir = temp.path();
  Skb skb = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  const std::vector<CoreLatency> measured = {
      {0, 1, nanoseconds(80), nanoseconds(90), FactSource::measured},
      {2, 9, nanoseconds(300), nanoseconds(340), FactSource::measured}};
  ASSERT_TRUE(skb.add_measured_latencies(measured).ok());
  const std::string path = latency_cache_path(dir, skb);
  EXPECT_NE(path.find(skb.fingerprint()), std::string::npos);
  EXPECT_EQ(load_latency_cache(path, skb).error().code, Errc::not_found);
  ASSERT_TRUE(save_latency_cache(path, skb).ok());

  const Skb fresh = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  auto loaded = load_latency_cache(path, fresh);
  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[1].a, 2u);
  EXPECT_EQ((*loaded)[1].b, 9u);
  EXPECT_EQ((*loaded)[1].median, nanoseconds(340));

  // Another machine's cache is refused, naming the file.
  const Skb other = test::load_or_fail("pack:2 core:8 pu:1");
  auto refused = load_latency_cache(path, other);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find(path), std::string::npos);
}

TEST(SkbLatencyCache, DefaultDirectoryFollowsXdg) {
  const char* saved = std::getenv("XDG_CACHE_HOME");
  const std::string restore = saved ? saved : "";
  setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
  EXPECT_EQ(default_latency_cache_dir().value(), "/tmp/xdg-test/mk");
  if (saved) {
    setenv("XDG_CACHE_HOME", restore.c_str(), 1);
  } else {
    unsetenv("XDG_CACHE_HOME");
  }
}

}  // namespace
}  // namespace mk
