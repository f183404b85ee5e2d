// System::boot refuses each kind of bad config with an error naming the field; with kernels as
// threads and as processes.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

using namespace std::chrono_literals;

void expect_refused(mk::Config config, mk::Errc code, const std::string& field) {
  auto system = mk::System::boot(std::move(config));
  ASSERT_FALSE(system.ok()) << "booted with a bad " << field;
  EXPECT_EQ(system.error().code, code) << system.error().describe();
  EXPECT_NE(system.error().message.find(field), std::string::npos) << system.error().describe();
}

mk::CoreId first_usable() {
  return mk::Skb::discover()->usable_cores().front();
}

class Config : public mk::test::BothIsolations {
 protected:
  /// An empty config (every usable core) in this test's isolation.
  mk::Config base() const {
    mk::Config config;
    config.isolation = isolation();
    return config;
  }
};

TEST_P(Config, UnknownCoreIsRefused) {
  mk::Config config = base();
  config.cores = {first_usable(), 100000};
  expect_refused(config, mk::Errc::invalid_argument, "cores[1]");
}

TEST_P(Config, DuplicateCoreIsRefusedUnlessSharingIsAllowed) {
  mk::Config config = base();
  config.cores = {first_usable(), first_usable()};
  expect_refused(config, mk::Errc::invalid_argument, "cores[1]");
  config.kernels_per_core = 2;
  auto system = mk::System::boot(config);
  ASSERT_TRUE(system.ok()) << system.error().describe();
  EXPECT_EQ((*system)->size(), 2u);
  EXPECT_EQ((*system)->poll_budget(), 0ns);  // Kernels sharing a core never spin.
}

TEST_P(Config, KernelsPerCoreOutOfRangeIsRefused) {
  mk::Config config = base();
  config.kernels_per_core = 0;
  expect_refused(config, mk::Errc::invalid_argument, "kernels_per_core");
  config.kernels_per_core = 65;
  expect_refused(config, mk::Errc::invalid_argument, "kernels_per_core");
}

TEST_P(Config, LocalChannelKindIsRefused) {
  mk::Config config = base();
  config.channel_kind = mk::ChannelKind::local;
  expect_refused(config, mk::Errc::invalid_argument, "channel_kind");
  config.channel_kind = static_cast<mk::ChannelKind>(42);
  expect_refused(config, mk::Errc::invalid_argument, "channel_kind");
}

TEST_P(Config, PollBudgetOutOfRangeIsRefused) {
  mk::Config config = base();
  config.poll_budget = -1ns;
  expect_refused(config, mk::Errc::invalid_argument, "poll_budget");
  config.poll_budget = 2s;
  expect_refused(config, mk::Errc::invalid_argument, "poll_budget");
}

TEST_P(Config, SpinningWhileSharingCoresIsRefused) {
  mk::Config config = this->config(8);
  config.poll_budget = 10us;
  expect_refused(config, mk::Errc::invalid_argument, "poll_budget");
}

TEST_P(Config, RingSlotsTheTransportRefusesAreRefused) {
  mk::Config config = base();
  config.ring_slots = 100;  // Not a power of two.
  expect_refused(config, mk::Errc::invalid_argument, "ring_slots");
  config.ring_slots = 0;
  expect_refused(config, mk::Errc::invalid_argument, "ring_slots");
}

TEST_P(Config, PollBatchOutOfRangeIsRefused) {
  mk::Config config = base();
  config.poll_batch = 0;
  expect_refused(config, mk::Errc::invalid_argument, "poll_batch");
  config.poll_batch = 1u << 20;
  expect_refused(config, mk::Errc::invalid_argument, "poll_batch");
}

TEST_P(Config, UnknownWaitBackendIsRefused) {
  mk::Config config = base();
  config.wait_backend = static_cast<mk::WaitBackend>(9);
  expect_refused(config, mk::Errc::invalid_argument, "wait_backend");
}

TEST_P(Config, DefaultsBootOneKernelPerUsableCore) {
  auto system = mk::System::boot(base());
  ASSERT_TRUE(system.ok()) << system.error().describe();
  const auto& usable = (*system)->skb().usable_cores();
  EXPECT_EQ((*system)->isolation(), isolation());
  ASSERT_EQ((*system)->size(), usable.size());
  for (mk::KernelId id = 0; id < usable.size(); ++id) {
    EXPECT_EQ(*(*system)->core_of(id), usable[id]);
  }
  EXPECT_FALSE((*system)->core_of(static_cast<mk::KernelId>(usable.size())).ok());
}

// One test: an isolation that is neither.
TEST(ConfigIsolation, UnknownIsolationIsRefused) {
  mk::Config config;
  config.isolation = static_cast<mk::Isolation>(7);
  expect_refused(config, mk::Errc::invalid_argument, "isolation");
}

INSTANTIATE_TEST_SUITE_P(Isolations, Config, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace
