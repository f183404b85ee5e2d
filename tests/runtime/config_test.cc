// System::boot refuses each kind of bad config with an error naming the field.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

using namespace std::chrono_literals;

void expect_refused(const mk::Config& config, mk::Errc code, const std::string& field) {
  auto system = mk::System::boot(config);
  ASSERT_FALSE(system.ok()) << "booted with a bad " << field;
  EXPECT_EQ(system.error().code, code) << system.error().describe();
  EXPECT_NE(system.error().message.find(field), std::string::npos) << system.error().describe();
}

mk::CoreId first_usable() {
  return mk::Skb::discover()->usable_cores().front();
}

TEST(Config, UnknownCoreIsRefused) {
  mk::Config config;
  config.cores = {first_usable(), 100000};
  expect_refused(config, mk::Errc::invalid_argument, "cores[1]");
}

TEST(Config, DuplicateCoreIsRefusedUnlessSharingIsAllowed) {
  mk::Config config;
  config.cores = {first_usable(), first_usable()};
  expect_refused(config, mk::Errc::invalid_argument, "cores[1]");
  config.kernels_per_core = 2;
  auto system = mk::System::boot(config);
  ASSERT_TRUE(system.ok()) << system.error().describe();
  EXPECT_EQ((*system)->size(), 2u);
  EXPECT_EQ((*system)->poll_budget(), 0ns);  // Kernels sharing a core never spin.
}

TEST(Config, KernelsPerCoreOutOfRangeIsRefused) {
  mk::Config config;
  config.kernels_per_core = 0;
  expect_refused(config, mk::Errc::invalid_argument, "kernels_per_core");
  config.kernels_per_core = 65;
  expect_refused(config, mk::Errc::invalid_argument, "kernels_per_core");
}

TEST(Config, LocalChannelKindIsRefused) {
  mk::Config config;
  config.channel_kind = mk::ChannelKind::local;
  expect_refused(config, mk::Errc::invalid_argument, "channel_kind");
  config.channel_kind = static_cast<mk::ChannelKind>(42);
  expect_refused(config, mk::Errc::invalid_argument, "channel_kind");
}

TEST(Config, PollBudgetOutOfRangeIsRefused) {
  mk::Config config;
  config.poll_budget = -1ns;
  expect_refused(config, mk::Errc::invalid_argument, "poll_budget");
  config.poll_budget = 2s;
  expect_refused(config, mk::Errc::invalid_argument, "poll_budget");
}

TEST(Config, SpinningWhileSharingCoresIsRefused) {
  mk::Config config = mk::test::config_for(8);
  config.poll_budget = 10us;
  expect_refused(config, mk::Errc::invalid_argument, "poll_budget");
}

TEST(Config, RingSlotsTheTransportRefusesAreRefused) {
  mk::Config config;
  config.ring_slots = 100;  // Not a power of two.
  expect_refused(config, mk::Errc::invalid_argument, "ring_slots");
  config.ring_slots = 0;
  expect_refused(config, mk::Errc::invalid_argument, "ring_slots");
}

TEST(Config, PollBatchOutOfRangeIsRefused) {
  mk::Config config;
  config.poll_batch = 0;
  expect_refused(config, mk::Errc::invalid_argument, "poll_batch");
  config.poll_batch = 1u << 20;
  expect_refused(config, mk::Errc::invalid_argument, "poll_batch");
}

TEST(Config, UnknownWaitBackendIsRefused) {
  mk::Config config;
  config.wait_backend = static_cast<mk::WaitBackend>(9);
  expect_refused(config, mk::Errc::invalid_argument, "wait_backend");
}

TEST(Config, DefaultsBootOneKernelPerUsableCore) {
  auto system = mk::System::boot(mk::Config{});
  ASSERT_TRUE(system.ok()) << system.error().describe();
  const auto& usable = (*system)->skb().usable_cores();
  ASSERT_EQ((*system)->size(), usable.size());
  for (mk::KernelId id = 0; id < usable.size(); ++id) {
    EXPECT_EQ(*(*system)->core_of(id), usable[id]);
  }
  EXPECT_FALSE((*system)->core_of(static_cast<mk::KernelId>(usable.size())).ok());
}

}  // namespace
