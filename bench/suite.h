// Bench suites of mk-bench and the options they share.
#pragma once

#include <span>
#include <string_view>

#include "report.h"

namespace mk::bench {

/// Options every suite honours.
struct Options {
  bool quick = false;  ///< Fewer iterations: seconds per suite, for the README's main job.
};

/// One suite: `mk-bench <name>`.
struct Suite {
  std::string_view name;                                ///< Subcommand name, such as "channel".
  std::string_view summary;                             ///< One line for --help.
  void (*run)(const Options& options, Report& report);  ///< Measures and adds results.
};

/// Every suite, in the order `mk-bench all` runs them.
std::span<const Suite> suites();

}  // namespace mk::bench
