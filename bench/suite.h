// Bench suites of mk-bench and the options they share.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "report.h"

namespace mk::bench {

/// Options every suite honours.
struct Options {
  bool quick = false;  ///< Fewer iterations: seconds per suite, for the README's main job.
  /// Every kernel or core count a suite supports (2, 4, 8, ... up to every usable core, and
  /// more kernels than cores where that means something), even when quick: `mk-bench report`.
  bool sweep = false;
  /// The machine `project` simulates, in Skb::load syntax (an hwloc XML file or a synthetic
  /// description); empty: the paper's 32-core AMD machine, "pack:8 numa:1 core:4 pu:1".
  std::string topology;
  /// `project`'s machine profile, a name in bench/profiles or a path (bench/profile.h); it
  /// replaces `topology` and the host's measured costs. Empty: none. Also the machine `caps`
  /// projects revoke on (empty there: amd-8x4).
  std::string profile;
  /// The suites this run runs, by name: a suite whose figure's baseline another suite measures
  /// measures it itself when that suite is not among them.
  std::vector<std::string_view> running;
};

/// Measures idle.wake_rtt_ns (a call to a kernel asleep) and futex.rtt_ns, its baseline, with
/// their p99s; the idle suite's, and rpc's baseline for failover.detect_ns.
void add_wake_rtt(const Options& options, Report& report);

/// One suite: `mk-bench <name>`.
struct Suite {
  std::string_view name;                                ///< Subcommand name, such as "channel".
  std::string_view summary;                             ///< One line for --help.
  void (*run)(const Options& options, Report& report);  ///< Measures and adds results.
};

/// Every suite, in the order `mk-bench all` runs them.
std::span<const Suite> suites();

}  // namespace mk::bench
