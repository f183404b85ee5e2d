// Drawing a figure: gnuplot, run as a child process on a script written beside the plot.
#pragma once

#include <string>

#include "mk/result.h"

namespace mk::bench {

/// True when an executable named `program` is on PATH.
bool on_path(const std::string& program);

/// Runs `gnuplot SCRIPT` in the script's directory, its output going to `log`. unavailable when
/// gnuplot is not on PATH; io_error naming the script and the log when it fails.
mk::Result<void> run_gnuplot(const std::string& script, const std::string& log);

}  // namespace mk::bench
