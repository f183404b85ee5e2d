// The SKB's facts about channels: the prefetch pair distance, round trips per channel kind and
// the transport they pick, their precedence and their cache. None of this needs the transport.
#include <gtest/gtest.h>

#include <algorithm>

#include "mk/latency_cache.h"
#include "mk/prefetch_probe.h"
#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

using test::has_fact;

using std::chrono::nanoseconds;

ChannelCost cost(ChannelKind kind, CoreId a, CoreId b, std::int64_t median_ns) {
  return ChannelCost{kind, CoreLatency{a, b, nanoseconds(median_ns), nanoseconds(median_ns),
                                       FactSource::measured}};
}

TEST(SkbPrefetchPair, DerivedFromTheLineThenMeasuredThenAsserted) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:4 pu:1");
  ASSERT_EQ(skb.cache_line_size(), 64u);
  EXPECT_EQ(skb.prefetch_pair_distance(), 128u);
  EXPECT_EQ(skb.prefetch_pair_source(), FactSource::derived);
  ASSERT_TRUE(skb.add_measured_prefetch_pair(64).ok());
  EXPECT_EQ(skb.prefetch_pair_distance(), 64u);
  EXPECT_EQ(skb.prefetch_pair_source(), FactSource::measured);
  EXPECT_TRUE(has_fact(skb, "machine", "prefetch_pair_distance", "64", FactSource::measured));
  ASSERT_TRUE(skb.assert_facts_json(R"({"prefetch_pair_distance": 256})", "t.json").ok());
  EXPECT_EQ(skb.prefetch_pair_distance(), 256u);
  EXPECT_EQ(skb.prefetch_pair_source(), FactSource::asserted);
  // A later measurement does not replace what the user asserted.
  ASSERT_TRUE(skb.add_measured_prefetch_pair(128).ok());
  EXPECT_EQ(skb.prefetch_pair_distance(), 256u);
}

TEST(SkbPrefetchPair, NeverLessThanALine) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  ASSERT_TRUE(skb.add_measured_prefetch_pair(64).ok());
  ASSERT_TRUE(skb.assert_facts_json(R"({"cache_line_size": 256})", "t.json").ok());
  EXPECT_EQ(skb.prefetch_pair_distance(), 256u);
  // Lines of 128 bytes and more are not paired when nothing was measured.
  Skb wide = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  ASSERT_TRUE(wide.assert_facts_json(R"({"cache_line_size": 128})", "t.json").ok());
  EXPECT_EQ(wide.prefetch_pair_distance(), 128u);
}

TEST(SkbPrefetchPair, AnImplausibleMeasurementIsRefused) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  for (std::size_t bad : {0u, 8u, 96u, 8192u}) {
    auto refused = skb.add_measured_prefetch_pair(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_NE(refused.error().message.find("prefetch pair"), std::string::npos);
  }
  EXPECT_EQ(skb.prefetch_pair_source(), FactSource::derived);
}

TEST(SkbPrefetchPair, TheDecisionTakesTheFirstDistanceThatDoesNotDisturb) {
  const nanoseconds apart(1000);
  const PrefetchTrial paired[] = {
      {64, nanoseconds(5000)}, {128, nanoseconds(1100)}, {256, nanoseconds(1000)}};
  EXPECT_EQ(decide_prefetch_pair(nanoseconds(9000), apart, paired).value(), 128u);
  const PrefetchTrial alone[] = {
      {64, nanoseconds(1200)}, {128, nanoseconds(1000)}, {256, nanoseconds(1000)}};
  EXPECT_EQ(decide_prefetch_pair(nanoseconds(9000), apart, alone).value(), 64u);
  const PrefetchTrial quad[] = {
      {64, nanoseconds(4000)}, {128, nanoseconds(3000)}, {256, nanoseconds(1400)}};
  EXPECT_EQ(decide_prefetch_pair(nanoseconds(9000), apart, quad).value(), 256u);
}

