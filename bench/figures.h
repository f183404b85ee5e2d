// The figures of `mk-bench report`: what each shows, its table's rows and its gnuplot script.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "machine_view.h"
#include "report.h"

namespace mk::bench {

/// One figure of the report.
struct Figure {
  std::string file;     ///< Base name of its files in the report's directory: "fig2-channels".
  std::string title;    ///< Such as "Figure 2: channels against peers".
  std::string caption;  ///< What is measured, against what, how to read it.
  /// Suites that measure it; the report shows it when one of them ran.
  std::vector<std::string_view> suites;
  std::vector<std::pair<std::string, std::string>> facts;  ///< A table of its own (figure 1).
  std::vector<std::string> rows;   ///< Names of the results its table shows, in order.
  std::string plot;                ///< gnuplot commands after terminal and output; empty: none.
  std::vector<std::string> notes;  ///< Lines shown under the caption, such as missing peers.
};

/// Every figure `report`'s results can draw, in order; `machine` is figure 1's machine.
std::vector<Figure> make_figures(const Report& report, const MachineFacts& machine);

}  // namespace mk::bench
