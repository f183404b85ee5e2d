// User code that throws, under every protocol: an apply, check or keys that throws, or a Codec
// that throws, fails that one proposal with apply_failed and the exception's text; nothing is
// applied, no key stays reserved, the replicas stay equal, and the object goes on. Kernels as
// threads and as processes.
#include <stdexcept>

#include "replica_test_util.h"

namespace mk::test {

/// Eight counters whose code throws on chosen values: apply on 13, check on 7, keys on 9.
struct Fragile {
  struct Op {
    std::uint32_t key = 0;
    std::int32_t value = 0;
  };
  using Result = std::int64_t;
  std::array<std::int64_t, 8> values{};

  Result apply(const Op& op) {
    if (op.value == 13) throw std::runtime_error("unlucky 13");
    return values[op.key % 8] += op.value;
  }
  mk::Result<void> check(const Op& op) const {
    if (op.value == 7) throw std::logic_error("check cannot take 7");
    return {};
  }
  void keys(const Op& op, std::vector<std::uint64_t>& out) const {
    if (op.value == 9) throw std::out_of_range("no keys for 9");
    out.push_back(op.key % 8);
  }
};

/// An operation whose Codec throws: encoding on 99 (at the proposer), decoding on 98 (on every
/// replica).
struct Coded {
  std::int32_t value = 0;
};

/// A sum of Coded operations.
struct Summed {
  using Op = Coded;
  using Result = std::int64_t;
  std::int64_t sum = 0;
  Result apply(const Op& op) { return sum += op.value; }
  void keys(const Op&, std::vector<std::uint64_t>& out) const { out.push_back(0); }
};

}  // namespace mk::test

template <>
struct mk::Codec<mk::test::Coded> {
  static void encode(const mk::test::Coded& op, std::vector<std::byte>& out) {
    if (op.value == 99) throw std::invalid_argument("cannot encode 99");
    Codec<std::int32_t>::encode(op.value, out);
  }
  static mk::Result<mk::test::Coded> decode(std::span<const std::byte> bytes) {
    auto value = Codec<std::int32_t>::decode(bytes);
    if (!value) return std::move(value).error();
    if (*value == 98) throw std::invalid_argument("cannot decode 98");
    return mk::test::Coded{*value};
  }
};

namespace mk::test {
namespace {

class Throwing : public ProtocolsBothIsolations {};

/// Proposes `op` from kernel `on` and returns the outcome.
Result<std::int64_t> propose_on(System& system, const Replicated<Fragile>& r, KernelId on,
                                Fragile::Op op) {
  auto ran = system.run(
      on,
      [](Kernel& k, Replicated<Fragile> handle, Fragile::Op o) -> Task<Result<std::int64_t>> {
        co_return co_await handle.propose(k, o);
      },
      r, op);
  if (!ran) return std::move(ran).error();
  return std::move(*ran);
}

/// Proposes Coded{value} from kernel `on` and returns the outcome. The value crosses as a
/// number: Coded's own Codec throws on some.
Result<std::int64_t> propose_on(System& system, const Replicated<Summed>& r, KernelId on,
                                std::int32_t value) {
  auto ran = system.run(
      on,
      [](Kernel& k, Replicated<Summed> handle, std::int32_t v) -> Task<Result<std::int64_t>> {
        co_return co_await handle.propose(k, Coded{v});
      },
      r, value);
  if (!ran) return std::move(ran).error();
  return std::move(*ran);
}

void expect_apply_failed(const Result<std::int64_t>& outcome, const std::string& where,
                         const std::string& text) {
  ASSERT_FALSE(outcome.ok()) << where;
  EXPECT_EQ(outcome.error().code, Errc::apply_failed) << outcome.error().describe();
  EXPECT_NE(outcome.error().message.find(where + " threw"), std::string::npos)
      << outcome.error().describe();
  EXPECT_NE(outcome.error().message.find(text), std::string::npos) << outcome.error().describe();
}

TEST_P(Throwing, AThrowingOperationFailsAloneAndTheObjectGoesOn) {
  const Protocol protocol = this->protocol();
  auto system = boot(config(4));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = protocol;
  options.record_history = true;
  auto made = Replicated<Fragile>::create(*system, Fragile{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto fragile = *made;

  ASSERT_TRUE(propose_on(*system, fragile, 1, Fragile::Op{3, 5}).ok());
  // From every kernel in turn, so that the proposer, the sequencer and the others all meet
  // the throw.
  for (KernelId on = 0; on < 4; ++on) {
    expect_apply_failed(propose_on(*system, fragile, on, Fragile::Op{3, 13}), "apply",
                        "unlucky 13");
    expect_apply_failed(propose_on(*system, fragile, on, Fragile::Op{3, 7}), "check",
                        "check cannot take 7");
    if (protocol == Protocol::two_phase) {
      expect_apply_failed(propose_on(*system, fragile, on, Fragile::Op{3, 9}), "keys",
                          "no keys for 9");
    }
    // The same key at once: no reservation was left behind, nothing waits.
    auto after = propose_on(*system, fragile, on, Fragile::Op{3, 1});
    ASSERT_TRUE(after.ok()) << after.error().describe();
  }
  const std::int64_t expected = 5 + 4;  // The first update and the four after the throws.
  for (KernelId id = 0; id < 4; ++id) {
    auto replica = snapshot(*system, fragile, id);
    ASSERT_TRUE(replica.ok()) << replica.error().describe();
    EXPECT_EQ(replica->values[3], expected) << "kernel " << id;
  }
  // Every replica applied the same updates: those that threw count nowhere.
  auto histories = system->run(
      0,
      [](Kernel& k, Replicated<Fragile> handle) -> Task<std::uint64_t> {
        co_return handle.applied(k);
      },
      fragile);
  ASSERT_TRUE(histories.ok());
  EXPECT_EQ(*histories, 5u);
}

TEST_P(Throwing, ACodecThatThrowsFailsTheProposal) {
  auto system = boot(config(3));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = protocol();
  auto made = Replicated<Summed>::create(*system, Summed{}, options);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  const auto summed = *made;
  expect_apply_failed(propose_on(*system, summed, 2, std::int32_t{99}), "encoding the operation",
                      "cannot encode 99");
  auto undecodable = propose_on(*system, summed, 2, std::int32_t{98});
  ASSERT_FALSE(undecodable.ok());
  EXPECT_EQ(undecodable.error().code, Errc::apply_failed) << undecodable.error().describe();
  EXPECT_NE(undecodable.error().message.find("cannot decode 98"), std::string::npos)
      << undecodable.error().describe();
  ASSERT_TRUE(propose_on(*system, summed, 1, std::int32_t{4}).ok());
  for (KernelId id = 0; id < 3; ++id) {
    auto replica = snapshot(*system, summed, id);
    ASSERT_TRUE(replica.ok()) << replica.error().describe();
    EXPECT_EQ(replica->sum, 4) << "kernel " << id;
  }
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, Throwing, kAllProtocolsBothIsolations,
                         protocol_isolation_name);

}  // namespace
}  // namespace mk::test
