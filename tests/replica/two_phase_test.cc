// Two-phase commit under contention: conflicting proposals never both commit, aborted ones
// leave no trace (no value, no reservation), and the abort reason reaches the proposer. Kernels
// as threads and as processes.
#include <algorithm>
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

/// What one kernel's claims of every key came to.
struct ClaimOutcomes {
  std::array<std::uint64_t, Claims::kKeys> wins{};  ///< By key: successful claims.
  std::uint64_t conflicts = 0;
  std::uint64_t taken = 0;
  std::uint64_t bad_reason = 0;
  std::string first_bad;
};

}  // namespace mk::test

/// ClaimOutcomes come back from kernel processes as a task's value.
template <>
struct mk::Codec<mk::test::ClaimOutcomes> {
  static void encode(const mk::test::ClaimOutcomes& o, std::vector<std::byte>& out) {
    detail::encode_framed(o.wins, out);
    detail::encode_framed(std::array<std::uint64_t, 3>{o.conflicts, o.taken, o.bad_reason}, out);
    detail::encode_framed(o.first_bad, out);
  }
  static mk::Result<mk::test::ClaimOutcomes> decode(std::span<const std::byte> bytes) {
    std::size_t at = 0;
    auto wins =
        detail::decode_framed<std::array<std::uint64_t, mk::test::Claims::kKeys>>(bytes, at);
    auto counts = detail::decode_framed<std::array<std::uint64_t, 3>>(bytes, at);
    auto first_bad = detail::decode_framed<std::string>(bytes, at);
    if (!wins || !counts || !first_bad) return error(Errc::parse_error, "ClaimOutcomes: malformed");
    return mk::test::ClaimOutcomes{*wins, (*counts)[0], (*counts)[1], (*counts)[2],
                                   std::move(*first_bad)};
  }
};

namespace mk::test {
namespace {

/// Claims every key at once from `k`.
Task<ClaimOutcomes> claim_every_key(Kernel& k, Replicated<Claims> claims) {
  ClaimOutcomes mine;
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
  co_return mine;
}

/// Claims keys 0 to 15 from `k`, retrying each after a conflict, with backoff; how many it won.
Task<std::uint64_t> claim_with_backoff(Kernel& k, Replicated<Claims> claims) {
  std::uint64_t won = 0;
  for (std::uint64_t key = 0; key < 16; ++key) {
    for (int attempt = 0;; ++attempt) {
      auto result = co_await claims.propose(k, Claims::Op{key, static_cast<std::int32_t>(k.id())});
      if (result) {
        ++won;
        break;
      }
      if (result.error().code != Errc::conflict) break;  // Taken by someone else.
      co_await k.sleep_for(std::chrono::microseconds(10 * (1 + k.id()) * (1 + attempt % 8)));
    }
  }
  co_return won;
}

/// Claims each key not in `taken` once from `k`; how many committed.
Task<std::uint64_t> claim_each_free_key(Kernel& k, Replicated<Claims> claims,
                                        std::vector<std::uint64_t> taken) {
  std::uint64_t committed = 0;
  for (std::uint64_t key = 0; key < Claims::kKeys; ++key) {
    if (std::find(taken.begin(), taken.end(), key) != taken.end()) continue;
    if (co_await claims.propose(k, Claims::Op{key, 100})) ++committed;
  }
  co_return committed;
}

class TwoPhase : public BothIsolations {};

TEST_P(TwoPhase, ConflictingClaimsNeverBothCommit) {
  auto system = boot(config(8));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = Protocol::two_phase;
  auto made = Replicated<Claims>::create(*system, Claims{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto claims = *made;

  // Every kernel claims every key at once: each key is contended by all eight.
  auto results = run_on_each(
      *system, first_kernels(8),
      [](Kernel& k, Replicated<Claims> c) { return claim_every_key(k, std::move(c)); }, claims);
  std::vector<ClaimOutcomes> outcomes;
  for (auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.error().describe();
    outcomes.push_back(std::move(*result));
  }

  std::map<std::uint64_t, KernelId> winner;
  std::size_t conflicts = 0;
  for (KernelId id = 0; id < 8; ++id) {
    EXPECT_EQ(outcomes[id].bad_reason, 0u) << outcomes[id].first_bad;
    conflicts += outcomes[id].conflicts;
    for (std::uint64_t key = 0; key < Claims::kKeys; ++key) {
      const std::uint64_t wins = outcomes[id].wins[key];
      if (wins == 0) continue;
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
  std::vector<std::uint64_t> won_keys;
  for (auto [key, kernel] : winner)
    won_keys.push_back(key);
  auto retried = system->run(
      3,
      [](Kernel& k, Replicated<Claims> c, std::vector<std::uint64_t> taken) {
        return claim_each_free_key(k, std::move(c), std::move(taken));
      },
      claims, won_keys);
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(*retried, Claims::kKeys - winner.size());
}

TEST_P(TwoPhase, RetryWithBackoffEventuallyClaimsEveryKey) {
  auto system = boot(config(8));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = Protocol::two_phase;
  auto made = Replicated<Claims>::create(*system, Claims{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto claims = *made;

  const auto won = run_on_each(
      *system, first_kernels(8),
      [](Kernel& k, Replicated<Claims> c) { return claim_with_backoff(k, std::move(c)); }, claims);
  std::uint64_t total = 0;
  for (const auto& w : won) {
    ASSERT_TRUE(w.ok()) << w.error().describe();
    total += *w;
  }
  EXPECT_EQ(total, 16u);
  auto state = snapshot(*system, claims, 0);
  ASSERT_TRUE(state.ok());
  for (std::uint64_t key = 0; key < 16; ++key)
    EXPECT_GE(state->owner[key], 0) << "key " << key;
}

INSTANTIATE_TEST_SUITE_P(Isolations, TwoPhase, kBothIsolations, isolation_param_name);

}  // namespace
}  // namespace mk::test
