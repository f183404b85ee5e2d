// Measurement on the live machine: a latency for every pair, reused from the cache.
#include "mk/latency_probe.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "mk/latency_cache.h"
#include "mk/skb.h"
#include "skb/skb_test_support.h"
#include "test_scale.h"

namespace mk {
namespace {

LatencySetup setup_in(const std::string& dir) {
  LatencySetup setup;
  setup.cache_dir = dir;
  setup.probe.round_trips = std::max<std::size_t>(test::scaled(2000), 50);
  setup.probe.warmup = std::max<std::size_t>(test::scaled(200), 10);
  return setup;
}

TEST(SkbLatencyProbe, MeasuresEveryPairThenReusesTheCache) {
  const test::TempDir temp;
  const std::string& dir = temp.path();
  auto first = Skb::discover();
  ASSERT_TRUE(first.ok()) << first.error().describe();
  const std::vector<CoreId> cores = first->usable_cores();
  const std::size_t pairs = cores.size() * (cores.size() - 1) / 2;

  std::size_t progress_calls = 0;
  auto origin =
      load_or_measure_latencies(*first, setup_in(dir), [&](std::size_t done, std::size_t total) {
        ++progress_calls;
        EXPECT_EQ(total, pairs);
        EXPECT_EQ(done, progress_calls);
      });
  ASSERT_TRUE(origin.ok()) << origin.error().describe();
  EXPECT_EQ(*origin, LatencyOrigin::measured);
  EXPECT_EQ(progress_calls, pairs);
  EXPECT_TRUE(first->has_latencies(cores));
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      auto latency = first->latency(cores[i], cores[j]);
      ASSERT_TRUE(latency.ok());
      EXPECT_GT(latency->min.count(), 0);
      EXPECT_LE(latency->min, latency->median);
      EXPECT_EQ(latency->source, FactSource::measured);
    }
  }
  EXPECT_TRUE(std::filesystem::exists(latency_cache_path(dir, *first)));

  // A second run finds every pair in the cache and measures nothing.
  auto second = Skb::discover();
  ASSERT_TRUE(second.ok());
  std::size_t second_calls = 0;
  auto again = load_or_measure_latencies(*second, setup_in(dir),
                                         [&](std::size_t, std::size_t) { ++second_calls; });
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(*again, LatencyOrigin::cache);
  EXPECT_EQ(second_calls, 0u);
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      EXPECT_EQ(second->latency(cores[i], cores[j])->median,
                first->latency(cores[i], cores[j])->median);
    }
  }

  // Unless asked to measure again.
  LatencySetup remeasure = setup_in(dir);
  remeasure.remeasure = true;
  auto fresh = load_or_measure_latencies(*second, remeasure, [](std::size_t, std::size_t) {});
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*fresh, LatencyOrigin::measured);
}

TEST(SkbLatencyProbe, OnlyTheLiveMachineIsMeasured) {
  Skb skb = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  auto origin = load_or_measure_latencies(skb, LatencySetup{}, [](std::size_t, std::size_t) {});
  ASSERT_FALSE(origin.ok());
  EXPECT_EQ(origin.error().code, Errc::unavailable);
  EXPECT_FALSE(measure_round_trip(skb, 0, 1).ok());
}

TEST(SkbLatencyProbe, BadPairsAreErrors) {
  auto skb = Skb::discover();
  ASSERT_TRUE(skb.ok());
  const CoreId first = skb->usable_cores().front();
  EXPECT_EQ(measure_round_trip(*skb, first, first).error().code, Errc::invalid_argument);
  auto unknown = measure_round_trip(*skb, first, 100000);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("100000"), std::string::npos);
}

TEST(SkbLatencyProbe, AnswerCostsAreMeasuredForBothPathsOfAPair) {
  auto skb = Skb::discover();
  ASSERT_TRUE(skb.ok());
  // A copy: adding facts below replaces the SKB's facts, and with them its list of cores.
  const std::vector<CoreId> cores = skb->usable_cores();
  if (cores.size() < 2) GTEST_SKIP() << "one usable core: no pair to measure";
  LatencyProbeOptions options;
  options.round_trips = 300;
  options.warmup = 20;
  auto costs = measure_answer_costs(*skb, cores[0], cores[1], options);
  ASSERT_TRUE(costs.ok()) << costs.error().describe();
  EXPECT_EQ((*costs)[0].path, AnswerPath::channel);
  EXPECT_EQ((*costs)[1].path, AnswerPath::in_line);
  for (const AnswerCost& each : *costs) {
    EXPECT_EQ(each.round_trip.a, cores[0]);
    EXPECT_EQ(each.round_trip.b, cores[1]);
    EXPECT_GT(each.round_trip.min.count(), 0);
    EXPECT_LE(each.round_trip.min, each.round_trip.median);
  }
  // The SKB takes them as they are.
  EXPECT_TRUE(skb->add_measured_answer_costs(*costs).ok());
  EXPECT_EQ(skb->answer_path_source(cores[0], cores[1]), FactSource::measured);

  EXPECT_EQ(measure_answer_costs(*skb, cores[0], cores[0]).error().code, Errc::invalid_argument);
  EXPECT_EQ(measure_answer_costs(*skb, cores[0], 100000).error().code, Errc::invalid_argument);
  options.round_trips = 0;
  EXPECT_EQ(measure_answer_costs(*skb, cores[0], cores[1], options).error().code,
            Errc::invalid_argument);
  Skb file = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  EXPECT_EQ(measure_answer_costs(file, 0, 1).error().code, Errc::unavailable);
}

}  // namespace
}  // namespace mk
