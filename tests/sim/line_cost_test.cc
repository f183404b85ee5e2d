// The cache-line cost model (SimCosts::lines): each slot of a message travels from its sender
// to the node of the receiver's buffer while the sender goes on, and costs its receiver one
// line transfer per slot read from that node.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>

#include "mk/skb.h"
#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

/// One-way, one slot (the 8-byte envelope and 8 bytes).
struct Small {
  static constexpr mk::MessageType kType = 40;
  std::uint64_t value;
};

/// One-way, three slots of 56 bytes (the envelope and 150 bytes: 158 bytes).
struct Wide {
  static constexpr mk::MessageType kType = 41;
  std::array<std::uint8_t, 150> bytes;
};

/// What one message cost: the sender's clock across the send, and the time from the send to
/// the receiver's handler (the slots' flight, then the receiver's reads).
struct Costs {
  std::chrono::nanoseconds sender{-1};
  std::chrono::nanoseconds delivery{-1};
};

class LineCosts : public ::testing::Test {
 protected:
  /// Three kernels: 0 on the first core, 1 on the nearest other core, 2 on the farthest one,
  /// of a machine with 1- to 4-hop distances between its eight nodes.
  void SetUp() override {
    auto skb = mk::Skb::load(topology_file("16amd64-4distances.xml"));
    ASSERT_TRUE(skb.ok()) << skb.error().describe();
    const auto [first, near, far] = near_and_far(*skb);
    ASSERT_LT(*skb->distance(first, near), *skb->distance(first, far));
    ASSERT_NE(*skb->numa_node_of(near), *skb->numa_node_of(far));

    mk::SimulationOptions options;
    options.skb.emplace(*skb);
    options.cores = {first, near, far};
    options.costs.jitter = 0ns;
    options.costs.lines.enabled = true;
    sim_ = create(options);
    ASSERT_TRUE(sim_);
    auto handlers = sim_->system().for_each_kernel([this](mk::Kernel& k) {
      (void)k.handle<Small>([this, &k](const Small&) { seen_ = k.now(); });
      (void)k.handle<Wide>([this, &k](const Wide&) { seen_ = k.now(); });
    });
    ASSERT_TRUE(handlers.ok()) << handlers.error().describe();
    // The first message to each binds the channel; what is measured later goes into bound ones.
    ASSERT_TRUE(sim_->run(0,
                          [](mk::Kernel& k) -> mk::Task<bool> {
                            co_return (co_await k.send(1, Small{0})).ok() &&
                                (co_await k.send(2, Small{0})).ok();
                          })
                    .ok());
    ASSERT_TRUE(sim_->run_until_idle(1s).ok());
  }

  /// Sends a Small (or with `wide`, a Wide) from kernel 0 to `to`, every kernel idle before.
  Costs send(mk::KernelId to, bool wide) {
    seen_.reset();
    auto sent = sim_->run(0, [to, wide](mk::Kernel& k) -> mk::Task<Costs> {
      const mk::Instant before = k.now();
      const bool ok =
          wide ? (co_await k.send(to, Wide{})).ok() : (co_await k.send(to, Small{1})).ok();
      if (!ok) co_return Costs{};
      co_return Costs{k.now() - before, std::chrono::nanoseconds(k.now().time_since_epoch())};
    });
    EXPECT_TRUE(sent.ok());
    EXPECT_TRUE(sim_->run_until_idle(1s).ok());
    if (!sent.ok() || !seen_) return Costs{};
    // `delivery` held the instant the message left; the handler ran once it was read.
    return Costs{sent->sender,
                 std::chrono::nanoseconds(seen_->time_since_epoch()) - sent->delivery};
  }

  std::unique_ptr<mk::Simulation> sim_;
  std::optional<mk::Instant> seen_;  // The simulation runs on this thread only.
};

TEST_F(LineCosts, AMessageToAFartherNodeTakesLongerAndNeverStallsItsSender) {
  const Costs near = send(1, false);
  const Costs far = send(2, false);
  EXPECT_GT(near.delivery, 0ns);
  EXPECT_GT(far.delivery, near.delivery);
  EXPECT_EQ(near.sender, 0ns);
  EXPECT_EQ(far.sender, 0ns);
}

TEST_F(LineCosts, CostsScaleWithSlots) {
  const Costs one = send(2, false);
  const Costs three = send(2, true);
  ASSERT_GT(one.delivery, 0ns);
  EXPECT_EQ(three.delivery, 3 * one.delivery);
  EXPECT_EQ(three.sender, 0ns);
}

TEST_F(LineCosts, TransfersAreSharesOfTheOneWayLatency) {
  // The slot's flight is priced by the one-way latency from kernel 0 to the nearest core of
  // kernel 2's node, and its read by kernel 2's latency to a core of its own node, each over
  // transfers_per_message: together no more than the one-way latency between them.
  const Costs far = send(2, false);
  const auto one_way = sim_->one_way_latency(0, 2);
  ASSERT_TRUE(one_way.ok());
  ASSERT_EQ(sim_->options().costs.lines.transfers_per_message, 2);
  EXPECT_LE(far.delivery, *one_way);
  EXPECT_GT(far.delivery, *one_way / 2);
}

TEST(LineCostOptions, TransfersPerMessageMustBePositive) {
  mk::SimulationOptions options = small_machine(2);
  options.costs.lines.transfers_per_message = 0;
  auto sim = mk::Simulation::create(options);
  ASSERT_FALSE(sim.ok());
  EXPECT_EQ(sim.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(sim.error().message.find("costs.lines.transfers_per_message"), std::string::npos);
}

}  // namespace
}  // namespace mk_sim_test
