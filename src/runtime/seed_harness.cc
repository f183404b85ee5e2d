// The seed harness: the environment's overrides, the loop over seeds, the replay command.
#include "mk/seed_harness.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string_view>
#include <vector>

namespace mk {

namespace {

/// The seeds to run: from the options, unless the environment says otherwise.
struct SeedRange {
  std::uint64_t first;
  std::size_t count;
};

Result<std::uint64_t> parse_number(const char* variable, std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return error(Errc::invalid_argument,
                 fmt::format("{}: '{}' is not a non-negative integer", variable, text));
  }
  return value;
}

Result<SeedRange> seed_range(const SeedOptions& options) {
  if (const char* one = std::getenv("MK_SIM_SEED")) {
    auto seed = parse_number("MK_SIM_SEED", one);
    if (!seed) return std::move(seed).error();
    return SeedRange{*seed, 1};
  }
  SeedRange range{options.first_seed, options.seeds};
  if (const char* many = std::getenv("MK_SIM_SEEDS")) {
    auto count = parse_number("MK_SIM_SEEDS", many);
    if (!count) return std::move(count).error();
    range.count = static_cast<std::size_t>(*count);
  }
  if (range.count == 0) {
    return error(Errc::invalid_argument, "seeds: 0; run_seeds needs at least one seed");
  }
  return range;
}

std::string this_binary() {
  char path[4096];
  const ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) return "<test binary>";
  return std::string(path, static_cast<std::size_t>(length));
}

/// The arguments the program was started with, without its name.
std::vector<std::string> own_arguments() {
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> arguments;
  std::string argument;
  while (std::getline(cmdline, argument, '\0'))
    arguments.push_back(argument);
  if (!arguments.empty()) arguments.erase(arguments.begin());
  return arguments;
}

/// `text` as one shell word.
std::string quoted(const std::string& text) {
  const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-_=./:,+*@%", c) != nullptr;
  });
  if (plain) return text;
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

SeedFailure make_failure(const SeedOptions& options, std::uint64_t seed, Error failure,
                         std::optional<std::uint64_t> hash) {
  std::string replay = fmt::format("MK_SIM_SEED={} {}", seed, quoted(this_binary()));
  // The program's own arguments, but the filter names the failing test alone.
  for (const std::string& argument : own_arguments()) {
    if (!options.test_name.empty() && argument.rfind("--gtest_filter=", 0) == 0) continue;
    // Appended piece by piece: GCC 12 warns (-Wrestrict) on `" " + string` in error.
    replay += ' ';
    replay += quoted(argument);
  }
  if (!options.test_name.empty()) {
    replay += ' ';
    replay += quoted("--gtest_filter=" + options.test_name);
  }
  return SeedFailure{seed, std::move(failure), hash, std::move(replay)};
}

template <class RunOne>
SeedReport run_all(const SeedOptions& options, RunOne run_one) {
  SeedReport report;
  auto range = seed_range(options);
  if (!range) {
    report.failure = SeedFailure{std::nullopt, std::move(range).error(), std::nullopt, {}};
  } else {
    report.seeds_planned = range->count;
    for (std::size_t i = 0; i < range->count; ++i) {
      const std::uint64_t seed = range->first + i;
      ++report.seeds_run;
      if (auto failure = run_one(seed)) {
        report.failure = std::move(failure);
        break;
      }
    }
  }
  if (report.failure && options.print_failure) std::cerr << report.failure->describe() << '\n';
  return report;
}

}  // namespace

std::string SeedFailure::describe() const {
  if (!seed) return "seed harness: " + error.describe();
  std::string text = fmt::format("seed {} failed: {}", *seed, error.describe());
  if (trace_hash) text += fmt::format("\n  trace hash: {:016x}", *trace_hash);
  text += "\n  replay: " + replay;
  return text;
}

std::string SeedReport::describe() const {
  if (failure) return failure->describe();
  return fmt::format("{} seeds passed", seeds_run);
}

SeedReport run_seeds(const SeedOptions& options,
                     const std::function<Result<void>(std::uint64_t seed)>& scenario) {
  return run_all(options, [&](std::uint64_t seed) -> std::optional<SeedFailure> {
    auto outcome = scenario(seed);
    if (outcome) return std::nullopt;
    return make_failure(options, seed, std::move(outcome).error(), std::nullopt);
  });
}

SeedReport run_seeds(const SeedOptions& options, const SimulationOptions& base,
                     const std::function<Result<void>(Simulation& simulation)>& scenario) {
  return run_all(options, [&](std::uint64_t seed) -> std::optional<SeedFailure> {
    SimulationOptions seeded = base;
    seeded.seed = seed;
    auto simulation = Simulation::create(std::move(seeded));
    if (!simulation)
      return make_failure(options, seed, std::move(simulation).error(), std::nullopt);
    auto outcome = scenario(**simulation);
    const std::uint64_t hash = (*simulation)->trace_hash();
    auto stopped = (*simulation)->shutdown();
    if (!outcome) return make_failure(options, seed, std::move(outcome).error(), hash);
    if (!stopped) return make_failure(options, seed, std::move(stopped).error(), hash);
    return std::nullopt;
  });
}

}  // namespace mk
