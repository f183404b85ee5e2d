// A member declared failed (System::declare_failed, or the stall detector) on threads: the
// survivors install a view without it, under every protocol, and go on; leaving it and taking
// it offline afterwards are immediate successes.
#include <algorithm>
#include <thread>

#include "replica_test_util.h"

namespace mk::test {
namespace {

/// Answered after its handler kept its kernel busy for `millis` of real time: a stuck kernel.
struct Hog {
  static constexpr MessageType kType = 61;
  using Reply = std::uint32_t;
  std::uint32_t millis;
};

class Failure : public ::testing::TestWithParam<Protocol> {};

std::vector<KernelId> members_on(System& system, const Replicated<Ledger>& ledger, KernelId id) {
  auto members = system.run(
      id, [ledger](Kernel& k) -> Task<std::vector<KernelId>> { co_return ledger.members(k); });
  EXPECT_TRUE(members.ok());
  return members.ok() ? *members : std::vector<KernelId>{};
}

TEST_P(Failure, SurvivorsGoOnWithoutAMemberDeclaredFailed) {
  const Protocol protocol = GetParam();
  auto system = boot(config_for(6));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = protocol;
  options.sequencer = 2;  // The kernel that fails sequences and coordinates membership.
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;

  // Load on every kernel while kernel 2 is declared failed.
  const std::size_t per_kernel = std::max<std::size_t>(scaled(300), 40);
  std::vector<LoadReport> reports(6);
  auto done = std::make_shared<std::atomic<std::size_t>>(0);
  for (KernelId id = 0; id < 6; ++id) {
    ASSERT_TRUE(system
                    ->spawn(id,
                            [&, id, done](Kernel& k) -> Task<void> {
                              co_await load(k, ledger, per_kernel, 4, Ledger::kKeys, reports[id]);
                              done->fetch_add(1);
                            })
                    .ok());
  }
  ASSERT_TRUE(system->declare_failed(2).ok());
  // Kernel 2's own task ends too: its proposals fail with shutting_down as it stops.
  wait_until([&] { return done->load() == 6; });

  const std::vector<KernelId> survivors = {0, 1, 3, 4, 5};
  for (KernelId id : survivors) {
    const auto& report = reports[id];
    // Only what a view change aborts (two_phase) or a conflict is an error on a survivor.
    EXPECT_EQ(report.other, 0u) << "kernel " << id << ": " << report.first_other;
    if (protocol == Protocol::two_phase) {
      EXPECT_EQ(report.ok + report.conflicts + report.aborted, per_kernel) << "kernel " << id;
    } else {
      EXPECT_EQ(report.ok, per_kernel) << "kernel " << id;
      EXPECT_EQ(report.aborted, 0u) << "kernel " << id;
    }
  }
  // New proposals from every survivor succeed on the new view.
  run_on_all(*system, survivors, [ledger](Kernel& k) -> Task<void> {
    auto done = co_await ledger.propose(k, Ledger::Op{k.id(), 1000, k.id(), 1});
    EXPECT_TRUE(done.ok()) << done.error().describe();
  });
  std::optional<Ledger> reference;
  for (KernelId id : survivors) {
    EXPECT_EQ(members_on(*system, ledger, id), survivors) << "kernel " << id;
    auto replica = snapshot(*system, ledger, id);
    ASSERT_TRUE(replica.ok()) << replica.error().describe();
    if (!reference) {
      reference = *replica;
    } else {
      EXPECT_TRUE(replica->same_values(*reference)) << "kernel " << id;
      if (protocol == Protocol::ordered) {
        EXPECT_EQ(replica->checksum, reference->checksum);
      }
    }
  }
  // Leaving the failed kernel asks for nothing more, and neither does taking it offline.
  auto left = system->run(4, [ledger](Kernel& k) { return ledger.leave(k, 2); });
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->ok()) << left->error().describe();
  EXPECT_TRUE(system->remove_kernel(2).ok());
}

TEST(Failure, AStuckKernelIsDeclaredFailedAndTheObjectGoesOn) {
  Config config = config_for(4);
  config.stall_timeout = std::chrono::milliseconds(50);
  auto system = boot(config);
  ASSERT_NE(system, nullptr);
  ASSERT_TRUE(system
                  ->for_each_kernel([](Kernel& k) {
                    (void)k.handle<Hog>([](const Hog& hog) {
                      std::this_thread::sleep_for(std::chrono::milliseconds(hog.millis));
                      return hog.millis;
                    });
                  })
                  .ok());
  auto made = Replicated<Ledger>::create(*system, Ledger{});
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;
  // Kernel 3 is stuck in a handler far longer than the stall detector allows.
  ASSERT_TRUE(system
                  ->spawn(0,
                          [](Kernel& k) -> Task<void> {
                            (void)co_await k.call(3, Hog{400}, std::chrono::seconds(5));
                          })
                  .ok());
  ASSERT_TRUE(system->wait_until_failed(3, std::chrono::seconds(30)).ok());
  run_on_all(*system, {0, 1, 2}, [ledger](Kernel& k) -> Task<void> {
    auto done = co_await ledger.propose(k, Ledger::Op{k.id(), 1, k.id(), 1});
    EXPECT_TRUE(done.ok()) << done.error().describe();
  });
  EXPECT_EQ(members_on(*system, ledger, 1), (std::vector<KernelId>{0, 1, 2}));
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, Failure,
                         ::testing::Values(Protocol::one_phase, Protocol::two_phase,
                                           Protocol::ordered),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace mk::test
