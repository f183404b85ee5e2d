// Bench suites of mk-bench and the options they share.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "report.h"

namespace mk::bench {

/// Options every suite honours.
struct Options {
  bool quick = false;  ///< Fewer iterations: seconds per suite, for the README's main job.
  /// The machine `project` simulates, in Skb::load syntax (an hwloc XML file or a synthetic
  /// description); empty: the paper's 32-core AMD machine, "pack:8 numa:1 core:4 pu:1".
  std::string topology;
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