TEST(SkbPrefetchPair, TheDecisionRefusesWhatItCannotTell) {
  const nanoseconds apart(1000);
  const PrefetchTrial calm[] = {
      {64, nanoseconds(1000)}, {128, nanoseconds(1000)}, {256, nanoseconds(1000)}};
  // One shared line cost no more than a page apart: the threads never ran at once.
  auto idle = decide_prefetch_pair(nanoseconds(1100), apart, calm);
  ASSERT_FALSE(idle.ok());
  EXPECT_EQ(idle.error().code, Errc::unavailable);
  const PrefetchTrial noisy[] = {
      {64, nanoseconds(5000)}, {128, nanoseconds(5000)}, {256, nanoseconds(5000)}};
  auto busy = decide_prefetch_pair(nanoseconds(9000), apart, noisy);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, Errc::unavailable);
}

TEST(SkbPrefetchPair, MeasuredOnTheLiveMachineOnly) {
  const Skb described = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  auto refused = measure_prefetch_pair(described);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::unavailable);
}

TEST(SkbTransport, TheCheaperMeasuredKindIsChosenPerPair) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:3 pu:1");
  EXPECT_EQ(skb.transport(0, 1), ChannelKind::urpc);
  EXPECT_EQ(skb.transport_source(0, 1), FactSource::derived);
  const std::vector<ChannelCost> costs = {
      cost(ChannelKind::urpc, 0, 1, 400), cost(ChannelKind::lockfree, 0, 1, 300),
      cost(ChannelKind::urpc, 0, 2, 200), cost(ChannelKind::lockfree, 0, 2, 300),
      // Only one kind measured for 1-2: nothing to choose between.
      cost(ChannelKind::lockfree, 1, 2, 10)};
  ASSERT_TRUE(skb.add_measured_channel_costs(costs).ok());
  EXPECT_EQ(skb.transport(0, 1), ChannelKind::lockfree);
  EXPECT_EQ(skb.transport(1, 0), ChannelKind::lockfree);
  EXPECT_EQ(skb.transport_source(0, 1), FactSource::measured);
  EXPECT_EQ(skb.transport(0, 2), ChannelKind::urpc);
  EXPECT_EQ(skb.transport(1, 2), ChannelKind::urpc);
  EXPECT_EQ(skb.transport_source(1, 2), FactSource::derived);
  EXPECT_EQ(skb.transport(1, 1), ChannelKind::local);
  EXPECT_EQ(skb.channel_cost(1, 0, ChannelKind::lockfree)->median, nanoseconds(300));
  EXPECT_EQ(skb.channel_cost(1, 2, ChannelKind::urpc).error().code, Errc::not_found);
  EXPECT_TRUE(has_fact(skb, "pu 0->pu 1", "transport", "lockfree", FactSource::measured));
  EXPECT_TRUE(has_fact(skb, "pu 0-pu 1", "lockfree_median_ns", "300", FactSource::measured));
}

TEST(SkbTransport, AnAssertedKindOverridesTheMeasurement) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  const std::vector<ChannelCost> costs = {cost(ChannelKind::urpc, 0, 1, 400),
                                          cost(ChannelKind::lockfree, 0, 1, 300)};
  ASSERT_TRUE(skb.add_measured_channel_costs(costs).ok());
  ASSERT_EQ(skb.transport(0, 1), ChannelKind::lockfree);
  ASSERT_TRUE(
      skb.assert_facts_json(R"({"transports": [{"from": 0, "to": 1, "kind": "urpc"}]})", "t.json")
          .ok());
  EXPECT_EQ(skb.transport(0, 1), ChannelKind::urpc);
  EXPECT_EQ(skb.transport_source(0, 1), FactSource::asserted);
  // Only the asserted direction: the other still follows the measurement.
  EXPECT_EQ(skb.transport(1, 0), ChannelKind::lockfree);
  // A measurement after the assertion does not replace it either.
  ASSERT_TRUE(skb.add_measured_channel_costs(costs).ok());
  EXPECT_EQ(skb.transport(0, 1), ChannelKind::urpc);
}

