// The SKB's facts about answer paths: round trips with each path, the path they pick per pair
// (in line only when clearly cheaper), an asserted path's precedence, and the cache.
#include <gtest/gtest.h>

#include "mk/answer_path.h"
#include "mk/latency_cache.h"
#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

using test::has_fact;

using std::chrono::nanoseconds;

AnswerCost cost(AnswerPath path, CoreId a, CoreId b, std::int64_t median_ns) {
  return AnswerCost{path, CoreLatency{a, b, nanoseconds(median_ns), nanoseconds(median_ns),
                                      FactSource::measured}};
}

TEST(SkbAnswerPath, InLineOnlyWhenItsRoundTripIsClearlyCheaper) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:4 pu:1");
  EXPECT_EQ(skb.answer_path(0, 1), AnswerPath::channel);
  EXPECT_EQ(skb.answer_path_source(0, 1), FactSource::derived);
  const std::vector<AnswerCost> costs = {
      // 0-1: in line at 80% of the channel's round trip.
      cost(AnswerPath::channel, 0, 1, 500), cost(AnswerPath::in_line, 0, 1, 400),
      // 0-2: in line 5% cheaper, within the margin: the channel stays.
      cost(AnswerPath::channel, 0, 2, 200), cost(AnswerPath::in_line, 0, 2, 190),
      // 0-3: in line dearer.
      cost(AnswerPath::channel, 0, 3, 100), cost(AnswerPath::in_line, 0, 3, 150),
      // 1-2: only one path measured: nothing to choose between.
      cost(AnswerPath::in_line, 1, 2, 10)};
  ASSERT_TRUE(skb.add_measured_answer_costs(costs).ok());
  EXPECT_EQ(skb.answer_path(0, 1), AnswerPath::in_line);
  EXPECT_EQ(skb.answer_path(1, 0), AnswerPath::in_line);
  EXPECT_EQ(skb.answer_path_source(0, 1), FactSource::measured);
  EXPECT_EQ(skb.answer_path(0, 2), AnswerPath::channel);
  EXPECT_EQ(skb.answer_path_source(0, 2), FactSource::measured);
  EXPECT_EQ(skb.answer_path(3, 0), AnswerPath::channel);
  EXPECT_EQ(skb.answer_path(1, 2), AnswerPath::channel);
  EXPECT_EQ(skb.answer_path_source(1, 2), FactSource::derived);
  EXPECT_EQ(skb.answer_cost(1, 0, AnswerPath::in_line)->median, nanoseconds(400));
  EXPECT_EQ(skb.answer_cost(1, 2, AnswerPath::channel).error().code, Errc::not_found);
  EXPECT_TRUE(has_fact(skb, "pu 0->pu 1", "answer_path", "in_line", FactSource::measured));
  EXPECT_TRUE(has_fact(skb, "pu 0-pu 1", "answer_in_line_median_ns", "400", FactSource::measured));
}

TEST(SkbAnswerPath, AnAssertedPathOverridesTheMeasurement) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  const std::vector<AnswerCost> costs = {cost(AnswerPath::channel, 0, 1, 500),
                                         cost(AnswerPath::in_line, 0, 1, 100)};
  ASSERT_TRUE(skb.add_measured_answer_costs(costs).ok());
  ASSERT_EQ(skb.answer_path(0, 1), AnswerPath::in_line);
  ASSERT_TRUE(skb.assert_facts_json(
                     R"({"answer_paths": [{"from": 0, "to": 1, "path": "channel"}]})", "t.json")
                  .ok());
  EXPECT_EQ(skb.answer_path(0, 1), AnswerPath::channel);
  EXPECT_EQ(skb.answer_path_source(0, 1), FactSource::asserted);
  EXPECT_TRUE(has_fact(skb, "pu 0->pu 1", "answer_path", "channel", FactSource::asserted));
  // Only the asserted direction: the other still follows the measurement.
  EXPECT_EQ(skb.answer_path(1, 0), AnswerPath::in_line);
  // A measurement after the assertion does not replace it either.
  ASSERT_TRUE(skb.add_measured_answer_costs(costs).ok());
  EXPECT_EQ(skb.answer_path(0, 1), AnswerPath::channel);
}

