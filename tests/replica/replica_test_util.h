// State machines and helpers shared by the replica tests.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
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
  std::size_t ok = 0;
  std::size_t conflicts = 0;
  std::size_t not_member = 0;
  std::size_t aborted = 0;  ///< two_phase: aborted by a view change (a member failed).
  std::size_t other = 0;
  std::string first_other;
  std::array<std::int64_t, Ledger::kKeys> committed{};  ///< Sum of successful adds per key.
};

/// Proposes `count` adds from `k`, keeping `window` in flight, and tallies the outcomes.
inline Task<void> load(Kernel& k, Replicated<Ledger> r, std::size_t count, std::size_t window,
                       std::uint64_t key_spread, LoadReport& report) {
  struct InFlight {
    Ledger::Op op;
    Proposal<std::int64_t> proposal;
  };
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
  for (std::size_t i = 0; i < count; ++i) {
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
}

/// Runs `f(kernel)` (a Task<void>) on each of `kernels` at once and waits for all.
template <class F>
void run_on_all(System& system, const std::vector<KernelId>& kernels, F f) {
  auto done = std::make_shared<std::atomic<std::size_t>>(0);
  for (KernelId id : kernels) {
    auto spawned = system.spawn(id, [f, done](Kernel& k) -> Task<void> {
      co_await f(k);
      done->fetch_add(1);
    });
    ASSERT_TRUE(spawned.ok());
  }
  wait_until([&] { return done->load() == kernels.size(); });
}

/// A copy of kernel `id`'s replica after a linearizable read, or the read's error.
template <class SM>
Result<SM> snapshot(System& system, const Replicated<SM>& r, KernelId id) {
  auto got = system.run(id, [r](Kernel& k) -> Task<Result<SM>> {
    auto state = co_await r.read(k);
    if (!state) co_return std::move(state).error();
    co_return **state;
  });
  if (!got) return std::move(got).error();
  return std::move(*got);
}

/// Kernels 0 to n - 1.
inline std::vector<KernelId> first_kernels(std::size_t n) {
  std::vector<KernelId> ids;
  for (KernelId id = 0; id < n; ++id)
    ids.push_back(id);
  return ids;
}

}  // namespace mk::test
