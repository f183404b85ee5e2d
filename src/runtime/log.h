// One-line diagnostics from the runtime, on stderr or to the program's handler (mk/log.h).
#pragma once

#include <string_view>

namespace mk::runtime {

/// Prints "mk: <line>" on stderr, or hands the line to set_log_handler's handler. For rare
/// events only (a fallback taken, a task that threw).
void log_line(std::string_view line);

}  // namespace mk::runtime
