// The promises of docs/replica.md that need time, faults or a look inside, checked in the
// simulator: reads (linearizable under two_phase with faults, complete under one_phase, timing
// out, sending nothing and touching no shared count), timeouts (create on a stopped kernel,
// the install step of a join), a stopped reader holding up only its own messages, idleness as
// soon as the work is done, and shutdown with tasks still waiting; Completion::everywhere.
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "mk/replicated.h"
#include "mk/seed_harness.h"
#include "mk/simulation.h"
#include "sim_machines.h"
#include "support/linearizability.h"
#include "test_scale.h"

namespace {

using namespace std::chrono_literals;
using mk::test::current_test;
using mk::test::Ledger;
namespace lin = mk::test::lin;

/// Eight registers; a write sets one.
struct Registers {
  struct Op {
    std::uint32_t key = 0;
    std::int32_t value = 0;
  };
  using Result = std::int32_t;
  std::array<std::int32_t, 8> values{};
  Result apply(const Op& op) { return values[op.key % 8] = op.value; }
  void keys(const Op& op, std::vector<std::uint64_t>& out) const { out.push_back(op.key % 8); }
};

/// One register per key, for the partitioned linearizability check.
struct KeyedRegisters {
  struct Input {
    std::uint32_t key = 0;
    bool write = false;
    std::int32_t value = 0;
  };
  using Output = std::int32_t;  ///< A read's value; 0 for a write.
  using State = std::int32_t;

