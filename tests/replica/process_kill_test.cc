// Kernels as processes, and one of them killed (SIGKILL) in the middle of a replicated workload,
// for each protocol: the survivors install a view without it, every update they had
// acknowledged is still there afterwards, their replicas agree, and no proposal waits forever.
// Also killed while a kernel joins, and while the System shuts down.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <set>
#include <thread>
#include <vector>

#include "replica_test_util.h"

namespace mk::test {
namespace {

using namespace std::chrono_literals;

/// What one proposer's workload saw: the numbers (OpId::number) of its acknowledged proposals,
/// and how many ended otherwise.
struct Outcome {
  std::vector<std::uint64_t> acknowledged;
  std::uint64_t failed = 0;
};

}  // namespace
}  // namespace mk::test

template <>
struct mk::Codec<mk::test::Outcome> {
  static void encode(const mk::test::Outcome& outcome, std::vector<std::byte>& out) {
    Codec<std::uint64_t>::encode(outcome.failed, out);
    Codec<std::vector<std::uint64_t>>::encode(outcome.acknowledged, out);
  }
  static mk::Result<mk::test::Outcome> decode(std::span<const std::byte> bytes) {
    if (bytes.size() < 8) return error(Errc::parse_error, "Outcome: short");
    auto failed = Codec<std::uint64_t>::decode(bytes.first(8));
    auto acknowledged = Codec<std::vector<std::uint64_t>>::decode(bytes.subspan(8));
    if (!failed || !acknowledged) return error(Errc::parse_error, "Outcome: malformed");
    return mk::test::Outcome{std::move(*acknowledged), *failed};
  }
};

namespace mk::test {
namespace {

constexpr std::size_t kKernels = 4;
constexpr KernelId kVictim = 3;

/// Proposes `count` adds from `k`, `window` in flight; what became of each.
Task<Outcome> propose_many(Kernel& k, Replicated<Ledger> r, std::uint64_t count,
                           std::uint64_t window) {
  struct InFlight {
    std::uint64_t number;
    Proposal<std::int64_t> proposal;
  };
  Outcome outcome;
  std::deque<InFlight> flying;
  for (std::uint64_t i = 0; i < count || !flying.empty();) {
    if (i < count && flying.size() < window) {
      Ledger::Op op{k.id(), static_cast<std::uint32_t>(i), (k.id() * 7 + i) % Ledger::kKeys, 1};
      // A proposal's number is its place among this kernel's proposals on the object, from 1.
      flying.push_back(InFlight{i + 1, r.propose(k, op)});
      ++i;
      continue;
    }
    auto result = co_await flying.front().proposal;
    if (result) {
      outcome.acknowledged.push_back(flying.front().number);
    } else {
      ++outcome.failed;
    }
    flying.pop_front();
  }
  co_return outcome;
}

/// Kernel `k`'s members and applied history once its replica has settled.
struct View {
  std::vector<KernelId> members;
  std::vector<OpId> history;
  std::int64_t total = 0;
};

Task<Result<View>> view_of(Kernel& k, Replicated<Ledger> r) {
  View view;
  auto total = co_await r.read(k, [](const Ledger& state) {
    std::int64_t sum = 0;
    for (std::int64_t value : state.values)
      sum += value;
    return sum;
  });
  if (!total) co_return std::move(total).error();
  view.total = *total;
  view.members = r.members(k);
  view.history = r.history(k);
  co_return view;
}

}  // namespace
}  // namespace mk::test

template <>
struct mk::Codec<mk::test::View> {
  static void encode(const mk::test::View& view, std::vector<std::byte>& out) {
    Codec<std::int64_t>::encode(view.total, out);
    detail::encode_framed(view.members, out);
    detail::encode_framed(view.history, out);
  }
  static mk::Result<mk::test::View> decode(std::span<const std::byte> bytes) {
    if (bytes.size() < 8) return error(Errc::parse_error, "View: short");
    auto total = Codec<std::int64_t>::decode(bytes.first(8));
    std::size_t at = 8;
    auto members = detail::decode_framed<std::vector<mk::KernelId>>(bytes, at);
    auto history = detail::decode_framed<std::vector<mk::OpId>>(bytes, at);
    if (!total || !members || !history) return error(Errc::parse_error, "View: malformed");
    return mk::test::View{std::move(*members), std::move(*history), *total};
  }
};

