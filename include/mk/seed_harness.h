// mk::run_seeds: one scenario over many seeds, stopping at the first that fails, with the
// command that replays it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "mk/result.h"
#include "mk/sim_options.h"
#include "mk/simulation.h"

namespace mk {

/// Which seeds run_seeds tries. Two environment variables override it, so that the same test
/// binary runs a quick sweep in CI, a long one by hand, or replays one seed:
/// `MK_SIM_SEEDS=<n>` runs n seeds from `first_seed`; `MK_SIM_SEED=<s>` runs seed s alone.
struct SeedOptions {
  std::uint64_t first_seed = 1;  ///< Seeds first_seed, first_seed + 1, ...
  std::size_t seeds = 100;       ///< How many, unless MK_SIM_SEEDS says otherwise.
  /// The test's full GoogleTest name ("Suite.Test"), for the replay command's --gtest_filter:
  /// GoogleTest's `UnitTest::GetInstance()->current_test_info()` has its two parts. Empty: the
  /// command runs the whole binary.
  std::string test_name;
  /// Writes the failure, with its replay command, to standard error.
  bool print_failure = true;
};

/// The seed that failed, and how to see it fail again.
struct SeedFailure {
  /// Empty when the harness itself could not start (a bad MK_SIM_SEEDS or MK_SIM_SEED).
  std::optional<std::uint64_t> seed;
  Error error;                              ///< What the scenario (or the harness) returned.
  std::optional<std::uint64_t> trace_hash;  ///< The failing run's, when the harness made it.
  /// `MK_SIM_SEED=<s> <binary> <its arguments>`, the --gtest_filter naming the test when
  /// `test_name` was given.
  std::string replay;
  /// All of the above on a few lines.
  std::string describe() const;
};

/// What run_seeds did.
struct SeedReport {
  std::size_t seeds_planned = 0;       ///< Seeds it was to run: the options', or the environment's.
  std::size_t seeds_run = 0;           ///< Seeds that ran, the failing one included.
  std::optional<SeedFailure> failure;  ///< The first failure; empty when every seed passed.
  /// True when every seed passed.
  bool ok() const noexcept { return !failure.has_value(); }
  /// "N seeds passed", or the failure's description.
  std::string describe() const;
};

/// Runs `scenario(seed)` for each seed until one returns an error. For scenarios that build
/// their own simulations (or none); the report then has no trace hash.
///
///     auto report = mk::run_seeds({.seeds = 200, .test_name = "Paxos.Agrees"},
///                                 [](std::uint64_t seed) -> mk::Result<void> { ... });
///     EXPECT_TRUE(report.ok()) << report.describe();
SeedReport run_seeds(const SeedOptions& options,
                     const std::function<Result<void>(std::uint64_t seed)>& scenario);

/// For each seed, creates a Simulation from `base` with that seed, runs `scenario` on it (which
/// checks its invariants and returns the first violated one as an error), and shuts it down (a
/// failed shutdown fails the seed too). A failure reports the run's trace hash.
SeedReport run_seeds(const SeedOptions& options, const SimulationOptions& base,
                     const std::function<Result<void>(Simulation& simulation)>& scenario);

}  // namespace mk
