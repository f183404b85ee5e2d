// An idle kernel sleeps once its poll budget is spent, and a message wakes it; with both wait
// backends, and kernels as threads and as processes.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "messages.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

class IdleTest : public ::testing::TestWithParam<std::tuple<mk::WaitBackend, mk::Isolation>> {};

TEST_P(IdleTest, SleepingKernelWakesAndHandlesAMessage) {
  mk::Config config = mk::test::config_for(2, std::get<1>(GetParam()));
  config.wait_backend = std::get<0>(GetParam());
  config.setup = [](mk::Kernel& k) -> mk::Result<void> {
    return k.handle<mk_test::Probe>([](const mk_test::Probe&, const mk::MessageContext& c) {
      return mk_test::SleepCount{c.kernel.stats().sleeps};
    });
  };
  auto booted = mk::System::boot(config);
  if (!booted && booted.error().code == mk::Errc::unavailable) {
    GTEST_SKIP() << booted.error().describe();
  }
  ASSERT_TRUE(booted.ok()) << booted.error().describe();
  auto& system = *booted;
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
                         ::testing::Combine(::testing::Values(mk::WaitBackend::io_uring,
                                                              mk::WaitBackend::poll),
                                            mk::test::kBothIsolations),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == mk::WaitBackend::io_uring
                                                  ? "io_uring"
                                                  : "poll") +
                                  "_" + mk::test::isolation_name(std::get<1>(info.param));
                         });

}  // namespace