namespace mk::test {
namespace {

Config process_config(std::size_t kernels) {
  Config config = config_for(kernels);
  config.isolation = Isolation::processes;
  return config;
}

/// The settled view of every survivor: it has installed a view without the victim.
std::vector<View> settled_views(System& system, const Replicated<Ledger>& r) {
  std::vector<View> views;
  for (KernelId id = 0; id < kKernels; ++id) {
    if (id == kVictim) continue;
    // A survivor learns of the death at once, but its view change takes a few messages: read
    // until its members no longer name the victim.
    for (int attempt = 0;; ++attempt) {
      auto view = system.run(
          id, [](Kernel& k, Replicated<Ledger> handle) { return view_of(k, std::move(handle)); },
          r);
      EXPECT_TRUE(view.ok()) << view.error().describe();
      if (!view.ok()) return views;
      EXPECT_TRUE(view->ok()) << view->error().describe();
      if (!view->ok()) return views;
      const View& seen = **view;
      if (std::find(seen.members.begin(), seen.members.end(), kVictim) == seen.members.end()) {
        views.push_back(seen);
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
  }
  return views;
}

class ProcessKill : public ::testing::TestWithParam<Protocol> {};

TEST_P(ProcessKill, SurvivorsKeepEveryAcknowledgedUpdateAndAgree) {
  auto system = boot(process_config(kKernels));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = GetParam();
  options.record_history = true;
  options.timeout = 2s;
  auto r = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(r.ok()) << r.error().describe();

  // Every kernel proposes, the victim too; the victim dies in the middle.
  const std::uint64_t count = scaled(400) + 40;
  std::vector<Result<Outcome>> outcomes(kKernels, error(Errc::internal, "not run"));
  std::vector<std::thread> proposers;
  for (KernelId id = 0; id < kKernels; ++id) {
    proposers.emplace_back([&, id] {
      outcomes[id] = system->run(
          id,
          [](Kernel& k, Replicated<Ledger> handle, std::uint64_t n) {
            return propose_many(k, std::move(handle), n, 8);
          },
          *r, count);
    });
  }
  std::this_thread::sleep_for(5ms);
  auto pid = system->pid_of(kVictim);
  ASSERT_TRUE(pid.ok());
  ASSERT_EQ(::kill(*pid, SIGKILL), 0);
  for (auto& proposer : proposers)
    proposer.join();

  // The victim's own run ends with its death; every survivor's ends, each proposal settled.
  EXPECT_FALSE(outcomes[kVictim].ok());
  ASSERT_TRUE(system->wait_until_failed(kVictim, 10s).ok());
  for (KernelId id = 0; id < kKernels; ++id) {
    if (id == kVictim) continue;
    ASSERT_TRUE(outcomes[id].ok()) << "kernel " << id << ": " << outcomes[id].error().describe();
    EXPECT_EQ(outcomes[id]->acknowledged.size() + outcomes[id]->failed, count) << "kernel " << id;
  }

  const auto views = settled_views(*system, *r);
  ASSERT_EQ(views.size(), kKernels - 1);
  for (const View& view : views) {
    EXPECT_EQ(view.members, (std::vector<KernelId>{0, 1, 2}));
    EXPECT_EQ(view.total, views.front().total);
    EXPECT_EQ(view.history.size(), views.front().history.size());
    if (GetParam() == Protocol::ordered) {
      EXPECT_EQ(view.history, views.front().history);
    }
    // Every update a survivor acknowledged is applied on every survivor.
    const std::set<OpId> applied(view.history.begin(), view.history.end());
    for (KernelId id = 0; id < kKernels; ++id) {
      if (id == kVictim) continue;
      for (std::uint64_t number : outcomes[id]->acknowledged) {
        EXPECT_TRUE(applied.count(OpId{id, number})) << "kernel " << id << " proposal " << number;
      }
    }
  }
  // And the object goes on: a new update on the survivors.
  auto more = system->run(
      0,
      [](Kernel& k, Replicated<Ledger> handle) -> Task<bool> {
        co_return (co_await handle.propose(k, Ledger::Op{k.id(), 9999, 1, 1})).ok();
      },
      *r);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(*more);
  EXPECT_TRUE(system->shutdown().ok());
}

std::string protocol_name(const ::testing::TestParamInfo<Protocol>& info) {
  return std::string(to_string(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, ProcessKill,
                         ::testing::Values(Protocol::one_phase, Protocol::two_phase,
                                           Protocol::ordered),
                         protocol_name);

TEST(ProcessKillDuring, ShutdownEndsCleanly) {
  auto system = boot(process_config(kKernels));
  ASSERT_NE(system, nullptr);
  auto r = Replicated<Ledger>::create(*system, Ledger{}, {});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  std::thread proposer([&] {
    (void)system->run(
        0,
        [](Kernel& k, Replicated<Ledger> handle, std::uint64_t n) {
          return propose_many(k, std::move(handle), n, 8);
        },
        *r, std::uint64_t{100000});
  });
  std::this_thread::sleep_for(5ms);
  auto pid = system->pid_of(kVictim);
  ASSERT_TRUE(pid.ok());
  // Shutdown and the death race; either way, shutdown ends and leaves nothing behind.
  std::thread killer([&] { ::kill(*pid, SIGKILL); });
  EXPECT_TRUE(system->shutdown().ok());
  killer.join();
  proposer.join();
}

TEST(ProcessKillDuring, AJoinEndsAndTheSurvivorsAgree) {
  auto system = boot(process_config(kKernels));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.kernels = {0, 1, 2};
  options.timeout = 2s;
  options.record_history = true;
  auto r = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  // Kernel 3 joins while kernel 2 is killed: the join completes or fails, never hangs, and the
  // members that remain agree on who they are.
  std::thread joiner([&] {
    (void)system->run(
        0,
        [](Kernel& k, Replicated<Ledger> handle) -> Task<bool> {
          co_return (co_await handle.join(k, 3)).ok();
        },
        *r);
  });
  auto pid = system->pid_of(2);
  ASSERT_TRUE(pid.ok());
  ASSERT_EQ(::kill(*pid, SIGKILL), 0);
  joiner.join();
  ASSERT_TRUE(system->wait_until_failed(2, 10s).ok());
  std::vector<std::vector<KernelId>> members;
  for (KernelId id : {0u, 1u}) {
    for (;;) {
      auto seen = system->run(
          id,
          [](Kernel& k, Replicated<Ledger> handle) -> Task<std::vector<KernelId>> {
            co_return handle.members(k);
          },
          *r);
      ASSERT_TRUE(seen.ok()) << seen.error().describe();
      if (std::find(seen->begin(), seen->end(), 2u) == seen->end()) {
        members.push_back(*seen);
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
  }
  EXPECT_EQ(members[0], members[1]);
  EXPECT_TRUE(system->shutdown().ok());
}

}  // namespace
}  // namespace mk::test
