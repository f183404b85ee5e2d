// The latency and cost model: distances (or measured latencies) from the SKB, costs charged to
// the kernel that sends or receives.
#include <gtest/gtest.h>

#include <vector>

#include "mk/skb.h"
#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

/// Kernel 0's virtual round trip of a call to `to`, after a first call bound the channels.
std::chrono::nanoseconds round_trip(mk::Simulation& sim, mk::KernelId to) {
  auto rtt = sim.run(0, [to](mk::Kernel& k) -> mk::Task<std::chrono::nanoseconds> {
    (void)co_await k.call(to, Bump{0});
    const mk::Instant start = k.now();
    auto reply = co_await k.call(to, Bump{0});
    co_return reply.ok() ? k.now() - start : std::chrono::nanoseconds(-1);
  });
  EXPECT_TRUE(rtt.ok());
  return rtt.ok() ? *rtt : std::chrono::nanoseconds(-1);
}

TEST(Latency, AFarCoreAnswersLaterThanANearOne) {
  // Eight sockets of two cores, one NUMA node each, with 1- to 4-hop distances.
  auto skb = mk::Skb::load(topology_file("16amd64-4distances.xml"));
  ASSERT_TRUE(skb.ok()) << skb.error().describe();
  const auto [first, near, far] = near_and_far(*skb);
  ASSERT_LT(*skb->distance(first, near), *skb->distance(first, far));

  mk::SimulationOptions options;
  options.skb.emplace(*skb);
  options.cores = {first, near, far};
  options.costs.jitter = std::chrono::nanoseconds(0);
  auto sim = create(options);
  ASSERT_TRUE(sim);
  handle_bump_everywhere(*sim);
  const auto near_one_way = sim->one_way_latency(0, 1);
  const auto far_one_way = sim->one_way_latency(0, 2);
  ASSERT_TRUE(near_one_way.ok() && far_one_way.ok());
  // latency = one_way_base * distance / 10
  EXPECT_EQ(*near_one_way, options.costs.one_way_base * *skb->distance(first, near) / 10);
  EXPECT_EQ(*far_one_way, options.costs.one_way_base * *skb->distance(first, far) / 10);

  const auto near_rtt = round_trip(*sim, 1);
  const auto far_rtt = round_trip(*sim, 2);
  EXPECT_GT(far_rtt, near_rtt);
  // Without jitter the two round trips differ by the latencies alone: costs are the same.
  EXPECT_EQ(far_rtt - near_rtt, 2 * (*far_one_way - *near_one_way));
  EXPECT_GE(near_rtt, 2 * *near_one_way + 2 * (options.costs.send + options.costs.receive));
}

TEST(Latency, MeasuredLatenciesBeatDistances) {
  auto skb = mk::Skb::load("pack:1 numa:1 core:4 pu:1");
  ASSERT_TRUE(skb.ok());
  ASSERT_TRUE(skb->assert_facts_json(R"({"latencies": [{"between": [0, 3], "median_ns": 5000}]})",
                                     "test facts")
                  .ok());
  mk::SimulationOptions options;
  options.skb.emplace(*skb);
  options.cores = {0, 1, 3};
  auto sim = create(options);
  ASSERT_TRUE(sim);
  EXPECT_EQ(*sim->one_way_latency(0, 2), 2500ns);  // The asserted round trip's half.
  EXPECT_EQ(*sim->one_way_latency(2, 0), 2500ns);
  const auto by_distance_01 = options.costs.one_way_base * *skb->distance(0, 1) / 10;
  const auto by_distance_03 = options.costs.one_way_base * *skb->distance(0, 3) / 10;
  EXPECT_EQ(*sim->one_way_latency(0, 1), by_distance_01);  // No latency known: distance.
  EXPECT_EQ(*sim->one_way_latency(1, 1), 0ns);

  options.costs.use_measured_latencies = false;
  auto by_distance = create(options);
  ASSERT_TRUE(by_distance);
  EXPECT_EQ(*by_distance->one_way_latency(0, 2), by_distance_03);
  EXPECT_NE(by_distance_03, 2500ns);
}

TEST(Latency, SendCostsMakeFanOutLinear) {
  mk::SimulationOptions options;
  options.topology = "pack:1 numa:1 core:8 pu:1";  // Every pair at the same distance.
  options.kernels = 8;
  options.costs.jitter = 0ns;
  options.costs.send = 300ns;
  auto sim = create(options);
  ASSERT_TRUE(sim);
  std::vector<mk::Instant> seen(8);  // The simulation runs on this thread only.
  auto each = sim->system().for_each_kernel([&seen](mk::Kernel& k) {
    (void)k.handle<Numbered>([&seen, &k](const Numbered&) { seen[k.id()] = k.now(); });
  });
  ASSERT_TRUE(each.ok());
  auto fan_out = [&sim]() {
    return sim->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
      for (mk::KernelId to = 1; to < 8; ++to) {
        if (!(co_await k.send(to, Numbered{0, to})).ok()) co_return false;
      }
      co_return true;
    });
  };
  ASSERT_TRUE(fan_out().ok());  // Binds the channels.
  ASSERT_TRUE(sim->run_until_idle(1s).ok());
  auto sent = fan_out();  // Seven sends in one turn, into bound channels.
  ASSERT_TRUE(sent.ok() && *sent);
  ASSERT_TRUE(sim->run_until_idle(1s).ok());
  for (mk::KernelId to = 2; to < 8; ++to) {
    EXPECT_EQ(seen[to] - seen[to - 1], options.costs.send) << "receiver " << to;
  }
}

}  // namespace
}  // namespace mk_sim_test
