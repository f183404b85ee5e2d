// Every kernel proposes concurrently, for each protocol and route kind; afterwards every
// replica is identical, and with ordered broadcast every replica applied the same sequence.
// Kernels as threads and as processes.
#include <map>
#include <tuple>

#include "replica_test_util.h"

namespace mk::test {
namespace {

using Param = std::tuple<Protocol, RouteKind, Isolation>;

class Agreement : public ::testing::TestWithParam<Param> {};

TEST_P(Agreement, ConcurrentProposalsLeaveIdenticalReplicas) {
  const auto [protocol, route, isolation] = GetParam();
  auto system = boot(config_for(8, isolation));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = protocol;
  options.route = route;
  options.record_history = true;
  auto r = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  const auto replica = *r;

  const std::uint64_t per_kernel = std::max<std::size_t>(scaled(500), 40);
  // Two-phase commit aborts a transaction that finds its key reserved anywhere, and does not
  // retry: with 16 transactions in flight per kernel on 16 keys, every kernel holds most keys
  // for its own, and a slow run (ASan, processes) can abort every one. Two per kernel leave
  // each transaction an even chance of a free key everywhere.
  const std::uint64_t window = protocol == Protocol::two_phase ? 2 : 16;
  const auto reports =
      run_loads(*system, replica, first_kernels(8), per_kernel, window, Ledger::kKeys);

  std::array<std::int64_t, Ledger::kKeys> expected{};
  std::size_t committed = 0;
  for (const auto& report : reports) {
    EXPECT_EQ(report.other, 0u) << report.first_other;
    EXPECT_EQ(report.not_member, 0u);
    if (protocol != Protocol::two_phase) {
      EXPECT_EQ(report.conflicts, 0u);
    }
    EXPECT_EQ(report.ok + report.conflicts, per_kernel);
    committed += report.ok;
    for (std::size_t key = 0; key < Ledger::kKeys; ++key)
      expected[key] += report.committed[key];
  }
  if (protocol != Protocol::two_phase) {
    EXPECT_EQ(committed, 8 * per_kernel);
  }
  EXPECT_GT(committed, 0u);

  auto first = snapshot(*system, replica, 0);
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(first->values, expected);
  EXPECT_EQ(first->count, committed);
  const std::vector<OpId> first_history = history_on(*system, replica, 0);
  EXPECT_EQ(first_history.size(), committed);
  for (KernelId id = 1; id < 8; ++id) {
    auto other = snapshot(*system, replica, id);
    ASSERT_TRUE(other.ok()) << other.error().describe();
    EXPECT_EQ(other->values, expected) << "kernel " << id;
    EXPECT_EQ(other->count, committed) << "kernel " << id;
    const std::vector<OpId> history = history_on(*system, replica, id);
    ASSERT_EQ(history.size(), committed) << "kernel " << id;
    if (protocol == Protocol::ordered) {
      EXPECT_EQ(other->checksum, first->checksum) << "kernel " << id;
      EXPECT_EQ(history, first_history) << "kernel " << id;
    }
  }
  // Within one proposer, ordered broadcast keeps the order of its proposals.
  if (protocol == Protocol::ordered) {
    std::map<KernelId, std::uint64_t> last;
    for (const OpId& id : first_history) {
      EXPECT_GT(id.number, last[id.origin]);
      last[id.origin] = id.number;
    }
  }
}

std::string name(const ::testing::TestParamInfo<Param>& info) {
  std::string text = std::string(to_string(std::get<0>(info.param))) + "_" +
                     std::string(to_string(std::get<1>(info.param))) + "_" +
                     isolation_name(std::get<2>(info.param));
  std::replace(text.begin(), text.end(), '-', '_');
  return text;
}

INSTANTIATE_TEST_SUITE_P(
    AllProtocolsAndRoutes, Agreement,
    ::testing::Combine(::testing::Values(Protocol::one_phase, Protocol::two_phase,
                                         Protocol::ordered),
                       ::testing::Values(RouteKind::unicast, RouteKind::broadcast,
                                         RouteKind::multicast, RouteKind::numa_multicast),
                       kBothIsolations),
    name);

}  // namespace
}  // namespace mk::test
