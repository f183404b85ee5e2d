// Join and leave under load: no update lost, duplicated or applied out of order, and a
// joiner's replica equals the others. Kernels as threads and as processes.
#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "replica_test_util.h"

namespace mk::test {
namespace {

/// Kernel 6 joins, kernel 7 joins and kernel 2 leaves, each requested from `k`; how each
/// ended ("ok" or its error).
Task<std::vector<std::string>> change_members(Kernel& k, Replicated<Ledger> ledger) {
  const std::vector<std::pair<bool, KernelId>> plan = {{true, 6}, {true, 7}, {false, 2}};
  std::vector<std::string> changes;
  for (auto [join, target] : plan) {
    // Not `join ? co_await ... : co_await ...`: GCC 12 miscompiles co_await inside ?:.
    Result<void> done;
    if (join) {
      done = co_await ledger.join(k, target);
    } else {
      done = co_await ledger.leave(k, target);
    }
    changes.push_back(done ? "ok" : done.error().describe());
  }
  co_return changes;
}

/// Adds the reports of `more` to `reports`, by kernel.
void merge_reports(std::vector<LoadReport>& reports, const std::vector<LoadReport>& more) {
  if (reports.size() < more.size()) reports.resize(more.size());
  for (std::size_t id = 0; id < more.size(); ++id) {
    LoadReport& mine = reports[id];
    mine.ok += more[id].ok;
    mine.conflicts += more[id].conflicts;
    mine.not_member += more[id].not_member;
    mine.aborted += more[id].aborted;
    if (mine.other == 0) mine.first_other = more[id].first_other;
    mine.other += more[id].other;
    for (std::size_t key = 0; key < Ledger::kKeys; ++key)
      mine.committed[key] += more[id].committed[key];
  }
}

class Membership : public ProtocolsBothIsolations {};

TEST_P(Membership, JoinAndLeaveUnderLoad) {
  const Protocol protocol = this->protocol();
  auto system = boot(config(8));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = protocol;
  options.kernels = {0, 1, 2, 3, 4, 5};
  options.record_history = true;
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;

  // Kernel 7, not yet a member, runs the changes while the members propose.
  const std::uint64_t per_kernel = std::max<std::size_t>(scaled(400), 60);
  std::vector<LoadReport> reports;
  std::thread members([&] {
    reports = run_loads(*system, ledger, first_kernels(6), per_kernel, 8, Ledger::kKeys);
  });
  auto changes = system->run(
      7, [](Kernel& k, Replicated<Ledger> handle) { return change_members(k, std::move(handle)); },
      ledger);
  members.join();
  ASSERT_TRUE(changes.ok()) << changes.error().describe();
  ASSERT_EQ(*changes, (std::vector<std::string>{"ok", "ok", "ok"}));

  // The joiners take part too, now that they are members.
  merge_reports(reports, run_loads(*system, ledger, {6, 7}, per_kernel / 4, 8, Ledger::kKeys));

  std::array<std::int64_t, Ledger::kKeys> expected{};
  std::size_t committed = 0;
  for (KernelId id = 0; id < 8; ++id) {
    const auto& report = reports[id];
    EXPECT_EQ(report.other, 0u) << "kernel " << id << ": " << report.first_other;
    // Only the leaver sees "not a member", for what it proposed after leaving.
    if (id != 2) {
      EXPECT_EQ(report.not_member, 0u) << "kernel " << id;
    }
    committed += report.ok;
    for (std::size_t key = 0; key < Ledger::kKeys; ++key)
      expected[key] += report.committed[key];
  }

  const std::vector<KernelId> now = {0, 1, 3, 4, 5, 6, 7};
  auto reference = snapshot(*system, ledger, 0);
  ASSERT_TRUE(reference.ok()) << reference.error().describe();
  EXPECT_EQ(reference->values, expected);
  EXPECT_EQ(reference->count, committed);
  std::map<KernelId, std::vector<OpId>> histories;
  for (KernelId id : now) {
    auto state = snapshot(*system, ledger, id);
    ASSERT_TRUE(state.ok()) << "kernel " << id << ": " << state.error().describe();
    EXPECT_EQ(state->values, expected) << "kernel " << id;
    EXPECT_EQ(state->count, committed) << "kernel " << id;
    if (protocol == Protocol::ordered) {
      EXPECT_EQ(state->checksum, reference->checksum);
    }
    histories[id] = history_on(*system, ledger, id);
    EXPECT_EQ(members_on(*system, ledger, id), now) << "kernel " << id;
  }

  // No update duplicated; each proposer's updates in its order (ordered); the joiners applied
  // exactly what the others applied after their join.
  const auto& full = histories[0];
  EXPECT_EQ(full.size(), committed);
  EXPECT_EQ(std::set<OpId>(full.begin(), full.end()).size(), full.size());
  for (KernelId id : {1u, 3u, 4u, 5u}) {
    if (protocol == Protocol::ordered) {
      EXPECT_EQ(histories[id], full) << "kernel " << id;
    } else {
      EXPECT_EQ(std::multiset<OpId>(histories[id].begin(), histories[id].end()),
                std::multiset<OpId>(full.begin(), full.end()))
          << "kernel " << id;
    }
  }
  for (KernelId joiner : {6u, 7u}) {
    const auto& mine = histories[joiner];
    ASSERT_LE(mine.size(), full.size());
    if (protocol == Protocol::ordered) {
      EXPECT_TRUE(std::equal(mine.begin(), mine.end(), full.end() - mine.size()))
          << "kernel " << joiner << " applied something other than the others' suffix";
    }
  }

  // The leaver keeps no replica and refuses proposals.
  auto has_replica = system->run(
      2,
      [](Kernel& k, Replicated<Ledger> handle) -> Task<bool> {
        co_return handle.local(k, [](const Ledger&) {}).ok();
      },
      ledger);
  ASSERT_TRUE(has_replica.ok());
  EXPECT_FALSE(*has_replica);
  auto left = system->run(
      2,
      [](Kernel& k, Replicated<Ledger> handle) -> Task<Result<std::int64_t>> {
        co_return co_await handle.propose(k, Ledger::Op{2, 0, 0, 1});
      },
      ledger);
  ASSERT_TRUE(left.ok());
  ASSERT_FALSE(left->ok());
  EXPECT_EQ(left->error().code, Errc::invalid_argument);
  EXPECT_NE(left->error().message.find("not a member"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, Membership, kAllProtocolsBothIsolations,
                         protocol_isolation_name);

class MembershipState : public BothIsolations {};

TEST_P(MembershipState, JoinerReceivesStateLargerThanOneMessage) {
  auto system = boot(config(4));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.kernels = {0, 1};
  auto made = Replicated<Journal>::create(*system, Journal{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto journal = *made;
  const std::uint64_t count = 1000;  // 8 KB of state: several chunks.
  auto filled = system->run(
      1,
      [](Kernel& k, Replicated<Journal> handle, std::uint64_t n) -> Task<bool> {
        for (std::uint64_t i = 0; i < n; ++i) {
          auto result = co_await handle.propose(k, Journal::Op{i, 0});
          if (!result) co_return false;
        }
        co_return true;
      },
      journal, count);
  ASSERT_TRUE(filled.ok() && *filled);
  auto joined = system->run(
      3, [](Kernel& k, Replicated<Journal> handle) { return handle.join(k, 2); }, journal);
  ASSERT_TRUE(joined.ok());
  ASSERT_TRUE(joined->ok()) << joined->error().describe();
  auto source = snapshot(*system, journal, 0);
  auto copy = snapshot(*system, journal, 2);
  ASSERT_TRUE(source.ok() && copy.ok());
  EXPECT_EQ(copy->ids.size(), count);
  EXPECT_EQ(copy->ids, source->ids);
}

TEST_P(MembershipState, SequencerLeavesAndTheNextContinuesTheOrder) {
  auto system = boot(config(8));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.sequencer = 3;
  options.record_history = true;
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;
  const std::uint64_t per_kernel = std::max<std::size_t>(scaled(300), 40);
  std::vector<LoadReport> reports;
  std::thread loads([&] {
    reports = run_loads(*system, ledger, {0, 1, 2, 4, 5, 6, 7}, per_kernel, 8, Ledger::kKeys);
  });
  auto left = system->run(
      3, [](Kernel& k, Replicated<Ledger> handle) { return handle.leave(k, 3); }, ledger);
  loads.join();
  ASSERT_TRUE(left.ok()) << left.error().describe();
  ASSERT_TRUE(left->ok()) << left->error().describe();
  // Once more after the change, so that the new sequencer surely numbers some.
  merge_reports(reports, run_loads(*system, ledger, {0, 5}, 20, 4, Ledger::kKeys));
  std::size_t committed = 0;
  for (const auto& report : reports) {
    EXPECT_EQ(report.other, 0u) << report.first_other;
    committed += report.ok;
  }
  EXPECT_EQ(committed, 7 * per_kernel + 40);
  auto reference = snapshot(*system, ledger, 0);
  ASSERT_TRUE(reference.ok());
  EXPECT_EQ(reference->count, committed);
  for (KernelId id : {1u, 2u, 4u, 5u, 6u, 7u}) {
    auto state = snapshot(*system, ledger, id);
    ASSERT_TRUE(state.ok()) << state.error().describe();
    EXPECT_EQ(state->checksum, reference->checksum) << "kernel " << id;
    EXPECT_EQ(state->count, committed) << "kernel " << id;
  }
}

TEST_P(MembershipState, BadChangesAreRefused) {
  auto system = boot(config(4));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.kernels = {0, 1};
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok());
  const auto ledger = *made;
  auto outcomes = system->run(
      3,
      [](Kernel& k, Replicated<Ledger> handle) -> Task<std::vector<Result<void>>> {
        std::vector<Result<void>> out;
        out.push_back(co_await handle.join(k, 1));   // already a member
        out.push_back(co_await handle.leave(k, 2));  // not a member
        out.push_back(co_await handle.join(k, 99));  // no such kernel
        out.push_back(co_await handle.leave(k, 0));  // fine
        out.push_back(co_await handle.leave(k, 1));  // the last member
        co_return out;
      },
      ledger);
  ASSERT_TRUE(outcomes.ok());
  const auto& out = *outcomes;
  ASSERT_EQ(out.size(), 5u);
  ASSERT_FALSE(out[0].ok());
  EXPECT_EQ(out[0].error().code, Errc::invalid_argument);
  EXPECT_NE(out[0].error().message.find("already a member"), std::string::npos);
  ASSERT_FALSE(out[1].ok());
  EXPECT_NE(out[1].error().message.find("not a member"), std::string::npos);
  ASSERT_FALSE(out[2].ok());
  EXPECT_NE(out[2].error().message.find("99"), std::string::npos);
  EXPECT_TRUE(out[3].ok()) << out[3].error().describe();
  ASSERT_FALSE(out[4].ok());
  EXPECT_NE(out[4].error().message.find("last member"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Isolations, MembershipState, kBothIsolations, isolation_param_name);

}  // namespace
}  // namespace mk::test
