// The linearizability checker on hand-written and generated histories.
#include "support/linearizability.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "services/test_models.h"
#include "test_scale.h"

namespace {

using mk::test::NamingModel;
using mk::test::RegisterModel;
namespace lin = mk::test::lin;
using RegOp = lin::Operation<RegisterModel::Input, RegisterModel::Output>;
using NameOp = lin::Operation<NamingModel::Input, NamingModel::Output>;

RegOp reg(std::uint32_t client, RegisterModel::Input in, std::optional<int> out,
          std::uint64_t invoked, std::uint64_t returned) {
  return RegOp{client, in, out, invoked, returned};
}

bool contains(const std::vector<std::size_t>& v, std::size_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

lin::Verdict check_ok(const std::vector<RegOp>& history) {
  auto verdict = lin::check(RegisterModel{}, history);
  EXPECT_TRUE(verdict.ok()) << verdict.error().describe();
  return verdict.ok() ? *verdict : lin::Verdict{};
}

TEST(Linearizability, EmptyHistoryIsLinearizable) {
  EXPECT_TRUE(check_ok({}).ok());
}

TEST(Linearizability, SequentialHistoryGivesItsOwnOrder) {
  auto verdict =
      check_ok({reg(0, RegisterModel::write(1), 0, 1, 2), reg(1, RegisterModel::read(), 1, 3, 4),
                reg(0, RegisterModel::write(2), 0, 5, 6), reg(1, RegisterModel::read(), 2, 7, 8)});
  ASSERT_TRUE(verdict.ok()) << verdict.explanation;
  EXPECT_EQ(verdict.order, (std::vector<std::size_t>{0, 1, 2, 3}));
}

TEST(Linearizability, ConcurrentReadMaySeeEitherValue) {
  for (int seen : {0, 1}) {
    auto verdict = check_ok(
        {reg(0, RegisterModel::write(1), 0, 1, 4), reg(1, RegisterModel::read(), seen, 2, 3)});
    EXPECT_TRUE(verdict.ok()) << "read saw " << seen << ": " << verdict.explanation;
  }
}

TEST(Linearizability, OrderMayDifferFromCallOrder) {
  // The read starts first but must take effect after the write.
  auto verdict =
      check_ok({reg(1, RegisterModel::read(), 1, 1, 10), reg(0, RegisterModel::write(1), 0, 2, 3)});
  ASSERT_TRUE(verdict.ok()) << verdict.explanation;
  EXPECT_EQ(verdict.order, (std::vector<std::size_t>{1, 0}));
}

TEST(Linearizability, StaleReadAfterCompletedWriteIsRejected) {
  auto verdict =
      check_ok({reg(0, RegisterModel::write(1), 0, 1, 2), reg(1, RegisterModel::read(), 0, 3, 4)});
  EXPECT_EQ(verdict.outcome, lin::Outcome::not_linearizable);
  ASSERT_FALSE(verdict.failed.empty());
  EXPECT_EQ(verdict.failed.front(), 1u);
  EXPECT_EQ(verdict.prefix, (std::vector<std::size_t>{0}));
  EXPECT_NE(verdict.explanation.find("#1 (client 1) read() -> 0"), std::string::npos)
      << verdict.explanation;
  EXPECT_NE(verdict.explanation.find("would return: 1"), std::string::npos) << verdict.explanation;
}

TEST(Linearizability, NewThenOldReadsAreRejected) {
  // Both reads overlap the write, but the second starts after the first ended: once a read
  // has seen the new value, no later read may see the old one.
  auto verdict =
      check_ok({reg(0, RegisterModel::write(1), 0, 1, 10), reg(1, RegisterModel::read(), 1, 2, 3),
                reg(2, RegisterModel::read(), 0, 4, 5)});
  EXPECT_EQ(verdict.outcome, lin::Outcome::not_linearizable);
  EXPECT_TRUE(contains(verdict.failed, 2)) << verdict.explanation;
  // The same reads in the other order are fine.
  auto fine =
      check_ok({reg(0, RegisterModel::write(1), 0, 1, 10), reg(1, RegisterModel::read(), 0, 2, 3),
                reg(2, RegisterModel::read(), 1, 4, 5)});
  EXPECT_TRUE(fine.ok()) << fine.explanation;
}

TEST(Linearizability, ReadOfAValueNeverWrittenIsRejected) {
  auto verdict =
      check_ok({reg(0, RegisterModel::write(1), 0, 1, 4), reg(1, RegisterModel::read(), 7, 2, 3)});
  EXPECT_EQ(verdict.outcome, lin::Outcome::not_linearizable);
  EXPECT_EQ(verdict.failed.front(), 1u);
}

TEST(Linearizability, UnknownOutcomeMayOrMayNotTakeEffect) {
  // A write that never answered may have happened (read sees 1) or not (read sees 0)...
  for (int seen : {0, 1}) {
    auto verdict = check_ok({reg(0, RegisterModel::write(1), std::nullopt, 1, 0),
                             reg(1, RegisterModel::read(), seen, 5, 6)});
    EXPECT_TRUE(verdict.ok()) << verdict.explanation;
  }
  // ...but not before it was called, and not both.
  auto early = check_ok({reg(1, RegisterModel::read(), 1, 1, 2),
                         reg(0, RegisterModel::write(1), std::nullopt, 3, 0)});
  EXPECT_EQ(early.outcome, lin::Outcome::not_linearizable);
  auto flicker =
      check_ok({reg(0, RegisterModel::write(1), std::nullopt, 1, 0),
                reg(1, RegisterModel::read(), 1, 2, 3), reg(1, RegisterModel::read(), 0, 4, 5)});
  EXPECT_EQ(flicker.outcome, lin::Outcome::not_linearizable);
}

TEST(Linearizability, ReturnBeforeCallIsAnError) {
  auto verdict =
      lin::check(RegisterModel{}, std::vector<RegOp>{reg(0, RegisterModel::read(), 0, 5, 4)});
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(verdict.error().message.find("operation 0"), std::string::npos);
}

TEST(Linearizability, GivesUpPastTheStateLimit) {
  std::vector<RegOp> history;
  for (int i = 0; i < 8; ++i)
    history.push_back(reg(i, RegisterModel::write(i), 0, 1, 100));
  history.push_back(reg(9, RegisterModel::read(), 42, 101, 102));
  auto verdict = lin::check(RegisterModel{}, history, lin::CheckOptions{.max_states = 50});
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(verdict->outcome, lin::Outcome::gave_up);
  EXPECT_NE(verdict->explanation.find("gave up"), std::string::npos);
}

TEST(Linearizability, MemoKeepsExhaustiveSearchesTractable) {
  // 16 overlapping writes of 1, then a read of 0: no order fits, and proving it without the
  // memo means trying all 16! orders; with it, each subset of writes is explored once.
  std::vector<RegOp> history;
  for (int i = 0; i < 16; ++i)
    history.push_back(reg(i, RegisterModel::write(1), 0, 1, 100));
  history.push_back(reg(30, RegisterModel::read(), 0, 101, 102));
  auto verdict = check_ok(history);
  EXPECT_EQ(verdict.outcome, lin::Outcome::not_linearizable);
  EXPECT_EQ(verdict.failed.front(), 16u);
  EXPECT_LE(verdict.explored, std::size_t{1} << 16);
}

// --- naming histories -----------------------------------------------------------------------

NameOp name_op(std::uint32_t client, NamingModel::Kind kind, std::string name, std::string value,
               NamingModel::Status status, std::string seen, std::uint64_t invoked,
               std::uint64_t returned) {
  return NameOp{client, NamingModel::Input{kind, std::move(name), std::move(value)},
                NamingModel::Output{status, std::move(seen)}, invoked, returned};
}

using K = NamingModel::Kind;
using S = NamingModel::Status;

TEST(Linearizability, LostRegisterIsRejected) {
  std::vector<NameOp> history{
      name_op(0, K::register_name, "a", "1", S::ok, "", 1, 2),
      name_op(1, K::lookup, "a", "", S::not_found, "", 3, 4),
  };
  auto verdict = lin::check_partitioned(NamingModel{}, history);
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(verdict->outcome, lin::Outcome::not_linearizable);
  EXPECT_EQ(verdict->failed.front(), 1u);
  EXPECT_NE(verdict->explanation.find("key 'a'"), std::string::npos) << verdict->explanation;
}

TEST(Linearizability, TwoConcurrentRegistersCannotBothWin) {
  std::vector<NameOp> history{
      name_op(0, K::register_name, "a", "1", S::ok, "", 1, 4),
      name_op(1, K::register_name, "a", "2", S::ok, "", 2, 3),
  };
  auto verdict = lin::check_partitioned(NamingModel{}, history);
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(verdict->outcome, lin::Outcome::not_linearizable);
  history[1].output->status = S::already_exists;
  verdict = lin::check_partitioned(NamingModel{}, history);
  ASSERT_TRUE(verdict.ok());
  EXPECT_TRUE(verdict->ok()) << verdict->explanation;
}

TEST(Linearizability, PartitionsAreCheckedIndependently) {
  // Each key is fine alone; indices in the verdict index the whole history.
  std::vector<NameOp> history{
      name_op(0, K::register_name, "a", "1", S::ok, "", 1, 2),
      name_op(1, K::register_name, "b", "2", S::ok, "", 3, 4),
      name_op(2, K::lookup, "a", "", S::ok, "1", 5, 6),
      name_op(0, K::unregister, "b", "", S::ok, "", 7, 8),
      name_op(1, K::lookup, "b", "", S::ok, "2", 9, 10),  // stale: b was unregistered
  };
  auto verdict = lin::check_partitioned(NamingModel{}, history);
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(verdict->outcome, lin::Outcome::not_linearizable);
  EXPECT_EQ(verdict->failed.front(), 4u);
  EXPECT_EQ(verdict->prefix, (std::vector<std::size_t>{1, 3}));
  EXPECT_NE(verdict->explanation.find("#4 (client 1) lookup(b) -> ok 2"), std::string::npos)
      << verdict->explanation;
  history.pop_back();
  verdict = lin::check_partitioned(NamingModel{}, history);
  ASSERT_TRUE(verdict.ok());
  EXPECT_TRUE(verdict->ok());
  EXPECT_EQ(verdict->order, (std::vector<std::size_t>{0, 2, 1, 3}));
}

// --- generated histories --------------------------------------------------------------------

/// A history that is linearizable by construction: every operation takes effect at a point
/// strictly inside its [invoked, returned] interval, in the order of those points.
std::vector<NameOp> generated(std::mt19937_64& rng, std::size_t clients, std::size_t ops,
                              std::size_t names) {
  struct Pending {
    std::size_t index;
    std::uint64_t effect_at;
  };
  std::vector<NameOp> history;
  std::map<std::string, std::string> table;
  std::vector<std::optional<std::size_t>> open(clients);  // each client's op in flight
  std::uint64_t stamp = 0;
  std::size_t started = 0;
  std::vector<std::size_t> pending_effect;  // invoked, not yet applied
  std::vector<std::size_t> pending_return;  // applied, not yet returned
  auto client_free = [&](std::size_t c) { return !open[c]; };
  while (started < ops || !pending_effect.empty() || !pending_return.empty()) {
    const int action = static_cast<int>(rng() % 3);
    if (action == 0 && started < ops) {
      const std::size_t c = rng() % clients;
      if (!client_free(c)) continue;
      NamingModel::Input in;
      in.kind = static_cast<K>(rng() % 3);
      in.name = std::string(1, static_cast<char>('a' + rng() % names));
      in.value = std::to_string(rng() % 5);
      history.push_back(NameOp{static_cast<std::uint32_t>(c), in, std::nullopt, ++stamp, 0});
      open[c] = history.size() - 1;
      pending_effect.push_back(history.size() - 1);
      ++started;
    } else if (action == 1 && !pending_effect.empty()) {
      const std::size_t pick = rng() % pending_effect.size();
      const std::size_t i = pending_effect[pick];
      pending_effect.erase(pending_effect.begin() + static_cast<std::ptrdiff_t>(pick));
      ++stamp;  // the linearization point lies strictly inside the interval
      NamingModel::State state;
      if (auto it = table.find(history[i].input.name); it != table.end()) state = it->second;
      auto [after, out] = NamingModel{}.step(state, history[i].input);
      if (after) {
        table[history[i].input.name] = *after;
      } else {
        table.erase(history[i].input.name);
      }
      history[i].output = out;
      pending_return.push_back(i);
    } else if (action == 2 && !pending_return.empty()) {
      const std::size_t pick = rng() % pending_return.size();
      const std::size_t i = pending_return[pick];
      pending_return.erase(pending_return.begin() + static_cast<std::ptrdiff_t>(pick));
      history[i].returned = ++stamp;
      open[history[i].client].reset();
    }
  }
  return history;
}

TEST(Linearizability, GeneratedLinearizableHistoriesAreAccepted) {
  std::mt19937_64 rng(7);
  for (std::size_t round = 0; round < mk::test::scaled(50); ++round) {
    auto history = generated(rng, 8, 400, 3);
    auto verdict = lin::check_partitioned(NamingModel{}, history);
    ASSERT_TRUE(verdict.ok()) << verdict.error().describe();
    ASSERT_TRUE(verdict->ok()) << "round " << round << ": " << verdict->explanation;
    EXPECT_EQ(verdict->order.size(), history.size());
  }
}

TEST(Linearizability, GeneratedHistoriesWithOneLookupAlteredAreRejected) {
  std::mt19937_64 rng(11);
  std::size_t altered = 0;
  for (std::size_t round = 0; round < mk::test::scaled(50); ++round) {
    auto history = generated(rng, 8, 400, 3);
    std::vector<std::size_t> lookups;
    for (std::size_t i = 0; i < history.size(); ++i) {
      if (history[i].input.kind == K::lookup) lookups.push_back(i);
    }
    ASSERT_FALSE(lookups.empty());
    // A value no register ever wrote: no order can explain it.
    const std::size_t victim = lookups[rng() % lookups.size()];
    history[victim].output = NamingModel::Output{S::ok, "never-written"};
    ++altered;
    auto verdict = lin::check_partitioned(NamingModel{}, history);
    ASSERT_TRUE(verdict.ok()) << verdict.error().describe();
    EXPECT_EQ(verdict->outcome, lin::Outcome::not_linearizable) << "round " << round;
    EXPECT_TRUE(contains(verdict->failed, victim)) << verdict->explanation;
  }
  EXPECT_GT(altered, 0u);
}

/// Brute force: is there a permutation respecting real-time order whose outputs all match?
bool brute_force(const std::vector<RegOp>& history) {
  std::vector<std::size_t> order(history.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  do {
    bool fits = true;
    for (std::size_t a = 0; a < order.size() && fits; ++a) {
      for (std::size_t b = a + 1; b < order.size() && fits; ++b) {
        // order[b] may not have ended before order[a] began.
        if (history[order[b]].returned < history[order[a]].invoked) fits = false;
      }
    }
    int state = 0;
    for (std::size_t a = 0; a < order.size() && fits; ++a) {
      auto [after, out] = RegisterModel{}.step(state, history[order[a]].input);
      if (out != *history[order[a]].output) fits = false;
      state = after;
    }
    if (fits) return true;
  } while (std::next_permutation(order.begin(), order.end()));
  return false;
}

TEST(Linearizability, AgreesWithBruteForceOnSmallRandomHistories) {
  std::mt19937_64 rng(3);
  std::size_t accepted = 0, rejected = 0;
  for (std::size_t round = 0; round < mk::test::scaled(2000); ++round) {
    const std::size_t n = 1 + rng() % 6;
    std::vector<RegOp> history;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t a = rng() % 12, b = rng() % 12;
      const bool write = rng() % 2 == 0;
      const int value = static_cast<int>(rng() % 3);
      history.push_back(reg(static_cast<std::uint32_t>(i),
                            write ? RegisterModel::write(value) : RegisterModel::read(),
                            write ? 0 : value, std::min(a, b), std::max(a, b)));
    }
    auto verdict = lin::check(RegisterModel{}, history);
    ASSERT_TRUE(verdict.ok());
    const bool expected = brute_force(history);
    ASSERT_EQ(verdict->ok(), expected) << "round " << round << ": " << verdict->explanation;
    (expected ? accepted : rejected)++;
    if (verdict->ok()) {
      // The order it gives is itself a valid linearization.
      int state = 0;
      for (std::size_t a = 0; a < verdict->order.size(); ++a) {
        for (std::size_t b = a + 1; b < verdict->order.size(); ++b) {
          ASSERT_GE(history[verdict->order[b]].returned, history[verdict->order[a]].invoked);
        }
      }
      for (std::size_t i : verdict->order) {
        auto [after, out] = RegisterModel{}.step(state, history[i].input);
        ASSERT_EQ(out, *history[i].output);
        state = after;
      }
    }
  }
  EXPECT_GT(accepted, 0u);
  EXPECT_GT(rejected, 0u);
}

}  // namespace
