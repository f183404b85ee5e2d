// A core comes online: System::add_kernel starts a kernel while members propose, and
// Replicated::join makes it a member of an object made before it existed. No update is lost
// or duplicated, and its replica equals the others.
#include <algorithm>
#include <set>
#include <thread>

#include "replica_test_util.h"

namespace mk::test {
namespace {

/// Five kernels on the usable cores, with room for up to four on each core.
Config five_kernels_with_room() {
  Config config = config_for(5);
  config.kernels_per_core = 4;
  return config;
}

class Hotplug : public ::testing::TestWithParam<Protocol> {};

TEST_P(Hotplug, AnAddedKernelJoinsUnderLoadAndMatchesTheOthers) {
  const Protocol protocol = GetParam();
  auto system = boot(five_kernels_with_room());
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = protocol;
  options.record_history = true;
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;

  const std::size_t per_kernel = std::max<std::size_t>(scaled(300), 60);
  std::vector<LoadReport> reports(6);
  const CoreId core = system->skb().usable_cores().back();
  Result<KernelId> added = error(Errc::internal, "not added");
  Result<void> joined = error(Errc::internal, "not joined");
  // While kernels 0 to 4 propose: the core comes online, then kernel 0 asks for the join.
  std::thread online([&] {
    added = system->add_kernel(core);
    if (!added) return;
    auto done = system->run(
        0, [&](Kernel& k) -> Task<Result<void>> { co_return co_await ledger.join(k, *added); });
    if (done) {
      joined = *done;
    } else {
      joined = done.error();
    }
  });
  run_on_all(*system, first_kernels(5), [&](Kernel& k) {
    return load(k, ledger, per_kernel, 8, Ledger::kKeys, reports[k.id()]);
  });
  online.join();
  ASSERT_TRUE(added.ok()) << added.error().describe();
  ASSERT_EQ(*added, 5u);
  ASSERT_TRUE(joined.ok()) << joined.error().describe();

  // The new member proposes too.
  run_on_all(*system, {5}, [&](Kernel& k) {
    return load(k, ledger, per_kernel / 4, 8, Ledger::kKeys, reports[5]);
  });

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
    ASSERT_TRUE(system
                    ->run(id,
                          [&, id](Kernel& k) -> Task<void> {
                            histories[id] = ledger.history(k);
                            EXPECT_EQ(ledger.members(k), first_kernels(6)) << "kernel " << id;
                            co_return;
                          })
                    .ok());
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

INSTANTIATE_TEST_SUITE_P(AllProtocols, Hotplug,
                         ::testing::Values(Protocol::one_phase, Protocol::two_phase,
                                           Protocol::ordered),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(HotplugErrors, AKernelThatNeverHeardOfTheObjectCannotAskForAChange) {
  auto system = boot(five_kernels_with_room());
  ASSERT_NE(system, nullptr);
  auto made = Replicated<Ledger>::create(*system, Ledger{});
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;
  auto added = system->add_kernel(system->skb().usable_cores().front());
  ASSERT_TRUE(added.ok()) << added.error().describe();

  // Kernel 5 came after the object: it is no member and knows nothing of it until a member
  // asks for its join.
  auto asked = system->run(*added, [ledger](Kernel& k) -> Task<Result<void>> {
    EXPECT_FALSE(ledger.local(k).ok());
    co_return co_await ledger.join(k, k.id());
  });
  ASSERT_TRUE(asked.ok());
  ASSERT_FALSE(asked->ok());
  EXPECT_EQ(asked->error().code, Errc::invalid_argument);
  EXPECT_NE(asked->error().message.find("not installed on kernel 5"), std::string::npos)
      << asked->error().message;

  auto joined = system->run(1, [ledger, id = *added](Kernel& k) -> Task<Result<void>> {
    co_return co_await ledger.join(k, id);
  });
  ASSERT_TRUE(joined.ok());
  EXPECT_TRUE(joined->ok()) << joined->error().describe();
  auto state = snapshot(*system, ledger, *added);
  EXPECT_TRUE(state.ok()) << state.error().describe();
}

TEST(HotplugOffline, AKernelThatLeftGoesOfflineAndTheOthersGoOn) {
  auto system = boot(config_for(4));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = Protocol::ordered;
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;
  const std::size_t per_kernel = std::max<std::size_t>(scaled(100), 30);
  std::vector<LoadReport> reports(4);
  run_on_all(*system, first_kernels(4), [&](Kernel& k) {
    return load(k, ledger, per_kernel, 4, Ledger::kKeys, reports[k.id()]);
  });

  // Going offline: leave every object, then stop the kernel.
  auto left = system->run(
      0, [ledger](Kernel& k) -> Task<Result<void>> { co_return co_await ledger.leave(k, 3); });
  ASSERT_TRUE(left.ok());
  ASSERT_TRUE(left->ok()) << left->error().describe();
  ASSERT_TRUE(system->remove_kernel(3).ok());

  run_on_all(*system, first_kernels(3), [&](Kernel& k) {
    return load(k, ledger, per_kernel, 4, Ledger::kKeys, reports[k.id()]);
  });
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
      0, [ledger](Kernel& k) -> Task<Result<void>> { co_return co_await ledger.join(k, 3); });
  ASSERT_TRUE(rejoin.ok());
  ASSERT_FALSE(rejoin->ok());
  EXPECT_NE(rejoin->error().message.find("offline"), std::string::npos) << rejoin->error().message;
}

}  // namespace
}  // namespace mk::test
