// `mk-bench report`: every chosen suite run several times, its figures drawn, written to a
// directory as results.json, report.md, report.html and one PNG per figure.
#pragma once

#include <cstddef>
#include <string>

#include "suite.h"

namespace mk::bench {

/// What `mk-bench report` was asked for.
struct ReportRequest {
  std::string out;       ///< The directory to write to; created when missing.
  std::string suites;    ///< Suites to run, comma-separated; empty: every suite.
  std::size_t runs = 3;  ///< Runs of each suite, whose spread is each result's noise.
};

/// Runs the report; the process's exit status (0 once the tables are written, 2 for a bad
/// request or a directory that cannot be written). Progress and estimates go to stderr.
int run_report(const ReportRequest& request, Options options);

}  // namespace mk::bench
