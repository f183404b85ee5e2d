// Two-phase commit under contention: conflicting proposals never both commit, aborted ones
// leave no trace (no value, no reservation), and the abort reason reaches the proposer.
#include <map>

#include "replica_test_util.h"

namespace mk::test {

/// Keys claimed by kernels: a claim of a taken key fails its check.
struct Claims {
  static constexpr std::size_t kKeys = 64;
  struct Op {
    std::uint64_t key = 0;
    std::int32_t owner = 0;
  };
  using Result = std::int32_t;
  std::array<std::int32_t, kKeys> owner;
  Claims() { owner.fill(-1); }

  Result apply(const Op& op) { return owner[op.key % kKeys] = op.owner; }
  void keys(const Op& op, std::vector<std::uint64_t>& out) const { out.push_back(op.key % kKeys); }
  mk::Result<void> check(const Op& op) const {
    if (owner[op.key % kKeys] >= 0) {
      return error(Errc::already_exists, "key " + std::to_string(op.key % kKeys) +
                                             " taken by kernel " +
                                             std::to_string(owner[op.key % kKeys]));
    }
    return {};
  }
};

namespace {

struct ClaimOutcomes {
  std::map<std::uint64_t, std::size_t> wins;  ///< Key -> successful claims.
  std::size_t conflicts = 0;
  std::size_t taken = 0;
  std::size_t bad_reason = 0;
  std::string first_bad;
};

TEST(TwoPhase, ConflictingClaimsNeverBothCommit) {
  auto system = boot(config_for(8));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = Protocol::two_phase;
  auto made = Replicated<Claims>::create(*system, Claims{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto claims = *made;

  // Every kernel claims every key at once: each key is contended by all eight.
  std::vector<ClaimOutcomes> outcomes(8);
  run_on_all(*system, first_kernels(8), [claims, &outcomes](Kernel& k) -> Task<void> {
    ClaimOutcomes& mine = outcomes[k.id()];
    std::vector<Proposal<std::int32_t>> flying;
    for (std::uint64_t key = 0; key < Claims::kKeys; ++key)
      flying.push_back(claims.propose(k, Claims::Op{key, static_cast<std::int32_t>(k.id())}));
    for (std::uint64_t key = 0; key < Claims::kKeys; ++key) {
      auto result = co_await flying[key];
      if (result) {
        ++mine.wins[key];
      } else if (result.error().code == Errc::conflict &&
                 result.error().message.starts_with("aborted: conflict with transaction")) {
        ++mine.conflicts;
      } else if (result.error().code == Errc::already_exists &&
                 result.error().message.find("taken by kernel") != std::string::npos) {
        ++mine.taken;
      } else if (mine.bad_reason++ == 0) {
        mine.first_bad = result.error().describe();
      }
    }
  });

  std::map<std::uint64_t, KernelId> winner;
  std::size_t conflicts = 0;
  for (KernelId id = 0; id < 8; ++id) {
    EXPECT_EQ(outcomes[id].bad_reason, 0u) << outcomes[id].first_bad;
    conflicts += outcomes[id].conflicts;
    for (auto [key, wins] : outcomes[id].wins) {
      EXPECT_EQ(wins, 1u);
      EXPECT_FALSE(winner.contains(key)) << "key " << key << " committed twice";
      winner[key] = id;
    }
  }
  EXPECT_GT(conflicts, 0u) << "the test did not create contention";

  // Every replica shows exactly the winners; keys nobody won are untouched everywhere.
  for (KernelId id = 0; id < 8; ++id) {
    auto state = snapshot(*system, claims, id);
    ASSERT_TRUE(state.ok()) << state.error().describe();
    for (std::uint64_t key = 0; key < Claims::kKeys; ++key) {
      auto it = winner.find(key);
      EXPECT_EQ(state->owner[key], it == winner.end() ? -1 : static_cast<std::int32_t>(it->second))
          << "kernel " << id << " key " << key;
    }
  }

  // No reservation survived: a lone claim of each unclaimed key commits at the first try.
  auto retried = system->run(3, [claims, winner](Kernel& k) -> Task<std::size_t> {
    std::size_t committed = 0;
    for (std::uint64_t key = 0; key < Claims::kKeys; ++key) {
      if (winner.contains(key)) continue;
      auto result = co_await claims.propose(k, Claims::Op{key, 100});
      EXPECT_TRUE(result.ok()) << result.error().describe();
      if (result) ++committed;
    }
    co_return committed;
  });
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(*retried, Claims::kKeys - winner.size());
}

TEST(TwoPhase, RetryWithBackoffEventuallyClaimsEveryKey) {
  auto system = boot(config_for(8));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = Protocol::two_phase;
  auto made = Replicated<Claims>::create(*system, Claims{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto claims = *made;

  std::vector<std::size_t> won(8, 0);
  run_on_all(*system, first_kernels(8), [claims, &won](Kernel& k) -> Task<void> {
    for (std::uint64_t key = 0; key < 16; ++key) {
      for (int attempt = 0;; ++attempt) {
        auto result =
            co_await claims.propose(k, Claims::Op{key, static_cast<std::int32_t>(k.id())});
        if (result) {
          ++won[k.id()];
          break;
        }
        if (result.error().code != Errc::conflict) break;  // Taken by someone else.
        co_await k.sleep_for(std::chrono::microseconds(10 * (1 + k.id()) * (1 + attempt % 8)));
      }
    }
  });
  std::size_t total = 0;
  for (std::size_t w : won)
    total += w;
  EXPECT_EQ(total, 16u);
  auto state = snapshot(*system, claims, 0);
  ASSERT_TRUE(state.ok());
  for (std::uint64_t key = 0; key < 16; ++key)
    EXPECT_GE(state->owner[key], 0) << "key " << key;
}

}  // namespace
}  // namespace mk::test
