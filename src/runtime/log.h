// One-line diagnostics from the runtime, on stderr.
#pragma once

#include <string_view>

namespace mk::runtime {

/// Prints "mk: <line>" on stderr. For rare events only (a fallback taken, a task that threw).
void log_line(std::string_view line);

}  // namespace mk::runtime