TEST(SkbAnswerPath, BadAssertionsAreErrorsNamingTheField) {
  struct Bad {
    std::string json;
    std::string named;
    Errc code = Errc::invalid_argument;
  };
  const std::vector<Bad> bad = {
      {R"({"answer_paths": [{"from": 0, "to": 1, "path": "pigeon"}]})", "answer_paths[0].path"},
      {R"({"answer_paths": [{"from": 0, "to": 0, "path": "in_line"}]})", "answer_paths[0]"},
      {R"({"answer_paths": [{"from": 0, "to": 9, "path": "in_line"}]})", "answer_paths[0].to",
       Errc::not_found},
      {R"({"answer_paths": [{"from": 0, "path": "in_line"}]})", "'to'"},
      {R"({"answer_paths": [{"from": 0, "to": 1, "path": "in_line", "x": 1}]})", "x"},
      {R"({"answer_paths": {"from": 0}})", "answer_paths"},
  };
  for (const auto& [json, named, code] : bad) {
    Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
    auto refused = skb.assert_facts_json(json, "t.json");
    ASSERT_FALSE(refused.ok()) << json;
    EXPECT_EQ(refused.error().code, code) << json;
    EXPECT_NE(refused.error().message.find(named), std::string::npos)
        << json << ": " << refused.error().message;
    EXPECT_EQ(skb.answer_path_source(0, 1), FactSource::derived) << json;
  }
}

TEST(SkbAnswerPath, InconsistentCostsAreRefusedWhole) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  const std::vector<std::vector<AnswerCost>> bad = {
      {cost(AnswerPath::channel, 0, 1, 100), cost(AnswerPath::in_line, 0, 0, 50)},
      {cost(AnswerPath::channel, 0, 1, 100), cost(AnswerPath::in_line, 0, 7, 50)},
      {AnswerCost{AnswerPath::in_line,
                  CoreLatency{0, 1, nanoseconds(90), nanoseconds(10), FactSource::measured}}}};
  for (const auto& costs : bad) {
    auto refused = skb.add_measured_answer_costs(costs);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
  }
  EXPECT_FALSE(skb.answer_cost(0, 1, AnswerPath::channel).ok());
  EXPECT_EQ(skb.answer_path_source(0, 1), FactSource::derived);
}

TEST(SkbAnswerPath, CostsRoundTripThroughTheLatencyCache) {
  const test::TempDir temp;
  Skb skb = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  const std::vector<AnswerCost> costs = {cost(AnswerPath::channel, 0, 1, 300),
                                         cost(AnswerPath::in_line, 0, 1, 200)};
  ASSERT_TRUE(skb.add_measured_answer_costs(costs).ok());
  ASSERT_TRUE(save_latency_cache(latency_cache_path(temp.path(), skb), skb).ok());

  Skb fresh = test::load_or_fail(test::topology_file("16amd64-4distances.xml"));
  auto loaded = load_cached_measurements(fresh, temp.path());
  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  EXPECT_TRUE(*loaded);
  EXPECT_EQ(fresh.answer_path(0, 1), AnswerPath::in_line);
  EXPECT_EQ(fresh.answer_path_source(0, 1), FactSource::measured);
  EXPECT_EQ(fresh.answer_cost(0, 1, AnswerPath::channel)->median, nanoseconds(300));
}

TEST(SkbAnswerPath, AMalformedCostInTheCacheIsAnErrorNamingTheFile) {
  const test::TempDir temp;
  Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  const std::string path = latency_cache_path(temp.path(), skb);
  const std::vector<std::string> bodies = {
      R"("answer_costs": [{"between": [0, 1], "path": "pigeon", "min_ns": 1, "median_ns": 2}])",
      R"("answer_costs": [{"between": [0, 0], "path": "in_line", "min_ns": 1, "median_ns": 2}])",
      R"("answer_costs": [{"between": [0, 1], "path": "in_line", "min_ns": 3, "median_ns": 2}])",
      R"("answer_costs": [{"between": [0, 1], "path": 1, "min_ns": 1, "median_ns": 2}])",
      R"("answer_costs": {"between": [0, 1]})",
  };
  for (const std::string& body : bodies) {
    test::write_file(
        path, R"({"fingerprint": ")" + skb.fingerprint() + R"(", "latencies": [], )" + body + "}");
    Skb target = skb;
    auto refused = load_cached_measurements(target, temp.path());
    ASSERT_FALSE(refused.ok()) << body;
    EXPECT_EQ(refused.error().code, Errc::parse_error) << body;
    EXPECT_NE(refused.error().message.find(path), std::string::npos) << body;
    EXPECT_EQ(target.answer_path_source(0, 1), FactSource::derived);
  }
}

}  // namespace
}  // namespace mk
