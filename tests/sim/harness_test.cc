// The seed harness: a failing seed is reported with its error, trace hash and replay command;
// the environment chooses the seeds.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "mk/seed_harness.h"
#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

/// Sets (or clears, for nullopt) the harness's environment variables for one scope, restoring
/// what was there, so that these tests work when the binary itself runs under MK_SIM_SEED.
class SeedEnvironment {
 public:
  SeedEnvironment(std::optional<std::string> seed, std::optional<std::string> seeds)
      : saved_seed_(get("MK_SIM_SEED")), saved_seeds_(get("MK_SIM_SEEDS")) {
    put("MK_SIM_SEED", seed);
    put("MK_SIM_SEEDS", seeds);
  }
  ~SeedEnvironment() {
    put("MK_SIM_SEED", saved_seed_);
    put("MK_SIM_SEEDS", saved_seeds_);
  }
  SeedEnvironment(const SeedEnvironment&) = delete;
  SeedEnvironment& operator=(const SeedEnvironment&) = delete;

 private:
  static std::optional<std::string> get(const char* name) {
    const char* value = std::getenv(name);
    return value ? std::optional<std::string>(value) : std::nullopt;
  }
  static void put(const char* name, const std::optional<std::string>& value) {
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  std::optional<std::string> saved_seed_;
  std::optional<std::string> saved_seeds_;
};

/// The arguments this test binary was started with, without its name.
std::vector<std::string> own_arguments() {
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> arguments;
  std::string argument;
  while (std::getline(cmdline, argument, '\0'))
    arguments.push_back(argument);
  if (!arguments.empty()) arguments.erase(arguments.begin());
  return arguments;
}

/// Fails on seed 7 only: kernel 1's answer is checked against the wrong value then.
mk::Result<void> fails_on_seven(mk::Simulation& sim) {
  handle_bump_everywhere(sim);
  auto reply = sim.run(0, [](mk::Kernel& k) -> mk::Task<std::uint64_t> {
    auto bumped = co_await k.call(1, Bump{10});
    co_return bumped.ok() ? bumped->value : 0;
  });
  if (!reply.ok()) return reply.error();
  const std::uint64_t expected = sim.options().seed == 7 ? 12 : 11;
  if (*reply != expected) {
    return mk::error(mk::Errc::internal, "invariant: reply " + std::to_string(*reply) +
                                             " != " + std::to_string(expected));
  }
  return {};
}

TEST(SeedHarness, ReportsTheFirstFailingSeedWithItsReplay) {
  SeedEnvironment clean(std::nullopt, std::nullopt);
  mk::SeedOptions options;
  options.seeds = 20;
  options.test_name = current_test_name();
  options.print_failure = false;
  auto report = mk::run_seeds(options, small_machine(2), fails_on_seven);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.seeds_run, 7u);  // Stops at the first failure.
  ASSERT_TRUE(report.failure->seed.has_value());
  EXPECT_EQ(*report.failure->seed, 7u);
  EXPECT_EQ(report.failure->error.code, mk::Errc::internal);
  ASSERT_TRUE(report.failure->trace_hash.has_value());
  const std::string& line = report.failure->replay;
  EXPECT_EQ(line.rfind("MK_SIM_SEED=7 /", 0), 0u) << line;
  EXPECT_NE(line.find("sim_tests "), std::string::npos) << line;
  // The program's own arguments, with the filter naming this test alone, last.
  const std::string filter = " --gtest_filter=" + current_test_name();
  EXPECT_EQ(line.substr(line.size() - filter.size()), filter) << line;
  EXPECT_EQ(line.find("--gtest_filter="), line.size() - filter.size() + 1) << line;
  for (const std::string& argument : own_arguments()) {
    if (argument.rfind("--gtest_filter=", 0) == 0) continue;
    EXPECT_NE(line.find(" " + argument), std::string::npos) << argument << " in " << line;
  }
  const std::string text = report.describe();
  EXPECT_NE(text.find("seed 7 failed"), std::string::npos) << text;
  EXPECT_NE(text.find("trace hash"), std::string::npos) << text;

  // The replay: the same seed alone, failing the same way with the same trace.
  SeedEnvironment replay("7", std::nullopt);
  auto again = mk::run_seeds(options, small_machine(2), fails_on_seven);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.seeds_run, 1u);
  EXPECT_EQ(again.failure->trace_hash, report.failure->trace_hash);
}

TEST(SeedHarness, PassingSeedsAndTheEnvironmentsCount) {
  SeedEnvironment three(std::nullopt, "3");
  std::vector<std::uint64_t> seen;
  mk::SeedOptions options;
  options.first_seed = 100;
  options.seeds = 50;
  auto report = mk::run_seeds(options, [&seen](std::uint64_t seed) -> mk::Result<void> {
    seen.push_back(seed);
    return {};
  });
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{100, 101, 102}));
  EXPECT_EQ(report.describe(), "3 seeds passed");
  EXPECT_EQ(report.seeds_planned, 3u);

  SeedEnvironment one("101", std::nullopt);
  EXPECT_EQ(
      mk::run_seeds(options, [](std::uint64_t) -> mk::Result<void> { return {}; }).seeds_planned,
      1u);
}

TEST(SeedHarness, BadEnvironmentIsAnErrorNotASeed) {
  SeedEnvironment bad(std::nullopt, "many");
  mk::SeedOptions options;
  options.print_failure = false;
  bool ran = false;
  auto report = mk::run_seeds(options, [&ran](std::uint64_t) -> mk::Result<void> {
    ran = true;
    return {};
  });
  EXPECT_FALSE(ran);
  ASSERT_FALSE(report.ok());
  EXPECT_FALSE(report.failure->seed.has_value());
  EXPECT_EQ(report.failure->error.code, mk::Errc::invalid_argument);
  EXPECT_NE(report.failure->error.message.find("MK_SIM_SEEDS"), std::string::npos);

  SeedEnvironment zero(std::nullopt, "0");
  EXPECT_FALSE(mk::run_seeds(options, [](std::uint64_t) -> mk::Result<void> { return {}; }).ok());
}

TEST(SeedHarness, ABadSimulationFailsTheSeed) {
  SeedEnvironment clean(std::nullopt, std::nullopt);
  mk::SimulationOptions broken = small_machine(2);
  broken.kernels = 0;
  mk::SeedOptions options;
  options.seeds = 3;
  options.print_failure = false;
  auto report =
      mk::run_seeds(options, broken, [](mk::Simulation&) -> mk::Result<void> { return {}; });
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(*report.failure->seed, 1u);
  EXPECT_EQ(report.failure->error.code, mk::Errc::invalid_argument);
}

}  // namespace
}  // namespace mk_sim_test
