// An idle kernel sleeps once its poll budget is spent, and a message wakes it.
#include <gtest/gtest.h>

#include "messages.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

class IdleTest : public ::testing::TestWithParam<mk::WaitBackend> {};

TEST_P(IdleTest, SleepingKernelWakesAndHandlesAMessage) {
  mk::Config config = mk::test::config_for(2);
  config.wait_backend = GetParam();
  auto booted = mk::System::boot(config);
  if (!booted && booted.error().code == mk::Errc::unavailable) {
    GTEST_SKIP() << booted.error().describe();
  }
  ASSERT_TRUE(booted.ok()) << booted.error().describe();
  auto& system = *booted;
  ASSERT_TRUE(system
                  ->for_each_kernel([](mk::Kernel& k) {
                    auto added = k.handle<mk_test::Probe>(
                        [](const mk_test::Probe&, const mk::MessageContext& c) {
                          return mk_test::SleepCount{c.kernel.stats().sleeps};
                        });
                    EXPECT_TRUE(added.ok());
                  })
                  .ok());
  std::uint64_t handled_at = 0;  // Kernel 1's sleep count when it handled the last Probe.
  for (int round = 0; round < 20; ++round) {
    // Kernel 1 goes idle past its budget and sleeps again after the last message...
    mk::test::wait_until(
        [&] { return system->stats(1)->sleeps > handled_at && system->stats(0)->sleeps > 0; });
    const auto slept = system->stats(1)->sleeps;
    // ...and a message from outside, then one between kernels, still gets handled.
    auto reply = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::Result<mk_test::SleepCount>> {
      co_return co_await k.call(1, mk_test::Probe{0});
    });
    ASSERT_TRUE(reply.ok());
    ASSERT_TRUE(reply->ok()) << reply->error().describe();
    // The handler ran after kernel 1 had slept.
    EXPECT_GE((*reply)->sleeps, slept);
    handled_at = (*reply)->sleeps;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, IdleTest,
                         ::testing::Values(mk::WaitBackend::io_uring, mk::WaitBackend::poll),
                         [](const auto& info) {
                           return info.param == mk::WaitBackend::io_uring ? "io_uring" : "poll";
                         });

}  // namespace