TEST(SkbTransport, InconsistentCostsAreRefusedWhole) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  const std::vector<std::vector<ChannelCost>> bad = {
      {cost(ChannelKind::urpc, 0, 1, 100), cost(ChannelKind::lockfree, 0, 0, 50)},
      {cost(ChannelKind::urpc, 0, 1, 100), cost(ChannelKind::local, 0, 1, 50)},
      {cost(ChannelKind::urpc, 0, 1, 100), cost(ChannelKind::lockfree, 0, 7, 50)},
      {ChannelCost{ChannelKind::lockfree,
                   CoreLatency{0, 1, nanoseconds(90), nanoseconds(10), FactSource::measured}}}};
  for (const auto& costs : bad) {
    auto refused = skb.add_measured_channel_costs(costs);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
  }
  // Nothing of a refused batch was kept.
  EXPECT_FALSE(skb.channel_cost(0, 1, ChannelKind::urpc).ok());
  EXPECT_EQ(skb.transport(0, 1), ChannelKind::urpc);
}

TEST(SkbTransport, CostsAndPairRoundTripThroughTheLatencyCache) {
  const test::TempDir temp;
  Skb skb = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  const std::vector<CoreLatency> latencies = {
      {0, 1, nanoseconds(80), nanoseconds(90), FactSource::measured}};
  ASSERT_TRUE(skb.add_measured_latencies(latencies).ok());
  const std::vector<ChannelCost> costs = {cost(ChannelKind::urpc, 0, 1, 90),
                                          cost(ChannelKind::lockfree, 0, 1, 70)};
  ASSERT_TRUE(skb.add_measured_channel_costs(costs).ok());
  ASSERT_TRUE(skb.add_measured_prefetch_pair(64).ok());
  ASSERT_TRUE(save_latency_cache(latency_cache_path(temp.path(), skb), skb).ok());

  Skb fresh = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  auto loaded = load_cached_measurements(fresh, temp.path());
  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  EXPECT_TRUE(*loaded);
  EXPECT_EQ(fresh.latency(0, 1)->median, nanoseconds(90));
  EXPECT_EQ(fresh.transport(0, 1), ChannelKind::lockfree);
  EXPECT_EQ(fresh.transport_source(0, 1), FactSource::measured);
  EXPECT_EQ(fresh.prefetch_pair_distance(), 64u);
  EXPECT_EQ(fresh.prefetch_pair_source(), FactSource::measured);

  // No cache: nothing added, and no error.
  const test::TempDir empty;
  Skb untouched = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  auto none = load_cached_measurements(untouched, empty.path());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  EXPECT_EQ(untouched.prefetch_pair_source(), FactSource::derived);
}

TEST(SkbTransport, AMalformedCostInTheCacheIsAnErrorNamingTheFile) {
  const test::TempDir temp;
  Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  const std::string path = latency_cache_path(temp.path(), skb);
  const std::vector<std::string> bodies = {
      R"("channel_costs": [{"between": [0, 1], "kind": "pigeon", "min_ns": 1, "median_ns": 2}])",
      R"("channel_costs": [{"between": [0, 1], "kind": "local", "min_ns": 1, "median_ns": 2}])",
      R"("channel_costs": [{"between": [0, 1], "kind": "urpc", "min_ns": 3, "median_ns": 2}])",
      R"("channel_costs": [{"between": [0], "kind": "urpc", "min_ns": 1, "median_ns": 2}])",
      R"("prefetch_pair_distance": 100)",
  };
  for (const std::string& body : bodies) {
    test::write_file(
        path, R"({"fingerprint": ")" + skb.fingerprint() + R"(", "latencies": [], )" + body + "}");
    Skb target = skb;
    auto refused = load_cached_measurements(target, temp.path());
    ASSERT_FALSE(refused.ok()) << body;
    EXPECT_EQ(refused.error().code, Errc::parse_error) << body;
    EXPECT_NE(refused.error().message.find(path), std::string::npos) << body;
    EXPECT_EQ(target.transport(0, 1), ChannelKind::urpc);
    EXPECT_EQ(target.prefetch_pair_source(), FactSource::derived);
  }
}

}  // namespace
}  // namespace mk
