// State machines and helpers shared by the replica tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "mk/replicated.h"
#include "mk/system.h"
#include "runtime/runtime_test_util.h"
#include "test_scale.h"

namespace mk::test {

/// Sixteen counters. Adds commute (one_phase), touch one key each (two_phase), and an
/// order-sensitive checksum shows whether two replicas applied the same sequence (ordered).
struct Ledger {
  static constexpr std::size_t kKeys = 16;
  struct Op {
    KernelId origin = 0;
    std::uint32_t serial = 0;
    std::uint64_t key = 0;
    std::int64_t add = 0;
  };
  using Result = std::int64_t;

  std::array<std::int64_t, kKeys> values{};
  std::uint64_t count = 0;
  std::uint64_t checksum = 0;

  Result apply(const Op& op) {
    auto& value = values[op.key % kKeys];
    value += op.add;
    ++count;
    checksum = checksum * 1000003u + ((std::uint64_t{op.origin} << 32) | op.serial);
    return value;
  }
  void keys(const Op& op, std::vector<std::uint64_t>& out) const { out.push_back(op.key % kKeys); }
  mk::Result<void> check(const Op& op) const {
    if (values[op.key % kKeys] + op.add < 0) {
      return error(Errc::invalid_argument,
                   "key " + std::to_string(op.key % kKeys) + " would go below zero");
    }
    return {};
  }
  bool same_values(const Ledger& other) const { return values == other.values; }
};

/// A journal of applied ids, with a hand-written Codec: its state grows past one message, so a
/// joining kernel receives it in chunks.
struct Journal {
  struct Op {
    std::uint64_t id = 0;
    std::uint32_t padding = 0;  ///< Extra encoded bytes, to test the size limit.
  };
  using Result = std::size_t;
  std::vector<std::uint64_t> ids;
  Result apply(const Op& op) {
    ids.push_back(op.id);
    return ids.size();
  }
};

}  // namespace mk::test

template <>
struct mk::Codec<mk::test::Journal::Op> {
  static void encode(const mk::test::Journal::Op& op, std::vector<std::byte>& out) {
    Codec<std::uint64_t>::encode(op.id, out);
    out.resize(out.size() + op.padding);
  }
  static mk::Result<mk::test::Journal::Op> decode(std::span<const std::byte> bytes) {
    if (bytes.size() < sizeof(std::uint64_t)) return error(Errc::parse_error, "Journal::Op: short");
    auto id = Codec<std::uint64_t>::decode(bytes.first(sizeof(std::uint64_t)));
    if (!id) return std::move(id).error();
    return mk::test::Journal::Op{*id, static_cast<std::uint32_t>(bytes.size() - sizeof(*id))};
  }
};

template <>
struct mk::Codec<mk::test::Journal> {
  static void encode(const mk::test::Journal& journal, std::vector<std::byte>& out) {
    Codec<std::uint64_t>::encode(journal.ids.size(), out);
    for (std::uint64_t id : journal.ids)
      Codec<std::uint64_t>::encode(id, out);
  }
  static mk::Result<mk::test::Journal> decode(std::span<const std::byte> bytes) {
    auto count = Codec<std::uint64_t>::decode(bytes.first(std::min<std::size_t>(8, bytes.size())));
    if (!count) return std::move(count).error();
    if ((bytes.size() - 8) / 8 != *count || (bytes.size() - 8) % 8 != 0) {
      return error(Errc::parse_error, "Journal: length does not match its count");
    }
    mk::test::Journal journal;
    for (std::uint64_t i = 0; i < *count; ++i)
      journal.ids.push_back(*Codec<std::uint64_t>::decode(bytes.subspan(8 + 8 * i, 8)));
    return journal;
  }
};

namespace mk::test {

/// What one kernel's load produced.
struct LoadReport {
  std::uint64_t ok = 0;
  std::uint64_t conflicts = 0;
  std::uint64_t not_member = 0;
  std::uint64_t aborted = 0;  ///< two_phase: aborted by a view change (a member failed).
  std::uint64_t other = 0;
  std::string first_other;
  std::array<std::int64_t, Ledger::kKeys> committed{};  ///< Sum of successful adds per key.
};

}  // namespace mk::test