  State initial() const { return 0; }
  std::pair<State, Output> step(State state, const Input& in) const {
    if (in.write) return {in.value, 0};
    return {state, state};
  }
  std::size_t hash(State state) const { return std::hash<std::int32_t>{}(state); }
  std::uint32_t partition(const Input& in) const { return in.key; }
  std::string describe_key(std::uint32_t key) const { return "key " + std::to_string(key); }
  std::string describe_input(const Input& in) const {
    return in.write ? "write(" + std::to_string(in.value) + ")" : std::string("read()");
  }
  std::string describe_output(Output out) const { return std::to_string(out); }
  std::string describe_state(State state) const { return std::to_string(state); }
};

using RegisterOp = lin::Operation<KeyedRegisters::Input, KeyedRegisters::Output>;

/// A recorded history: stamps from one counter (the simulation runs on one thread). An
/// operation is recorded when it starts, so that a write whose kernel crashed before it
/// returned stays in, with an unknown outcome.
struct History {
  std::uint64_t clock = 0;
  std::vector<RegisterOp> ops;
  std::vector<bool> void_ops;  ///< Aborted writes and failed reads: they took no effect.
  std::optional<mk::Error> unexpected;
};

mk::Task<void> register_client(mk::Kernel& k, mk::Replicated<Registers> registers,
                               std::uint64_t seed, std::shared_ptr<History> history) {
  std::mt19937_64 random(seed * 7919 + k.id());
  for (std::uint32_t n = 0; n < 12; ++n) {
    RegisterOp started;
    started.client = k.id();
    started.input.key = static_cast<std::uint32_t>(random() % 3);  // Few keys: reads meet writes.
    started.input.write = random() % 2 == 0;
    started.input.value = static_cast<std::int32_t>(k.id() * 1000 + n + 1);
    started.invoked = ++history->clock;
    const std::size_t at = history->ops.size();
    history->ops.push_back(started);
    history->void_ops.push_back(false);
    if (started.input.write) {
      auto done =
          co_await registers.propose(k, Registers::Op{started.input.key, started.input.value});
      history->ops[at].returned = ++history->clock;
      if (done) {
        history->ops[at].output = 0;
      } else if (done.error().code == mk::Errc::conflict || done.error().code == mk::Errc::closed ||
                 done.error().code == mk::Errc::timed_out) {
        history->void_ops[at] = true;  // Aborted everywhere: it never took effect.
      } else {
        history->unexpected = done.error();
      }
    } else {
      const auto key = started.input.key;
      auto value =
          co_await registers.read(k, [key](const Registers& state) { return state.values[key]; });
      history->ops[at].returned = ++history->clock;
      if (value) {
        history->ops[at].output = *value;
      } else {
        if (value.error().code != mk::Errc::timed_out) history->unexpected = value.error();
        history->void_ops[at] = true;
      }
    }
  }
}

/// Reads and two-phase writes on eight kernels, one or none of which crashes, with stalls and
/// delays: the history is linearizable. A write whose proposer crashed before it returned may
/// have taken effect or not.
mk::Result<void> register_scenario(mk::Simulation& sim) {
  const std::uint64_t seed = sim.options().seed;
  mk::ReplicaOptions options;
  options.protocol = mk::Protocol::two_phase;
  options.route = mk::test::route_for(seed);
  options.timeout = 200us;
  auto made = mk::Replicated<Registers>::create(sim.system(), Registers{}, options);
  if (!made) return std::move(made).error();
  if (seed % 2 == 0) {
    if (auto crashed =
            sim.crash_mid_turn(static_cast<mk::KernelId>(seed % 8),
                               sim.now() + std::chrono::nanoseconds(seed % 50'000), seed % 3);
        !crashed) {
      return crashed;
    }
  }
  auto history = std::make_shared<History>();
  for (mk::KernelId id = 0; id < 8; ++id) {
    auto spawned = sim.spawn(id, [registers = *made, seed, history](mk::Kernel& k) {
      return register_client(k, registers, seed, history);
    });
    if (!spawned) return spawned;
  }
  if (auto idle = sim.run_until_idle(5ms); !idle) return idle;
  if (history->unexpected) {
    return mk::error(mk::Errc::internal, "unexpected: " + history->unexpected->describe());
  }
  // What remains open is a write whose kernel crashed first: it may have taken effect.
  std::vector<RegisterOp> ops;
  for (std::size_t i = 0; i < history->ops.size(); ++i) {
    if (!history->void_ops[i]) ops.push_back(history->ops[i]);
  }
  auto verdict = lin::check_partitioned(KeyedRegisters{}, ops);
  if (!verdict) return std::move(verdict).error();
  if (!verdict->ok()) return mk::error(mk::Errc::internal, verdict->explanation);
  return {};
}

TEST(Reads, TwoPhaseReadsAreLinearizableUnderFaults) {
  mk::RandomFaultPlan faults;
  faults.end = 200us;
  faults.stalls = 3;
  faults.delays = 3;
  auto report = mk::run_seeds({.seeds = mk::test::scaled(1000), .test_name = current_test()},
                              mk::test::eight_kernels(faults), register_scenario);
  EXPECT_TRUE(report.ok()) << report.describe();
}

/// One-phase: `read` is the local replica, so it is not linearizable (two reads on two
/// kernels may see a concurrent update in either order), but it never misses an update that
/// completed before it began, crashes or not.
mk::Result<void> one_phase_read_scenario(mk::Simulation& sim) {
  const std::uint64_t seed = sim.options().seed;
  mk::ReplicaOptions options;
  options.protocol = mk::Protocol::one_phase;
  options.route = mk::test::route_for(seed);
  options.timeout = 200us;
  auto made = mk::Replicated<Ledger>::create(sim.system(), Ledger{}, options);
  if (!made) return std::move(made).error();
  if (auto crashed = sim.crash(static_cast<mk::KernelId>(seed % 8),
                               sim.now() + std::chrono::nanoseconds(seed % 40'000));
      !crashed) {
    return crashed;
  }
  struct Shared {
    std::array<std::int64_t, 16> completed{};
    std::optional<std::string> stale;
  };
  auto shared = std::make_shared<Shared>();
  for (mk::KernelId id = 0; id < 8; ++id) {
    auto spawned = sim.spawn(id, [ledger = *made, seed, shared](mk::Kernel& k) -> mk::Task<void> {
      std::mt19937_64 random(seed * 31 + k.id());
      for (std::uint32_t n = 1; n <= 20; ++n) {
        const auto account = static_cast<std::uint32_t>(random() % 4);
        if (random() % 2 == 0) {
          auto done = co_await ledger.propose(k, Ledger::Op{k.id(), n, account, 1});
          if (done) ++shared->completed[account];
        } else {
          const std::int64_t before = shared->completed[account];
          auto balance = co_await ledger.read(
              k, [account](const Ledger& state) { return state.balances[account]; });
          if (balance && *balance < before && !shared->stale) {
            shared->stale = "kernel " + std::to_string(k.id()) + " read " +
                            std::to_string(*balance) + " on account " + std::to_string(account) +
                            " after " + std::to_string(before) + " updates had completed";
          }
        }
      }
    });
    if (!spawned) return spawned;
  }
  if (auto idle = sim.run_until_idle(5ms); !idle) return idle;
  if (shared->stale) return mk::error(mk::Errc::internal, *shared->stale);
  return {};
}

TEST(Reads, OnePhaseReadsSeeEveryUpdateCompletedBeforeThemUnderFaults) {
  mk::RandomFaultPlan faults;
  faults.end = 200us;
  faults.stalls = 3;
  faults.delays = 3;
  auto report = mk::run_seeds({.seeds = mk::test::scaled(1000), .test_name = current_test()},
                              mk::test::eight_kernels(faults), one_phase_read_scenario);
  EXPECT_TRUE(report.ok()) << report.describe();
}

mk::SimulationOptions three_kernels() {
  mk::SimulationOptions options = mk::test::eight_kernels({});
  options.kernels = 3;
  return options;
}

/// What the two waiters of one proposal saw.
struct TwoWaiters {
  std::optional<mk::Result<std::uint64_t>> first;
  std::optional<mk::Result<std::uint64_t>> second;
  std::optional<mk::Result<std::uint64_t>> moved_from;
};

TEST(Proposals, AProposalHasOneWaiterAndAMovedFromOneHasNone) {
  auto sim = mk::Simulation::create(three_kernels());
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  auto made = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, {});
  ASSERT_TRUE(made.ok()) << made.error().describe();
  // Kernel 2 stalls, so the proposal stays open while both tasks come to await it.
  ASSERT_TRUE((*sim)->stall(2, (*sim)->now(), 50us).ok());
  auto seen = std::make_shared<TwoWaiters>();
  auto shared = std::make_shared<std::optional<mk::Proposal<std::uint64_t>>>();
  ASSERT_TRUE((*sim)
                  ->spawn(0,
                          [ledger = *made, seen, shared](mk::Kernel& k) -> mk::Task<void> {
                            auto proposal = ledger.propose(k, Ledger::Op{0, 1, 0, 1});
                            shared->emplace(std::move(proposal));
                            // `proposal` was moved from: it has no result to give.
                            seen->moved_from = co_await proposal;
                            seen->first = co_await **shared;
                          })
                  .ok());
  ASSERT_TRUE((*sim)->run_for(5us).ok());
  ASSERT_TRUE((*sim)
                  ->spawn(0,
                          [seen, shared](mk::Kernel&) -> mk::Task<void> {
                            seen->second = co_await **shared;
                          })
                  .ok());
  ASSERT_TRUE((*sim)->run_until_idle(10ms).ok());
  ASSERT_TRUE(seen->moved_from && seen->first && seen->second);
  ASSERT_FALSE(seen->moved_from->ok());
  EXPECT_EQ(seen->moved_from->error().code, mk::Errc::invalid_argument);
  EXPECT_TRUE(seen->first->ok()) << seen->first->error().describe();
  ASSERT_FALSE(seen->second->ok());
  EXPECT_EQ(seen->second->error().code, mk::Errc::invalid_argument);
  EXPECT_NE(seen->second->error().message.find("one waiter"), std::string::npos);
}

// A one_phase proposer tells the others its stable prefix (what they may forget) in the wave
// of its next proposal; a notice of its own goes out only when no wave follows.
TEST(StableNotices, BackToBackProposalsCarryTheStablePrefixAndTheLastIsAnnounced) {
  auto sim = mk::Simulation::create(three_kernels());
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  mk::ReplicaOptions options;
  options.protocol = mk::Protocol::one_phase;
  options.route = mk::RouteKind::unicast;  // One message per member per wave.
  auto made = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  ASSERT_TRUE((*sim)->run_until_idle(10ms).ok());
  auto sent = [&sim] {
    auto stats = (*sim)->system().stats(0);
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? stats->messages_sent : 0;
  };
  const std::uint64_t before = sent();
  constexpr std::uint32_t kProposals = 50;
  auto done = (*sim)->run(0, [ledger = *made](mk::Kernel& k) -> mk::Task<std::uint64_t> {
    std::uint64_t completed = 0;
    for (std::uint32_t n = 1; n <= kProposals; ++n) {
      if ((co_await ledger.propose(k, Ledger::Op{0, n, 0, 1})).ok()) ++completed;
    }
    co_return completed;
  });
  ASSERT_TRUE(done.ok()) << done.error().describe();
  EXPECT_EQ(*done, kProposals);
  ASSERT_TRUE((*sim)->run_until_idle(10ms).ok());
  // Per member: one wave per proposal, then one notice after the last. A notice after every
  // proposal would be 2 x 50 per member.
  EXPECT_EQ(sent() - before, 2 * (kProposals + 1));
}

/// Counts, per kernel, the updates its replica applied (the simulator runs every kernel on one
/// thread, so a plain array will do).
std::array<std::uint64_t, 8>& applies_on() {
  static std::array<std::uint64_t, 8> counts{};
  return counts;
}

struct CountingApplies {
  struct Op {
    std::uint32_t add = 0;
  };
  using Result = std::uint64_t;
  std::uint64_t total = 0;
  Result apply(const Op& op) {
    total += op.add;
    if (mk::Kernel* k = mk::Kernel::current()) ++applies_on()[k->id() % 8];
    return total;
  }
};

/// Over many start times of a delay of kernel 0's messages to kernel 2, proposes one update
/// from kernel 0 (the sequencer) and counts the runs in which kernel 2's replica had not applied
/// it when the proposal completed.
std::size_t completions_before_kernel_2_applied(mk::Completion completion) {
  std::size_t lagging = 0;
  for (int start = 0; start < 40; ++start) {
    applies_on().fill(0);
    auto sim = mk::Simulation::create(three_kernels());
    EXPECT_TRUE(sim.ok()) << sim.error().describe();
    if (!sim) return lagging;
    mk::ReplicaOptions options;
    options.sequencer = 0;
    auto made =
        mk::Replicated<CountingApplies>::create((*sim)->system(), CountingApplies{}, options);
    EXPECT_TRUE(made.ok()) << made.error().describe();
    if (!made) return lagging;
    const mk::Instant from = (*sim)->now() + start * 500ns;
    EXPECT_TRUE((*sim)->delay(0, 2, from, from + 20us, 15us).ok());
    auto seen = std::make_shared<std::optional<std::uint64_t>>();
    EXPECT_TRUE((*sim)
                    ->spawn(0,
                            [object = *made, seen, completion](mk::Kernel& k) -> mk::Task<void> {
                              CountingApplies::Op op{1};
                              auto done = co_await object.propose(k, op, completion);
                              if (done) *seen = applies_on()[2];
                            })
                    .ok());
    EXPECT_TRUE((*sim)->run_until_idle(10ms).ok());
    EXPECT_TRUE(seen->has_value()) << "the proposal failed";
    if (seen->has_value() && **seen == 0) ++lagging;
  }
  return lagging;
}

TEST(Completion, EverywhereCompletesOnlyOnceEveryReplicaApplied) {
  EXPECT_EQ(completions_before_kernel_2_applied(mk::Completion::everywhere), 0u);
  // The same runs with local completion do complete before kernel 2 applies: the delays reach
  // the window that the confirm wave closes.
  EXPECT_GT(completions_before_kernel_2_applied(mk::Completion::local), 0u);
}

TEST(Reads, AReadTimesOutWhenWhatItWaitsForCannotCommit) {
  auto sim = mk::Simulation::create(three_kernels());
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  mk::ReplicaOptions options;
  options.timeout = 100us;
  options.sequencer = 0;
  auto made = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  // Kernel 2 stops answering: an update is stashed on 0 and 1 but cannot commit.
  ASSERT_TRUE((*sim)->stall(2, (*sim)->now(), 10ms).ok());
  ASSERT_TRUE((*sim)
                  ->spawn(0,
                          [ledger = *made](mk::Kernel& k) -> mk::Task<void> {
                            (void)co_await ledger.propose(k, Ledger::Op{0, 1, 0, 1});
                          })
                  .ok());
  ASSERT_TRUE((*sim)->run_for(20us).ok());
  auto read = (*sim)->run(1, [ledger = *made](mk::Kernel& k) -> mk::Task<mk::Result<std::int64_t>> {
    co_return co_await ledger.read(k, [](const Ledger& state) { return state.balances[0]; });
  });
  ASSERT_TRUE(read.ok()) << read.error().describe();
  ASSERT_FALSE(read->ok()) << "read returned " << **read;
  EXPECT_EQ(read->error().code, mk::Errc::timed_out) << read->error().describe();
}

TEST(Reads, AReadSendsNoMessageAndTouchesNoSharedCount) {
  auto sim = mk::Simulation::create(three_kernels());
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  mk::ReplicaOptions options;
  options.timeout = 1ms;
  options.sequencer = 0;
  // The engine's handle, whose reference count a read must leave alone (copying it on every
  // read made its cache line bounce between kernels).
  auto object =
      (*sim)->run(1, [options](mk::Kernel& k) -> mk::Task<mk::Result<mk::detail::ObjectRef>> {
        mk::detail::ObjectSpec spec;
        spec.options = options;
        spec.machine_type = mk::detail::kMachineTypeId<Ledger>;
        (void)mk::detail::TypedMachine<Ledger>(Ledger{}).snapshot(spec.state);
        co_return co_await mk::detail::create_object(k, std::move(spec));
      });
  ASSERT_TRUE(object.ok() && object->ok());
  const mk::detail::ObjectRef ref = **object;
  const long count = ref.use_count();
  const auto sent = (*sim)->system().stats(1)->messages_sent;
  auto reads = (*sim)->run(1, [ref = ref.get()](mk::Kernel& k) -> mk::Task<int> {
    int ok = 0;
    for (int i = 0; i < 100; ++i) {
      const auto nothing = [](const Ledger&) {};
      auto read = co_await mk::Replicated<Ledger>::ReadAwaiter<decltype(nothing)>(k, *ref, nothing);
      if (read) ++ok;
    }
    co_return ok;
  });
  ASSERT_TRUE(reads.ok());
  EXPECT_EQ(*reads, 100);
  EXPECT_EQ((*sim)->system().stats(1)->messages_sent, sent);
  EXPECT_EQ(ref.use_count(), count);

  // A read that has to wait: an update is stashed on kernel 1 but cannot commit while kernel 2
  // stalls. Waiting holds no count either.
  ASSERT_TRUE((*sim)->stall(2, (*sim)->now(), 200us).ok());
  ASSERT_TRUE((*sim)
                  ->spawn(0,
                          [ref = ref.get()](mk::Kernel& k) -> mk::Task<void> {
                            std::vector<std::byte> op;
                            mk::Codec<Ledger::Op>::encode(Ledger::Op{0, 1, 0, 1}, op);
                            auto state =
                                std::make_shared<mk::detail::ProposalState<std::uint64_t>>(k);
                            mk::detail::propose(k, *ref, std::move(op), state);
                            (void)co_await mk::Proposal<std::uint64_t>(state);
                          })
                  .ok());
  ASSERT_TRUE((*sim)->run_for(20us).ok());
  auto waited = std::make_shared<std::optional<std::int64_t>>();
  ASSERT_TRUE(
      (*sim)
          ->spawn(1,
                  [ref = ref.get(), waited](mk::Kernel& k) -> mk::Task<void> {
                    const auto first = [](const Ledger& state) { return state.balances[0]; };
                    auto balance = co_await mk::Replicated<Ledger>::ReadAwaiter<decltype(first)>(
                        k, *ref, first);
                    if (balance) *waited = *balance;
                  })
          .ok());
  ASSERT_TRUE((*sim)->run_for(20us).ok());
  EXPECT_FALSE(waited->has_value());  // Still waiting for the commit.
  EXPECT_EQ(ref.use_count(), count);
  ASSERT_TRUE((*sim)->run_until_idle(1ms).ok());
  EXPECT_EQ(*waited, std::optional<std::int64_t>(1));
}

TEST(Timeouts, CreateWithAKernelThatStoppedWithoutBeingRemoved) {
  auto sim = mk::Simulation::create(three_kernels());
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  ASSERT_TRUE((*sim)->stall(2, (*sim)->now(), 50ms).ok());
  mk::ReplicaOptions options;
  options.timeout = 100us;
  auto made = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, options);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().code, mk::Errc::timed_out) << made.error().describe();
  EXPECT_NE(made.error().message.find("not every kernel installed it in time"), std::string::npos)
      << made.error().describe();
}

TEST(Timeouts, TheInstallStepOfAJoin) {
  mk::SimulationOptions machine = three_kernels();
  auto sim = mk::Simulation::create(machine);
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  mk::ReplicaOptions options;
  options.timeout = 100us;
  auto made = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  // A kernel added after the object, which runs no turn for a long while: the object cannot be
  // installed there in time.
  auto added = (*sim)->system().add_kernel(3);
  ASSERT_TRUE(added.ok()) << added.error().describe();
  ASSERT_TRUE((*sim)->stall(*added, (*sim)->now(), 50ms).ok());
  auto joined = (*sim)->run(
      0, [ledger = *made, joiner = *added](mk::Kernel& k) { return ledger.join(k, joiner); });
  ASSERT_TRUE(joined.ok()) << joined.error().describe();
  ASSERT_FALSE(joined->ok());
  EXPECT_EQ(joined->error().code, mk::Errc::timed_out) << joined->error().describe();
  EXPECT_NE(joined->error().message.find("could not be installed on the joining kernel"),
            std::string::npos)
      << joined->error().describe();
}

TEST(Isolation, AKernelThatStoppedReadingHoldsUpOnlyItsOwnMessages) {
  mk::SimulationOptions machine = mk::test::eight_kernels({});
  machine.kernels = 3;
  machine.ring_slots = 64;  // The fewest the transport takes: kernel 2's ring fills fast.
  auto sim = mk::Simulation::create(machine);
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  mk::ReplicaOptions near;
  near.protocol = mk::Protocol::one_phase;
  near.kernels = {0, 1};
  near.timeout = 100ms;
  mk::ReplicaOptions far = near;
  far.kernels = {0, 2};
  auto a = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, near);
  auto b = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, far);
  ASSERT_TRUE(a.ok() && b.ok());
  const mk::Instant stall_end = (*sim)->now() + 50ms;
  ASSERT_TRUE((*sim)->stall(2, (*sim)->now(), 50ms).ok());
  // Kernel 0 floods object b, whose other member reads nothing: its ring to kernel 2 fills.
  auto flooded = std::make_shared<std::size_t>(0);
  ASSERT_TRUE((*sim)
                  ->spawn(0,
                          [ledger = *b, flooded](mk::Kernel& k) -> mk::Task<void> {
                            std::vector<mk::Proposal<std::uint64_t>> flying;
                            for (std::uint32_t n = 1; n <= 300; ++n)
                              flying.push_back(ledger.propose(k, Ledger::Op{0, n, 0, 1}));
                            for (auto& proposal : flying) {
                              if (co_await proposal) ++*flooded;
                            }
                          })
                  .ok());
  ASSERT_TRUE((*sim)->run_for(100us).ok());
  // Meanwhile updates between kernels 0 and 1 complete, one after another.
  auto near_done = (*sim)->run(0, [ledger = *a](mk::Kernel& k) -> mk::Task<std::size_t> {
    std::size_t done = 0;
    for (std::uint32_t n = 1; n <= 50; ++n) {
      if (co_await ledger.propose(k, Ledger::Op{0, n, 1, 1})) ++done;
    }
    co_return done;
  });
  ASSERT_TRUE(near_done.ok()) << near_done.error().describe();
  EXPECT_EQ(*near_done, 50u);
  EXPECT_LT((*sim)->now(), stall_end);
  EXPECT_EQ(*flooded, 0u);  // Not one of b's updates could complete yet.
  ASSERT_TRUE((*sim)->run_until_idle(1s).ok());
  EXPECT_EQ(*flooded, 300u);
}

