// Repeated runs of the same suites, folded into one report whose results carry their spread.
#pragma once

#include <span>
#include <string>

#include "report.h"

namespace mk::bench {

/// One report of `runs`, each a full run of the same suites: a result's value is the median of
/// the values the runs gave it, its spread their lowest and highest. Results keep the order in
/// which the runs first gave them, and the baseline and target the first run gave.
Report merge_runs(std::string bench, std::span<const Report> runs);

}  // namespace mk::bench
