// Bad input at every entry point gives a clear error value, never a crash or a hang.
#include "replica_test_util.h"

namespace mk::test {
namespace {

Error create_error(System& system, ReplicaOptions options) {
  auto made = Replicated<Ledger>::create(system, Ledger{}, std::move(options));
  EXPECT_FALSE(made.ok());
  return made.ok() ? Error{Errc::internal, "created"} : made.error();
}

class ReplicaOptionsValidation : public BothIsolations {};

TEST_P(ReplicaOptionsValidation, BadFieldsAreNamed) {
  auto system = boot(config(4));
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

INSTANTIATE_TEST_SUITE_P(Isolations, ReplicaOptionsValidation, kBothIsolations,
                         isolation_param_name);

/// What a kernel saw that it should not have: a task's expectations, checked where it ran
/// (a kernel process has no gtest of its own) and returned to the test.
using Problems = std::vector<std::string>;

/// Adds `what` to `problems` unless `holds`.
void expect_that(bool holds, Problems& problems, std::string what) {
  if (!holds) problems.push_back(std::move(what));
}

/// Kernel `k` (not a member) creates an object on kernels 3 and 1 and uses it.
Task<Problems> create_on_a_subset(Kernel& k) {
  Problems problems;
  ReplicaOptions options;
  options.kernels = {3, 1};
  auto made = co_await Replicated<Ledger>::create_async(k, Ledger{}, options);
  if (!made) {
    problems.push_back("create_async: " + made.error().describe());
    co_return problems;
  }
  // Kernel 2 is not a member: no replica, no proposals, but it knows the members.
  auto local = made->local(k, [](const Ledger&) {});
  expect_that(!local.ok() && local.error().code == Errc::invalid_argument, problems,
              "local on a kernel that is no member");
  auto refused = co_await made->propose(k, Ledger::Op{});
  expect_that(!refused.ok() && refused.error().message.find("not a member") != std::string::npos,
              problems, "propose from a kernel that is no member");
  auto read = co_await made->read(k, [](const Ledger&) {});
  expect_that(!read.ok(), problems, "read on a kernel that is no member");
  expect_that(made->members(k) == std::vector<KernelId>{1, 3}, problems, "members are 1 and 3");
  co_return problems;
}

/// From `k`: an operation one byte over the limit, refused at once, then one that fits.
Task<Problems> propose_too_large(Kernel& k, Replicated<Journal> journal) {
  Problems problems;
  const auto limit = Replicated<Journal>::max_op_size();
  auto big = journal.propose(k, Journal::Op{1, static_cast<std::uint32_t>(limit - 8 + 1)});
  expect_that(big.ready(), problems, "too large: refused before any message");
  auto refused = co_await big;
  expect_that(!refused.ok() && refused.error().code == Errc::too_large, problems,
              "too large: too_large");
  auto fits = co_await journal.propose(k, Journal::Op{2, static_cast<std::uint32_t>(limit - 8)});
  expect_that(fits.ok(), problems, "at the limit: " + (fits ? "" : fits.error().describe()));
  co_return problems;
}

class ReplicaBadInput : public BothIsolations {};

TEST_P(ReplicaBadInput, CreateAsyncFromATaskAndOnASubset) {
  auto system = boot(config(4));
  ASSERT_NE(system, nullptr);
  auto problems = system->run(2, [](Kernel& k) { return create_on_a_subset(k); });
  ASSERT_TRUE(problems.ok()) << problems.error().describe();
  EXPECT_EQ(*problems, Problems{});
}

TEST_P(ReplicaBadInput, TooLargeOperationFailsAtTheCall) {
  auto system = boot(config(2));
  ASSERT_NE(system, nullptr);
  auto made = Replicated<Journal>::create(*system, Journal{});
  ASSERT_TRUE(made.ok());
  const auto journal = *made;
  auto problems = system->run(
      0,
      [](Kernel& k, Replicated<Journal> handle) { return propose_too_large(k, std::move(handle)); },
      journal);
  ASSERT_TRUE(problems.ok()) << problems.error().describe();
  EXPECT_EQ(*problems, Problems{});
  auto state = snapshot(*system, journal, 1);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->ids, (std::vector<std::uint64_t>{2}));
}

TEST_P(ReplicaBadInput, CheckErrorReachesTheProposerAndNothingIsApplied) {
  for (Protocol protocol : {Protocol::one_phase, Protocol::two_phase, Protocol::ordered}) {
    auto system = boot(config(4));
    ASSERT_NE(system, nullptr);
    ReplicaOptions options;
    options.protocol = protocol;
    auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
    ASSERT_TRUE(made.ok());
    const auto ledger = *made;
    auto result = system->run(
        1,
        [](Kernel& k, Replicated<Ledger> handle) -> Task<Result<std::int64_t>> {
          co_return co_await handle.propose(k, Ledger::Op{1, 1, 3, -5});
        },
        ledger);
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

TEST_P(ReplicaBadInput, ProposalAwaitedTwiceAndHandleOfAnotherSystem) {
  auto first = boot(config(2));
  auto second = boot(config(2));
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  auto a = Replicated<Ledger>::create(*first, Ledger{});
  auto b = Replicated<Ledger>::create(*second, Ledger{});
  ASSERT_TRUE(a.ok() && b.ok());
  const auto ledger = *a;
  auto twice = first->run(
      0,
      [](Kernel& k, Replicated<Ledger> handle) -> Task<bool> {
        auto proposal = handle.propose(k, Ledger::Op{0, 0, 0, 1});
        auto once = co_await proposal;
        auto again = co_await proposal;
        co_return once.ok() && !again.ok() && again.error().code == Errc::invalid_argument;
      },
      ledger);
  ASSERT_TRUE(twice.ok());
  EXPECT_TRUE(*twice);
  // The second System has an object with the same id; the first's handle must not reach it.
  auto foreign = second->run(
      0,
      [](Kernel& k, Replicated<Ledger> handle) -> Task<Errc> {
        auto result = co_await handle.propose(k, Ledger::Op{0, 0, 0, 1});
        co_return result.ok() ? Errc::internal : result.error().code;
      },
      ledger);
  if (isolation() == Isolation::processes) {
    // Decoding the handle in the other System's kernel process refuses it.
    ASSERT_FALSE(foreign.ok());
    EXPECT_EQ(foreign.error().code, Errc::invalid_argument);
    EXPECT_NE(foreign.error().message.find("another System"), std::string::npos)
        << foreign.error().message;
  } else {
    ASSERT_TRUE(foreign.ok()) << foreign.error().describe();
    EXPECT_EQ(*foreign, Errc::invalid_argument);
  }
}

INSTANTIATE_TEST_SUITE_P(Isolations, ReplicaBadInput, kBothIsolations, isolation_param_name);

// Kernels as threads only: as a process, a kernel's address means nothing to the test.
TEST(ReplicaMisuse, UseFromOutsideTheKernelIsRefused) {
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
  auto local = made->local(*kernel, [](const Ledger&) {});
  ASSERT_FALSE(local.ok());
  EXPECT_NE(local.error().message.find("not running it"), std::string::npos);
}

}  // namespace
}  // namespace mk::test
