// Bad input at every entry point gives a clear error value, never a crash or a hang.
#include "replica_test_util.h"

namespace mk::test {
namespace {

Error create_error(System& system, ReplicaOptions options) {
  auto made = Replicated<Ledger>::create(system, Ledger{}, std::move(options));
  EXPECT_FALSE(made.ok());
  return made.ok() ? Error{Errc::internal, "created"} : made.error();
}

TEST(ReplicaOptionsValidation, BadFieldsAreNamed) {
  auto system = boot(config_for(4));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.kernels = {0, 9};
  auto failure = create_error(*system, options);
  EXPECT_EQ(failure.code, Errc::invalid_argument);
  EXPECT_NE(failure.message.find("kernels[1]"), std::string::npos) << failure.message;

  options.kernels = {1, 2, 1};
  failure = create_error(*system, options);
  EXPECT_NE(failure.message.find("kernels[2]"), std::string::npos) << failure.message;
  EXPECT_NE(failure.message.find("twice"), std::string::npos) << failure.message;

  options.kernels = {0, 1};
  options.sequencer = 3;
  failure = create_error(*system, options);
  EXPECT_NE(failure.message.find("sequencer"), std::string::npos) << failure.message;

  options.sequencer.reset();
  options.timeout = Duration::zero();
  failure = create_error(*system, options);
  EXPECT_NE(failure.message.find("timeout"), std::string::npos) << failure.message;

  options.timeout = std::chrono::seconds(1);
  options.protocol = static_cast<Protocol>(42);
  failure = create_error(*system, options);
  EXPECT_NE(failure.message.find("protocol"), std::string::npos) << failure.message;

  options.protocol = Protocol::ordered;
  options.route = static_cast<RouteKind>(42);
  failure = create_error(*system, options);
  EXPECT_NE(failure.message.find("route"), std::string::npos) << failure.message;

  // Journal has no keys(), so it cannot use two-phase commit.
  ReplicaOptions two_phase;
  two_phase.protocol = Protocol::two_phase;
  auto journal = Replicated<Journal>::create(*system, Journal{}, two_phase);
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.error().code, Errc::invalid_argument);
  EXPECT_NE(journal.error().message.find("keys"), std::string::npos);
}

TEST(ReplicaBadInput, CreateAsyncFromATaskAndOnASubset) {
  auto system = boot(config_for(4));
  ASSERT_NE(system, nullptr);
  auto members = system->run(2, [](Kernel& k) -> Task<std::vector<KernelId>> {
    ReplicaOptions options;
    options.kernels = {3, 1};
    auto made = co_await Replicated<Ledger>::create_async(k, Ledger{}, options);
    EXPECT_TRUE(made.ok());
    if (!made) co_return std::vector<KernelId>{};
    // Kernel 2 is not a member: no replica, no proposals, but it knows the members.
    EXPECT_EQ(made->local(k).error().code, Errc::invalid_argument);
    auto refused = co_await made->propose(k, Ledger::Op{});
    EXPECT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("not a member"), std::string::npos);
    auto read = co_await made->read(k);
    EXPECT_FALSE(read.ok());
    co_return made->members(k);
  });
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(*members, (std::vector<KernelId>{1, 3}));
}

TEST(ReplicaBadInput, TooLargeOperationFailsAtTheCall) {
  auto system = boot(config_for(2));
  ASSERT_NE(system, nullptr);
  auto made = Replicated<Journal>::create(*system, Journal{});
  ASSERT_TRUE(made.ok());
  const auto journal = *made;
  auto outcome = system->run(0, [journal](Kernel& k) -> Task<bool> {
    const auto limit = Replicated<Journal>::max_op_size();
    auto big = journal.propose(k, Journal::Op{1, static_cast<std::uint32_t>(limit - 8 + 1)});
    EXPECT_TRUE(big.ready());
    auto refused = co_await big;
    EXPECT_FALSE(refused.ok());
    if (!refused.ok()) {
      EXPECT_EQ(refused.error().code, Errc::too_large);
    }
    auto fits = co_await journal.propose(k, Journal::Op{2, static_cast<std::uint32_t>(limit - 8)});
    EXPECT_TRUE(fits.ok()) << fits.error().describe();
    co_return true;
  });
  ASSERT_TRUE(outcome.ok());
  auto state = snapshot(*system, journal, 1);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->ids, (std::vector<std::uint64_t>{2}));
}

TEST(ReplicaBadInput, CheckErrorReachesTheProposerAndNothingIsApplied) {
  for (Protocol protocol : {Protocol::one_phase, Protocol::two_phase, Protocol::ordered}) {
    auto system = boot(config_for(4));
    ASSERT_NE(system, nullptr);
    ReplicaOptions options;
    options.protocol = protocol;
    auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
    ASSERT_TRUE(made.ok());
    const auto ledger = *made;
    auto result = system->run(1, [ledger](Kernel& k) -> Task<Result<std::int64_t>> {
      co_return co_await ledger.propose(k, Ledger::Op{1, 1, 3, -5});
    });
    ASSERT_TRUE(result.ok());
    ASSERT_FALSE(result->ok()) << to_string(protocol);
    EXPECT_EQ(result->error().code, Errc::invalid_argument);
    EXPECT_NE(result->error().message.find("below zero"), std::string::npos);
    for (KernelId id = 0; id < 4; ++id) {
      auto state = snapshot(*system, ledger, id);
      ASSERT_TRUE(state.ok());
      EXPECT_EQ(state->count, 0u) << to_string(protocol) << " kernel " << id;
    }
  }
}

TEST(ReplicaBadInput, ProposalAwaitedTwiceAndHandleOfAnotherSystem) {
  auto first = boot(config_for(2));
  auto second = boot(config_for(2));
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  auto a = Replicated<Ledger>::create(*first, Ledger{});
  auto b = Replicated<Ledger>::create(*second, Ledger{});
  ASSERT_TRUE(a.ok() && b.ok());
  const auto ledger = *a;
  auto twice = first->run(0, [ledger](Kernel& k) -> Task<bool> {
    auto proposal = ledger.propose(k, Ledger::Op{0, 0, 0, 1});
    auto once = co_await proposal;
    auto again = co_await proposal;
    co_return once.ok() && !again.ok() && again.error().code == Errc::invalid_argument;
  });
  ASSERT_TRUE(twice.ok());
  EXPECT_TRUE(*twice);
  // The second System has an object with the same id; the first's handle must not reach it.
  auto foreign = second->run(0, [ledger](Kernel& k) -> Task<Errc> {
    auto result = co_await ledger.propose(k, Ledger::Op{0, 0, 0, 1});
    co_return result.ok() ? Errc::internal : result.error().code;
  });
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(*foreign, Errc::invalid_argument);
}

TEST(ReplicaBadInput, UseFromOutsideTheKernelIsRefused) {
  auto system = boot(config_for(2));
  ASSERT_NE(system, nullptr);
  auto made = Replicated<Ledger>::create(*system, Ledger{});
  ASSERT_TRUE(made.ok());
  // A kernel reference used from the test thread, which does not run it.
  Kernel* kernel = nullptr;
  ASSERT_TRUE(system
                  ->run(0,
                        [&kernel](Kernel& k) -> Task<void> {
                          kernel = &k;
                          co_return;
                        })
                  .ok());
  auto local = made->local(*kernel);
  ASSERT_FALSE(local.ok());
  EXPECT_NE(local.error().message.find("not running it"), std::string::npos);
}

}  // namespace
}  // namespace mk::test
