// A fan-out's buffers under the cache-line model (Executor::begin_fan_out): one buffer shared by
// every receiver is served to one reader at a time, and a buffer's node prices its lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "mk/fan_out.h"
#include "mk/kernel.h"
#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

struct Note {
  static constexpr mk::MessageType kType = 42;
  std::uint64_t value;
};

/// Eight kernels on a machine of four packages of two cores, one NUMA node each; kernel 0 posts.
class FanOutCosts : public ::testing::Test {
 protected:
  void SetUp() override {
    mk::SimulationOptions options;
    options.topology = "pack:4 numa:1 core:2 pu:1";
    options.kernels = 8;
    options.costs.jitter = 0ns;
    options.costs.lines.enabled = true;
    sim_ = create(options);
    ASSERT_TRUE(sim_);
    auto handlers = sim_->system().for_each_kernel([this](mk::Kernel& k) {
      (void)k.handle<Note>([this, &k](const Note& note) {
        seen_[k.id()] = Seen{k.now(), note.value};
      });
    });
    ASSERT_TRUE(handlers.ok()) << handlers.error().describe();
    // The first message to each binds its channel; what is measured goes into bound ones.
    ASSERT_TRUE(post({}, false, 0).ok());
  }

  /// The NUMA node of kernel `kernel`'s core.
  int node_of(mk::KernelId kernel) {
    auto core = sim_->system().core_of(kernel);
    EXPECT_TRUE(core.ok());
    auto node = core.ok() ? sim_->system().skb().numa_node_of(*core) : core.error();
    EXPECT_TRUE(node.ok());
    return node.ok() ? *node : -1;
  }

  /// Kernel 0 posts Note{value} to kernels 1 to 7 as one fan-out, each buffer on `nodes[i]`
  /// (the receiver's own node where absent), or with `shared` into one buffer; returns how
  /// long after the post each receiver's handler ran, by kernel.
  mk::Result<std::map<mk::KernelId, std::chrono::nanoseconds>> post(
      std::map<mk::KernelId, int> nodes, bool shared, std::uint64_t value) {
    seen_.clear();
    std::vector<mk::FanOutSend> sends;
    for (mk::KernelId to = 1; to < 8; ++to) {
      sends.push_back(mk::FanOutSend{to, nodes.contains(to) ? nodes[to] : node_of(to)});
    }
    auto posted = sim_->run(0, [&](mk::Kernel& k) -> mk::Task<mk::Instant> {
      const Note note{value};
      mk::detail::KernelAccess::post_fan_out(k, mk::FanOut{sends, shared}, Note::kType,
                                             std::as_bytes(std::span<const Note, 1>(&note, 1)),
                                             [](mk::KernelId to, const mk::Error& failure) {
                                               ADD_FAILURE() << "post to " << to << ": "
                                                             << failure.describe();
                                             });
      co_return k.now();
    });
    if (!posted.ok()) return posted.error();
    if (auto idle = sim_->run_until_idle(1s); !idle.ok()) return idle.error();
    std::map<mk::KernelId, std::chrono::nanoseconds> after;
    for (const auto& [kernel, seen] : seen_) {
      EXPECT_EQ(seen.value, value) << "kernel " << kernel;
      after[kernel] = seen.at - *posted;
    }
    return after;
  }

  struct Seen {
    mk::Instant at;
    std::uint64_t value;
  };
  std::unique_ptr<mk::Simulation> sim_;
  std::map<mk::KernelId, Seen> seen_;  // The simulation runs on this thread only.
};

TEST_F(FanOutCosts, ASharedBuffersReadersQueueForItsLine) {
  auto own = post({}, false, 7);
  auto shared = post({}, true, 8);
  ASSERT_TRUE(own.ok()) << own.error().describe();
  ASSERT_TRUE(shared.ok()) << shared.error().describe();
  ASSERT_EQ(own->size(), 7u);
  ASSERT_EQ(shared->size(), 7u);
  std::vector<std::chrono::nanoseconds> reads;
  for (const auto& [kernel, after] : *shared)
    reads.push_back(after);
  std::sort(reads.begin(), reads.end());
  // Each reader gets the line after the one before it: the k-th pays more than the first.
  for (std::size_t k = 1; k < reads.size(); ++k)
    EXPECT_GT(reads[k], reads[k - 1]) << "reader " << k;
  auto last = [](const auto& after) {
    return std::max_element(after.begin(), after.end(),
                            [](const auto& a, const auto& b) { return a.second < b.second; })
        ->second;
  };
  // Buffers of their own are read side by side.
  EXPECT_GT(last(*shared), last(*own));
}

TEST_F(FanOutCosts, ABufferAwayFromBothEndsCostsMoreThanOneOnTheReadersNode) {
  // Kernel 2's buffer on its own node, then on kernel 4's: the write and the read both cross
  // packages then, where before only the write did.
  ASSERT_NE(node_of(4), node_of(0));
  ASSERT_NE(node_of(4), node_of(2));
  auto near = post({}, false, 1);
  auto far = post({{2, node_of(4)}}, false, 2);
  ASSERT_TRUE(near.ok()) << near.error().describe();
  ASSERT_TRUE(far.ok()) << far.error().describe();
  ASSERT_TRUE(near->contains(2) && far->contains(2));
  EXPECT_GT(far->at(2), near->at(2));
}

}  // namespace
}  // namespace mk_sim_test
