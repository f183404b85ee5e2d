// A core comes online: System::add_kernel starts a kernel while members propose, and
// Replicated::join makes it a member of an object made before it existed. No update is lost
// or duplicated, and its replica equals the others. Kernels as threads and as processes.
#include <algorithm>
#include <set>

#include "replica_test_util.h"

namespace mk::test {
namespace {

/// Five kernels on the usable cores, with room for up to four on each core.
Config five_kernels_with_room(Isolation isolation) {
  Config config = config_for(5, isolation);
  config.kernels_per_core = 4;
  return config;
}

/// Asks from `k` for kernel `target`'s join.
Task<Result<void>> ask_join(Kernel& k, Replicated<Ledger> ledger, KernelId target) {
  co_return co_await ledger.join(k, target);
}

/// `k`'s request for its own join, or nothing when `k` already holds a replica of `ledger`.
Task<std::optional<Result<void>>> ask_own_join(Kernel& k, Replicated<Ledger> ledger) {
  if (ledger.local(k, [](const Ledger&) {}).ok()) co_return std::nullopt;
  co_return co_await ledger.join(k, k.id());
}

class Hotplug : public ProtocolsBothIsolations {};

TEST_P(Hotplug, AnAddedKernelJoinsUnderLoadAndMatchesTheOthers) {
  const Protocol protocol = this->protocol();
  auto system = boot(five_kernels_with_room(isolation()));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = protocol;
  options.record_history = true;
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;

  const std::uint64_t per_kernel = std::max<std::size_t>(scaled(300), 60);
  const CoreId core = system->skb().usable_cores().back();
  // While kernels 0 to 4 propose: the core comes online, then kernel 0 asks for the join.
  start_loads(*system, ledger, first_kernels(5), per_kernel, 8, Ledger::kKeys);
  auto added = system->add_kernel(core);
  ASSERT_TRUE(added.ok()) << added.error().describe();
  ASSERT_EQ(*added, 5u);
  auto joined = system->run(
      0,
      [](Kernel& k, Replicated<Ledger> handle, KernelId target) {
        return ask_join(k, std::move(handle), target);
      },
      ledger, *added);
  ASSERT_TRUE(joined.ok()) << joined.error().describe();
  ASSERT_TRUE(joined->ok()) << joined->error().describe();
  auto reports = collect_loads(*system, first_kernels(5));

  // The new member proposes too.
  reports.push_back(run_loads(*system, ledger, {5}, per_kernel / 4, 8, Ledger::kKeys)[5]);

  std::array<std::int64_t, Ledger::kKeys> expected{};
  std::size_t committed = 0;
  for (KernelId id = 0; id < 6; ++id) {
    EXPECT_EQ(reports[id].other, 0u) << "kernel " << id << ": " << reports[id].first_other;
    EXPECT_EQ(reports[id].not_member, 0u) << "kernel " << id;
    committed += reports[id].ok;
    for (std::size_t key = 0; key < Ledger::kKeys; ++key)
      expected[key] += reports[id].committed[key];
  }
  EXPECT_GT(reports[5].ok, 0u);

  auto reference = snapshot(*system, ledger, 0);
  ASSERT_TRUE(reference.ok()) << reference.error().describe();
  std::vector<std::vector<OpId>> histories(6);
  for (KernelId id = 0; id < 6; ++id) {
    auto state = snapshot(*system, ledger, id);
    ASSERT_TRUE(state.ok()) << "kernel " << id << ": " << state.error().describe();
    EXPECT_EQ(state->values, expected) << "kernel " << id;
    EXPECT_EQ(state->count, committed) << "kernel " << id;
    if (protocol == Protocol::ordered) {
      EXPECT_EQ(state->checksum, reference->checksum) << "kernel " << id;
    }
    histories[id] = history_on(*system, ledger, id);
    EXPECT_EQ(members_on(*system, ledger, id), first_kernels(6)) << "kernel " << id;
  }
  const auto& full = histories[0];
  EXPECT_EQ(full.size(), committed);
  EXPECT_EQ(std::set<OpId>(full.begin(), full.end()).size(), full.size());
  // The joiner applied exactly what the others applied after its state was copied.
  const auto& mine = histories[5];
  ASSERT_LE(mine.size(), full.size());
  if (protocol == Protocol::ordered) {
    EXPECT_TRUE(std::equal(mine.begin(), mine.end(), full.end() - mine.size()));
  } else {
    std::multiset<OpId> everything(full.begin(), full.end());
    for (const OpId& op : mine)
      EXPECT_EQ(everything.count(op), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, Hotplug, kAllProtocolsBothIsolations,
                         protocol_isolation_name);

class HotplugErrors : public BothIsolations {};

TEST_P(HotplugErrors, AKernelThatNeverHeardOfTheObjectCannotAskForAChange) {
  auto system = boot(five_kernels_with_room(isolation()));
  ASSERT_NE(system, nullptr);
  auto made = Replicated<Ledger>::create(*system, Ledger{});
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;
  auto added = system->add_kernel(system->skb().usable_cores().front());
  ASSERT_TRUE(added.ok()) << added.error().describe();

  // Kernel 5 came after the object: it is no member and knows nothing of it until a member
  // asks for its join.
  auto asked = system->run(
      *added,
      [](Kernel& k, Replicated<Ledger> handle) { return ask_own_join(k, std::move(handle)); },
      ledger);
  if (isolation() == Isolation::processes) {
    // The handle does not reach a kernel process that has not installed the object.
    ASSERT_FALSE(asked.ok());
    EXPECT_EQ(asked.error().code, Errc::not_found);
    EXPECT_NE(asked.error().message.find("not installed on kernel 5"), std::string::npos)
        << asked.error().message;
  } else {
    ASSERT_TRUE(asked.ok()) << asked.error().describe();
    ASSERT_TRUE(asked->has_value()) << "kernel 5 holds a replica of an object made before it";
    const Result<void>& refused = **asked;
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_NE(refused.error().message.find("not installed on kernel 5"), std::string::npos)
        << refused.error().message;
  }

  auto joined = system->run(
      1,
      [](Kernel& k, Replicated<Ledger> handle, KernelId target) {
        return ask_join(k, std::move(handle), target);
      },
      ledger, *added);
  ASSERT_TRUE(joined.ok());
  EXPECT_TRUE(joined->ok()) << joined->error().describe();
  auto state = snapshot(*system, ledger, *added);
  EXPECT_TRUE(state.ok()) << state.error().describe();
}

TEST_P(HotplugErrors, AKernelThatLeftGoesOfflineAndTheOthersGoOn) {
  auto system = boot(config(4));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = Protocol::ordered;
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;
  const std::uint64_t per_kernel = std::max<std::size_t>(scaled(100), 30);
  auto reports = run_loads(*system, ledger, first_kernels(4), per_kernel, 4, Ledger::kKeys);

  // Going offline: leave every object, then stop the kernel.
  auto left = system->run(
      0, [](Kernel& k, Replicated<Ledger> handle) { return handle.leave(k, 3); }, ledger);
  ASSERT_TRUE(left.ok());
  ASSERT_TRUE(left->ok()) << left->error().describe();
  ASSERT_TRUE(system->remove_kernel(3).ok());

  const auto more = run_loads(*system, ledger, first_kernels(3), per_kernel, 4, Ledger::kKeys);
  reports.insert(reports.end(), more.begin(), more.end());
  std::size_t committed = 0;
  for (const auto& report : reports) {
    EXPECT_EQ(report.other, 0u) << report.first_other;
    committed += report.ok;
  }
  auto reference = snapshot(*system, ledger, 0);
  ASSERT_TRUE(reference.ok()) << reference.error().describe();
  EXPECT_EQ(reference->count, committed);
  for (KernelId id : {1u, 2u}) {
    auto state = snapshot(*system, ledger, id);
    ASSERT_TRUE(state.ok()) << state.error().describe();
    EXPECT_EQ(state->values, reference->values) << "kernel " << id;
    EXPECT_EQ(state->checksum, reference->checksum) << "kernel " << id;
  }

  // Objects made afterwards leave the offline kernel out; naming it is an error.
  auto later = Replicated<Ledger>::create(*system, Ledger{});
  ASSERT_TRUE(later.ok()) << later.error().describe();
  EXPECT_EQ(later->options().kernels, first_kernels(3));
  ReplicaOptions with_offline;
  with_offline.kernels = {0, 3};
  auto refused = Replicated<Ledger>::create(*system, Ledger{}, with_offline);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("kernels[1]: kernel 3 is offline"), std::string::npos)
      << refused.error().message;
  auto rejoin = system->run(
      0,
      [](Kernel& k, Replicated<Ledger> handle, KernelId target) {
        return ask_join(k, std::move(handle), target);
      },
      ledger, KernelId{3});
  ASSERT_TRUE(rejoin.ok());
  ASSERT_FALSE(rejoin->ok());
  EXPECT_NE(rejoin->error().message.find("offline"), std::string::npos) << rejoin->error().message;
}

INSTANTIATE_TEST_SUITE_P(Isolations, HotplugErrors, kBothIsolations, isolation_param_name);

}  // namespace
}  // namespace mk::test