/// A LoadReport comes back from a kernel process as a task's value.
template <>
struct mk::Codec<mk::test::LoadReport> {
  static void encode(const mk::test::LoadReport& report, std::vector<std::byte>& out) {
    const std::array<std::uint64_t, 5> counts{report.ok, report.conflicts, report.not_member,
                                              report.aborted, report.other};
    detail::encode_framed(counts, out);
    detail::encode_framed(report.committed, out);
    detail::encode_framed(report.first_other, out);
  }
  static mk::Result<mk::test::LoadReport> decode(std::span<const std::byte> bytes) {
    std::size_t at = 0;
    auto counts = detail::decode_framed<std::array<std::uint64_t, 5>>(bytes, at);
    auto committed =
        detail::decode_framed<std::array<std::int64_t, mk::test::Ledger::kKeys>>(bytes, at);
    auto first_other = detail::decode_framed<std::string>(bytes, at);
    if (!counts || !committed || !first_other || at != bytes.size()) {
      return error(Errc::parse_error, "LoadReport: malformed");
    }
    const auto& c = *counts;
    return mk::test::LoadReport{c[0], c[1], c[2], c[3], c[4], std::move(*first_other), *committed};
  }
};

namespace mk::test {

/// Proposes `count` adds from `k`, keeping `window` in flight, and tallies the outcomes.
inline Task<LoadReport> load(Kernel& k, Replicated<Ledger> r, std::uint64_t count,
                             std::uint64_t window, std::uint64_t key_spread) {
  struct InFlight {
    Ledger::Op op;
    Proposal<std::int64_t> proposal;
  };
  LoadReport report;
  std::deque<InFlight> flying;
  auto settle = [&report](InFlight& f, Result<std::int64_t>& result) {
    if (result) {
      ++report.ok;
      report.committed[f.op.key % Ledger::kKeys] += f.op.add;
    } else if (result.error().code == Errc::conflict) {
      ++report.conflicts;
    } else if (result.error().code == Errc::closed) {
      ++report.aborted;
    } else if (result.error().code == Errc::invalid_argument &&
               result.error().message.find("not a member") != std::string::npos) {
      ++report.not_member;
    } else {
      if (report.other++ == 0) report.first_other = result.error().describe();
    }
  };
  for (std::uint64_t i = 0; i < count; ++i) {
    Ledger::Op op{k.id(), static_cast<std::uint32_t>(i), (k.id() * 7 + i) % key_spread,
                  static_cast<std::int64_t>(1 + i % 5)};
    flying.push_back(InFlight{op, r.propose(k, op)});
    while (flying.size() >= window) {
      auto result = co_await flying.front().proposal;
      settle(flying.front(), result);
      flying.pop_front();
    }
  }
  while (!flying.empty()) {
    auto result = co_await flying.front().proposal;
    settle(flying.front(), result);
    flying.pop_front();
  }
  co_return report;
}

/// Runs `f(kernel, args...)` (captureless, returning a Task) on each of `kernels` at once, each
/// from a host thread of its own, and returns what System::run returned for each, in order.
/// Works in both isolations: what a test checks comes back as the tasks' values.
template <class F, class... Args>
auto run_on_each(System& system, const std::vector<KernelId>& kernels, F f, const Args&... args) {
  using Outcome = decltype(system.run(KernelId{0}, f, args...));
  std::vector<std::optional<Outcome>> outcomes(kernels.size());
  std::vector<std::thread> runners;
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    runners.emplace_back([&, i] { outcomes[i].emplace(system.run(kernels[i], f, args...)); });
  }
  for (auto& runner : runners)
    runner.join();
  std::vector<Outcome> results;
  for (auto& outcome : outcomes)
    results.push_back(std::move(*outcome));
  return results;
}

/// load(count, window, key_spread) on each of `kernels` at once; the reports by kernel id (a
/// kernel whose run failed reports that as `other`).
inline std::vector<LoadReport> run_loads(System& system, const Replicated<Ledger>& r,
                                         const std::vector<KernelId>& kernels, std::uint64_t count,
                                         std::uint64_t window, std::uint64_t key_spread) {
  auto outcomes = run_on_each(
      system, kernels,
      [](Kernel& k, Replicated<Ledger> handle, std::uint64_t n, std::uint64_t w,
         std::uint64_t spread) { return load(k, std::move(handle), n, w, spread); },
      r, count, window, key_spread);
  std::vector<LoadReport> reports(*std::max_element(kernels.begin(), kernels.end()) + 1);
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    if (outcomes[i]) {
      reports[kernels[i]] = std::move(*outcomes[i]);
    } else {
      reports[kernels[i]].other = 1;
      reports[kernels[i]].first_other = "System::run: " + outcomes[i].error().describe();
    }
  }
  return reports;
}

/// Where a load started by start_loads leaves its report, on its kernel.
struct LoadSlot {
  explicit LoadSlot(Kernel&) {}
  std::optional<LoadReport> report;
};

