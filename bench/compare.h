// `mk-bench compare OLD.json NEW.json`: each result's change between two runs, marking those
// beyond the run-to-run noise both files measured.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "mk/result.h"
#include "report.h"

namespace mk::bench {

/// The noise assumed for a result a file gives without a spread (one run of `mk-bench SUITE
/// --json`): this share of its value, as if its runs had spanned it.
inline constexpr double kDefaultNoise = 0.10;

/// The results of a file `mk-bench --json` or `mk-bench report` wrote; errors name the file
/// and what is wrong in it.
mk::Result<std::vector<Result>> read_results(const std::string& path);

/// One result's change from an old run to a new one.
struct Change {
  std::string name;              ///< The result.
  std::string unit;              ///< Its unit (the new file's when both have it).
  std::optional<double> before;  ///< Its old value; none when only the new file has it.
  std::optional<double> after;   ///< Its new value; none when only the old file has it.
  double noise = 0.0;            ///< The larger run-to-run range of the two, in its unit.
  bool beyond_noise = false;     ///< |after - before| > noise.
};

/// Every result of either list, in the new list's order then the old one's: a change is beyond
/// noise when it exceeds the larger of the two run-to-run ranges (max - min of its runs, or
/// kDefaultNoise of the value without a spread).
std::vector<Change> compare(const std::vector<Result>& before, const std::vector<Result>& after);

/// Prints `changes` as a table, then how many are beyond noise.
void print_changes(const std::vector<Change>& changes, std::FILE* out);

/// `mk-bench compare OLD NEW`: the table on stdout and 0, or an error on stderr and 2.
int run_compare(const std::string& old_path, const std::string& new_path);

}  // namespace mk::bench