class Idle : public ::testing::TestWithParam<mk::Protocol> {};

TEST_P(Idle, TheSimulationIsIdleAsSoonAsTheWorkIsDone) {
  auto sim = mk::Simulation::create(mk::test::eight_kernels({}));
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  mk::ReplicaOptions options;
  options.protocol = GetParam();  // The default timeout: 5 s.
  auto made = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  EXPECT_TRUE((*sim)->run_until_idle(1ms).ok());
  for (mk::KernelId id = 0; id < 8; ++id) {
    ASSERT_TRUE((*sim)
                    ->spawn(id,
                            [ledger = *made](mk::Kernel& k) -> mk::Task<void> {
                              for (std::uint32_t n = 1; n <= 5; ++n)
                                (void)co_await ledger.propose(k, Ledger::Op{k.id(), n, k.id(), 1});
                              (void)co_await ledger.read(k, [](const Ledger&) {});
                            })
                    .ok());
  }
  // No deadline of a finished proposal, read or creation keeps a kernel's timer armed.
  auto idle = (*sim)->run_until_idle(1ms);
  EXPECT_TRUE(idle.ok()) << idle.error().describe();
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, Idle,
                         ::testing::Values(mk::Protocol::one_phase, mk::Protocol::two_phase,
                                           mk::Protocol::ordered),
                         [](const auto& info) { return std::string(mk::to_string(info.param)); });

