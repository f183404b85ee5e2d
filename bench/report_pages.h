// The pages of `mk-bench report`: report.md and report.html, from the figures and results.
#pragma once

#include <string>
#include <vector>

#include "figures.h"
#include "report.h"

namespace mk::bench {

/// How the report was made, for its header.
struct ReportRun {
  std::string suites;         ///< The suites run, comma-separated.
  bool quick = false;         ///< --quick.
  std::size_t runs = 0;       ///< Runs of each suite.
  double seconds = 0.0;       ///< Wall time of the whole report.
  std::string date;           ///< When it was made, UTC.
  std::vector<bool> drawn;    ///< Per figure: its PNG was drawn.
  std::string plots_missing;  ///< Why there are no plots; empty when there are.
};

/// report.md: a header, each figure (caption, image when drawn, table), then every other result.
std::string report_markdown(const Report& report, const std::vector<Figure>& figures,
                            const ReportRun& run);

/// report.html: the same as report.md, with the PNGs embedded by <img>.
std::string report_html(const Report& report, const std::vector<Figure>& figures,
                        const ReportRun& run);

/// A result's run-to-run spread, such as "±1.3% (3 runs: 120.0 to 123.2)", or "-" without one.
std::string describe_spread(const Result& result);

}  // namespace mk::bench
