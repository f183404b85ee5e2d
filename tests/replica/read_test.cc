// Reads: a read that begins after an update completed (anywhere) sees it, without a message.
// Kernels as threads and as processes.
#include "replica_test_util.h"

namespace mk::test {

struct ReadKey {
  static constexpr MessageType kType = 60;
  using Reply = std::int64_t;
  std::uint64_t key;
};

namespace {

/// The ledger a kernel's ReadKey handler reads: handlers capture nothing, so that they exist
/// in kernel processes too.
struct LedgerSlot {
  explicit LedgerSlot(Kernel&) {}
  std::optional<Replicated<Ledger>> ledger;
};

/// Adds 1 to `k`'s own key `rounds` times and, once each add completed, asks the next kernel to
/// read it. How many of those reads missed an add completed before they began, or failed.
Task<std::uint64_t> add_then_ask(Kernel& k, Replicated<Ledger> ledger, std::uint64_t rounds,
                                 std::uint64_t kernels) {
  const KernelId reader = static_cast<KernelId>((k.id() + 1) % kernels);
  std::uint64_t stale = 0;
  for (std::uint64_t i = 1; i <= rounds; ++i) {
    auto done = co_await ledger.propose(k, Ledger::Op{k.id(), 0, k.id(), 1});
    if (!done) {
      ++stale;
      continue;
    }
    auto seen = co_await k.call(reader, ReadKey{k.id()});
    if (!seen || *seen < static_cast<std::int64_t>(i)) ++stale;
  }
  co_return stale;
}

class Reads : public ProtocolsBothIsolations {};

TEST_P(Reads, ReadAfterCompletionSeesTheUpdate) {
  auto system = boot(config(8));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = protocol();
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok());
  const auto ledger = *made;
  for (KernelId id = 0; id < 8; ++id) {
    ASSERT_TRUE(system
                    ->run(
                        id,
                        [](Kernel& k, Replicated<Ledger> handle) -> Task<void> {
                          k.extension<LedgerSlot>().ledger = handle;
                          (void)k.handle<ReadKey>(
                              [](const ReadKey& request,
                                 const MessageContext& context) -> Task<std::int64_t> {
                                Kernel& self = context.kernel;
                                const auto key = request.key;
                                auto value = co_await self.extension<LedgerSlot>().ledger->read(
                                    self, [key](const Ledger& state) { return state.values[key]; });
                                co_return value ? *value : -1;
                              });
                          co_return;
                        },
                        ledger)
                    .ok());
  }

  const std::uint64_t rounds = std::max<std::size_t>(scaled(200), 20);
  const auto stale = run_on_each(
      *system, first_kernels(8),
      [](Kernel& k, Replicated<Ledger> handle, std::uint64_t n) {
        return add_then_ask(k, std::move(handle), n, 8);
      },
      ledger, rounds);
  for (KernelId id = 0; id < 8; ++id) {
    ASSERT_TRUE(stale[id].ok()) << stale[id].error().describe();
    EXPECT_EQ(*stale[id], 0u) << "kernel " << id;
  }
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, Reads, kAllProtocolsBothIsolations, protocol_isolation_name);

}  // namespace
}  // namespace mk::test
