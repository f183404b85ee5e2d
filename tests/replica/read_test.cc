// Reads: a read that begins after an update completed (anywhere) sees it, without a message.
#include "replica_test_util.h"

namespace mk::test {

struct ReadKey {
  static constexpr MessageType kType = 60;
  using Reply = std::int64_t;
  std::uint64_t key;
};

namespace {

class Reads : public ::testing::TestWithParam<Protocol> {};

TEST_P(Reads, ReadAfterCompletionSeesTheUpdate) {
  auto system = boot(config_for(8));
  ASSERT_NE(system, nullptr);
  ReplicaOptions options;
  options.protocol = GetParam();
  auto made = Replicated<Ledger>::create(*system, Ledger{}, options);
  ASSERT_TRUE(made.ok());
  const auto ledger = *made;
  ASSERT_TRUE(system
                  ->for_each_kernel([ledger](Kernel& k) {
                    (void)k.handle<ReadKey>(
                        [ledger](const ReadKey& request,
                                 const MessageContext& context) -> Task<std::int64_t> {
                          auto state = co_await ledger.read(context.kernel);
                          co_return state ? (*state)->values[request.key] : -1;
                        });
                  })
                  .ok());

  // Each kernel adds 1 to its own key and, once that completed, asks the next kernel to read
  // it: the reader must see every increment completed before its read began.
  std::size_t rounds = std::max<std::size_t>(scaled(200), 20);
  std::vector<std::size_t> stale(8, 0);
  run_on_all(*system, first_kernels(8), [ledger, rounds, &stale](Kernel& k) -> Task<void> {
    const KernelId reader = (k.id() + 1) % 8;
    for (std::size_t i = 1; i <= rounds; ++i) {
      auto done = co_await ledger.propose(k, Ledger::Op{k.id(), 0, k.id(), 1});
      if (!done) {
        ++stale[k.id()];
        continue;
      }
      auto seen = co_await k.call(reader, ReadKey{k.id()});
      if (!seen || *seen < static_cast<std::int64_t>(i)) ++stale[k.id()];
    }
  });
  for (KernelId id = 0; id < 8; ++id)
    EXPECT_EQ(stale[id], 0u) << "kernel " << id;
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, Reads,
                         ::testing::Values(Protocol::one_phase, Protocol::two_phase,
                                           Protocol::ordered),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace mk::test