/// Starts load(count, window, key_spread) on each of `kernels` and returns at once, starting
/// no host thread: under Isolation::processes, System::add_kernel needs the program to run a
/// single thread. collect_loads waits for the reports.
inline void start_loads(System& system, const Replicated<Ledger>& r,
                        const std::vector<KernelId>& kernels, std::uint64_t count,
                        std::uint64_t window, std::uint64_t key_spread) {
  for (KernelId id : kernels) {
    auto spawned = system.spawn(
        id,
        [](Kernel& k, Replicated<Ledger> handle, std::uint64_t n, std::uint64_t w,
           std::uint64_t spread) -> Task<void> {
          k.extension<LoadSlot>().report.reset();
          LoadReport report = co_await load(k, std::move(handle), n, w, spread);
          k.extension<LoadSlot>().report = std::move(report);
        },
        r, count, window, key_spread);
    EXPECT_TRUE(spawned.ok()) << spawned.error().describe();
  }
}

/// The reports of the loads start_loads started on `kernels`, by kernel id, once all ended.
inline std::vector<LoadReport> collect_loads(System& system, const std::vector<KernelId>& kernels) {
  std::vector<LoadReport> reports(*std::max_element(kernels.begin(), kernels.end()) + 1);
  for (KernelId id : kernels) {
    auto report = system.run(id, [](Kernel& k) -> Task<LoadReport> {
      auto& slot = k.extension<LoadSlot>();
      while (!slot.report)
        co_await k.sleep_for(std::chrono::milliseconds(1));
      co_return *slot.report;
    });
    if (report) {
      reports[id] = std::move(*report);
    } else {
      reports[id].other = 1;
      reports[id].first_other = "System::run: " + report.error().describe();
    }
  }
  return reports;
}

/// A copy of kernel `id`'s replica after a linearizable read, or the read's error.
template <class SM>
Result<SM> snapshot(System& system, const Replicated<SM>& r, KernelId id) {
  auto got = system.run(
      id,
      [](Kernel& k, Replicated<SM> handle) -> Task<Result<SM>> {
        co_return co_await handle.read(k, [](const SM& state) { return state; });
      },
      r);
  if (!got) return std::move(got).error();
  return std::move(*got);
}

/// The ids kernel `id`'s replica applied, in order (ReplicaOptions::record_history).
template <class SM>
std::vector<OpId> history_on(System& system, const Replicated<SM>& r, KernelId id) {
  auto history = system.run(
      id,
      [](Kernel& k, Replicated<SM> handle) -> Task<std::vector<OpId>> {
        co_return handle.history(k);
      },
      r);
  EXPECT_TRUE(history.ok()) << history.error().describe();
  return history.ok() ? std::move(*history) : std::vector<OpId>{};
}

/// The members of kernel `id`'s view of `r`.
template <class SM>
std::vector<KernelId> members_on(System& system, const Replicated<SM>& r, KernelId id) {
  auto members = system.run(
      id,
      [](Kernel& k, Replicated<SM> handle) -> Task<std::vector<KernelId>> {
        co_return handle.members(k);
      },
      r);
  EXPECT_TRUE(members.ok()) << members.error().describe();
  return members.ok() ? std::move(*members) : std::vector<KernelId>{};
}

/// Kernels 0 to n - 1.
inline std::vector<KernelId> first_kernels(std::size_t n) {
  std::vector<KernelId> ids;
  for (KernelId id = 0; id < n; ++id)
    ids.push_back(id);
  return ids;
}

/// A protocol, and whether kernels are threads or processes.
using ProtocolAndIsolation = std::tuple<Protocol, Isolation>;

/// A test run for each protocol in both isolations.
class ProtocolsBothIsolations : public ::testing::TestWithParam<ProtocolAndIsolation> {
 protected:
  Protocol protocol() const { return std::get<0>(GetParam()); }
  Isolation isolation() const { return std::get<1>(GetParam()); }
  /// config_for(kernels) in this test's isolation.
  Config config(std::size_t kernels) const { return config_for(kernels, isolation()); }
};

/// Every protocol, in both isolations.
inline const auto kAllProtocolsBothIsolations = ::testing::Combine(
    ::testing::Values(Protocol::one_phase, Protocol::two_phase, Protocol::ordered),
    kBothIsolations);

/// Names a test instance "<protocol>_<isolation>".
inline std::string protocol_isolation_name(
    const ::testing::TestParamInfo<ProtocolAndIsolation>& info) {
  std::string text = std::string(to_string(std::get<0>(info.param))) + "_" +
                     isolation_name(std::get<1>(info.param));
  std::replace(text.begin(), text.end(), '-', '_');
  return text;
}

}  // namespace mk::test

namespace mk {

/// Prints a Protocol by name in gtest's messages.
inline void PrintTo(Protocol protocol, std::ostream* out) {
  *out << to_string(protocol);
}

}  // namespace mk