TEST(Shutdown, TasksWaitingOnTheLayerGetShuttingDown) {
  auto sim = mk::Simulation::create(three_kernels());
  ASSERT_TRUE(sim.ok()) << sim.error().describe();
  mk::ReplicaOptions options;
  options.timeout = 1s;
  options.sequencer = 0;
  auto made = mk::Replicated<Ledger>::create((*sim)->system(), Ledger{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  // Kernel 2 answers nothing for an hour: a proposal, a read and a join all wait.
  ASSERT_TRUE((*sim)->stall(2, (*sim)->now(), std::chrono::hours(1)).ok());
  struct Outcomes {
    std::optional<mk::Errc> proposal;
    std::optional<mk::Errc> read;
    std::optional<mk::Errc> leave;
  };
  auto outcomes = std::make_shared<Outcomes>();
  ASSERT_TRUE((*sim)
                  ->spawn(0,
                          [ledger = *made, outcomes](mk::Kernel& k) -> mk::Task<void> {
                            auto done = co_await ledger.propose(k, Ledger::Op{0, 1, 0, 1});
                            outcomes->proposal = done ? mk::Errc::internal : done.error().code;
                          })
                  .ok());
  ASSERT_TRUE((*sim)->run_for(20us).ok());
  ASSERT_TRUE((*sim)
                  ->spawn(1,
                          [ledger = *made, outcomes](mk::Kernel& k) -> mk::Task<void> {
                            auto read = co_await ledger.read(k, [](const Ledger&) {});
                            outcomes->read = read ? mk::Errc::internal : read.error().code;
                          })
                  .ok());
  ASSERT_TRUE((*sim)
                  ->spawn(1,
                          [ledger = *made, outcomes](mk::Kernel& k) -> mk::Task<void> {
                            auto left = co_await ledger.leave(k, 1);
                            outcomes->leave = left ? mk::Errc::internal : left.error().code;
                          })
                  .ok());
  ASSERT_TRUE((*sim)->run_for(20us).ok());
  EXPECT_FALSE(outcomes->proposal || outcomes->read || outcomes->leave);
  ASSERT_TRUE((*sim)->shutdown().ok());
  EXPECT_EQ(outcomes->proposal, mk::Errc::shutting_down);
  EXPECT_EQ(outcomes->read, mk::Errc::shutting_down);
  EXPECT_EQ(outcomes->leave, mk::Errc::shutting_down);
}

}  // namespace
