// A member declared failed (System::declare_failed, or the stall detector): the
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

/// Proposes one add from `k`: empty when it succeeded, else why not.
Task<std::string> propose_one(Kernel& k, Replicated<Ledger> ledger) {
  auto done = co_await ledger.propose(k, Ledger::Op{k.id(), 1000, k.id(), 1});
  co_return done ? std::string() : done.error().describe();
}

/// Proposes one add from each of `kernels` at once and expects each to succeed.
void expect_each_proposes(System& system, const Replicated<Ledger>& ledger,
                          const std::vector<KernelId>& kernels) {
  const auto outcomes = run_on_each(
      system, kernels,
      [](Kernel& k, Replicated<Ledger> handle) { return propose_one(k, std::move(handle)); },
      ledger);
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    ASSERT_TRUE(outcomes[i].ok()) << outcomes[i].error().describe();
    EXPECT_EQ(*outcomes[i], "") << "kernel " << kernels[i];
  }
}

class Failure : public ProtocolsBothIsolations {};

TEST_P(Failure, SurvivorsGoOnWithoutAMemberDeclaredFailed) {
  auto system = boot(config(6));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = protocol();
  options.sequencer = 2;  // The kernel that fails sequences and coordinates membership.
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto ledger = *made;

  // Load on every kernel while kernel 2 is declared failed.
  const std::uint64_t per_kernel = std::max<std::size_t>(scaled(300), 40);
  std::vector<LoadReport> reports;
  std::thread loads([&] {
    reports = run_loads(*system, ledger, first_kernels(6), per_kernel, 4, Ledger::kKeys);
  });
  EXPECT_TRUE(system->declare_failed(2).ok());
  // Kernel 2's own load ends too: as threads its proposals fail with shutting_down as it
  // stops; as a process, its run fails with the process.
  loads.join();

  const std::vector<KernelId> survivors = {0, 1, 3, 4, 5};
  for (KernelId id : survivors) {
    const auto& report = reports[id];
    // Only what a view change aborts (two_phase) or a conflict is an error on a survivor.
    EXPECT_EQ(report.other, 0u) << "kernel " << id << ": " << report.first_other;
    if (protocol() == Protocol::two_phase) {
      EXPECT_EQ(report.ok + report.conflicts + report.aborted, per_kernel) << "kernel " << id;
    } else {
      EXPECT_EQ(report.ok, per_kernel) << "kernel " << id;
      EXPECT_EQ(report.aborted, 0u) << "kernel " << id;
    }
  }
  // New proposals from every survivor succeed on the new view.
  expect_each_proposes(*system, ledger, survivors);
  std::optional<Ledger> reference;
  for (KernelId id : survivors) {
    EXPECT_EQ(members_on(*system, ledger, id), survivors) << "kernel " << id;
    auto replica = snapshot(*system, ledger, id);
    ASSERT_TRUE(replica.ok()) << replica.error().describe();
    if (!reference) {
      reference = *replica;
    } else {
      EXPECT_TRUE(replica->same_values(*reference)) << "kernel " << id;
      if (protocol() == Protocol::ordered) {
        EXPECT_EQ(replica->checksum, reference->checksum);
      }
    }
  }
  // Leaving the failed kernel asks for nothing more, and neither does taking it offline.
  auto left = system->run(
      4, [](Kernel& k, Replicated<Ledger> handle) { return handle.leave(k, 2); }, ledger);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->ok()) << left->error().describe();
  EXPECT_TRUE(system->remove_kernel(2).ok());
}

// Kernels as threads only: the stall detector watches kernel threads (Isolation::processes
// refuses stall_timeout).
TEST(StallFailure, AStuckKernelIsDeclaredFailedAndTheObjectGoesOn) {
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
  expect_each_proposes(*system, ledger, {0, 1, 2});
  EXPECT_EQ(members_on(*system, ledger, 1), (std::vector<KernelId>{0, 1, 2}));
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, Failure, kAllProtocolsBothIsolations,
                         protocol_isolation_name);

}  // namespace
}  // namespace mk::test
