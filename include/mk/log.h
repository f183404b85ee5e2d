// mk::set_log_handler: where the runtime's one-line diagnostics go.
#pragma once

#include <string_view>

namespace mk {

/// Receives one diagnostic line of the runtime, without the "mk: " prefix or a newline: a
/// kernel declared failed, a message lost to a failed peer, a task that threw, a fallback
/// taken. Called from any kernel's thread (or kernel process), so it must be thread-safe.
using LogHandler = void (*)(std::string_view line);

/// Sends the runtime's diagnostics to `handler` from now on; nullptr restores the default,
/// "mk: <line>" on stderr. A handler that does nothing silences them (a sweep over many
/// simulated seeds, say, where every crash would print a line). Kernel processes forked
/// afterwards keep the handler the program had then. Returns the previous handler (nullptr
/// for the default).
LogHandler set_log_handler(LogHandler handler) noexcept;

}  // namespace mk
