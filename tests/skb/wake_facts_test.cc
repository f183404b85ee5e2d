// Wake costs and the wake mechanism as SKB facts: measured and asserted, the choice, the poll
// budget derived from the chosen mechanism's cost, and the cache beside the latencies.
#include <gtest/gtest.h>

#include <vector>

#include "mk/latency_cache.h"
#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

const std::vector<WakeCost> kMeasured = {
    {WakeMechanism::eventfd, nanoseconds(4000), nanoseconds(5000), FactSource::measured},
    {WakeMechanism::futex, nanoseconds(2000), nanoseconds(3000), FactSource::measured},
    {WakeMechanism::msg_ring, nanoseconds(3000), nanoseconds(4000), FactSource::measured}};

TEST(SkbWake, TheCheapestUsableMechanismIsChosen) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:4 pu:1");
  // Nothing known: the first usable one.
  EXPECT_EQ(skb.wake_mechanism(), WakeMechanism::eventfd);
  ASSERT_TRUE(skb.add_measured_wake_costs(kMeasured).ok());
  EXPECT_EQ(skb.wake_mechanism(), WakeMechanism::futex);
  const std::vector<WakeMechanism> no_futex = {WakeMechanism::eventfd, WakeMechanism::msg_ring};
  EXPECT_EQ(skb.wake_mechanism(no_futex), WakeMechanism::msg_ring);
  EXPECT_EQ(skb.wake_cost(WakeMechanism::futex)->median, nanoseconds(3000));
}

TEST(SkbWake, AnAssertedMechanismOverridesTheMeasuredChoiceWhereUsable) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:4 pu:1");
  ASSERT_TRUE(skb.add_measured_wake_costs(kMeasured).ok());
  ASSERT_TRUE(skb.assert_facts_json(R"({"wake_mechanism": "eventfd"})", "w.json").ok());
  EXPECT_EQ(skb.asserted_wake_mechanism(), WakeMechanism::eventfd);
  EXPECT_EQ(skb.wake_mechanism(), WakeMechanism::eventfd);
  // Where the OS refuses it, the cheapest of the others.
  const std::vector<WakeMechanism> refused = {WakeMechanism::futex, WakeMechanism::msg_ring};
  EXPECT_EQ(skb.wake_mechanism(refused), WakeMechanism::futex);
}

TEST(SkbWake, AssertedCostsBeatMeasuredOnes) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:4 pu:1");
  ASSERT_TRUE(skb.assert_facts_json(
                     R"({"wake_costs": [{"mechanism": "msg_ring", "median_ns": 1000}]})", "w.json")
                  .ok());
  ASSERT_TRUE(skb.add_measured_wake_costs(kMeasured).ok());
  EXPECT_EQ(skb.wake_cost(WakeMechanism::msg_ring)->source, FactSource::asserted);
  EXPECT_EQ(skb.wake_cost(WakeMechanism::msg_ring)->min, nanoseconds(1000));
  EXPECT_EQ(skb.wake_mechanism(), WakeMechanism::msg_ring);
}

TEST(SkbWake, BadWakeFactsAreRefusedNamingTheField) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:4 pu:1");
  auto unknown = skb.assert_facts_json(R"({"wake_mechanism": "pigeon"})", "w.json");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("wake_mechanism"), std::string::npos);
  EXPECT_NE(unknown.error().message.find("pigeon"), std::string::npos);
  auto inverted = skb.assert_facts_json(
      R"({"wake_costs": [{"mechanism": "futex", "min_ns": 9, "median_ns": 5}]})", "w.json");
  ASSERT_FALSE(inverted.ok());
  EXPECT_NE(inverted.error().message.find("wake_costs[0].min_ns"), std::string::npos);
  EXPECT_FALSE(skb.asserted_wake_mechanism());
  EXPECT_TRUE(skb.wake_costs().empty());
}

TEST(SkbWake, ThePollBudgetIsTheChosenMechanismsWakeCost) {
  Skb skb = test::load_or_fail("pack:1 numa:1 core:4 pu:1");
  // No cost known: the fixed default.
  EXPECT_EQ(skb.poll_budget(4), microseconds(20));
  ASSERT_TRUE(skb.add_measured_wake_costs(kMeasured).ok());
  EXPECT_EQ(skb.poll_budget(4), nanoseconds(3000));  // futex, the cheapest
  EXPECT_EQ(skb.poll_budget(4, WakeMechanism::eventfd), nanoseconds(5000));
  // Kernels sharing cores never poll, whatever a wake costs.
  EXPECT_EQ(skb.poll_budget(5), nanoseconds(0));
  // Bounded: a budget of a few ns would sleep between two messages of a burst.
  ASSERT_TRUE(skb.assert_facts_json(R"({"wake_costs": [{"mechanism": "futex", "median_ns": 10}]})",
                                    "w.json")
                  .ok());
  EXPECT_EQ(skb.poll_budget(4), microseconds(1));
  // An asserted budget wins.
  ASSERT_TRUE(skb.assert_facts_json(R"({"poll_budget_ns": 7000})", "w.json").ok());
  EXPECT_EQ(skb.poll_budget(4), nanoseconds(7000));
}

TEST(SkbWake, WakeCostsAreCachedBesideTheLatencies) {
  test::TempDir dir;
  Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  const std::string path = latency_cache_path(dir.path(), skb);
  EXPECT_EQ(load_wake_cost_cache(path, skb).error().code, Errc::not_found);
  const std::vector<CoreLatency> latencies = {
      {0, 1, nanoseconds(100), nanoseconds(110), FactSource::measured}};
  ASSERT_TRUE(skb.add_measured_latencies(latencies).ok());
  ASSERT_TRUE(save_latency_cache(path, skb).ok());
  // Saving wake costs from an SKB without latencies keeps the file's latencies.
  Skb woken = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  ASSERT_TRUE(woken.add_measured_wake_costs(kMeasured).ok());
  ASSERT_TRUE(save_latency_cache(path, woken).ok());
  auto costs = load_wake_cost_cache(path, skb);
  ASSERT_TRUE(costs.ok()) << costs.error().describe();
  ASSERT_EQ(costs->size(), 3u);
  EXPECT_EQ((*costs)[1].mechanism, WakeMechanism::futex);
  EXPECT_EQ((*costs)[1].median, nanoseconds(3000));
  auto kept = load_latency_cache(path, skb);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0].median, nanoseconds(110));
  // And the other way round: saving latencies keeps the wake costs.
  ASSERT_TRUE(save_latency_cache(path, skb).ok());
  EXPECT_EQ(load_wake_cost_cache(path, skb)->size(), 3u);
}

}  // namespace
}  // namespace mk
