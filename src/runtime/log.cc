#include "runtime/log.h"

#include <fmt/core.h>

#include <atomic>
#include <cstdio>

#include "mk/log.h"

namespace mk {

namespace {

std::atomic<LogHandler> log_handler{nullptr};

}  // namespace

LogHandler set_log_handler(LogHandler handler) noexcept {
  return log_handler.exchange(handler);
}

namespace runtime {

void log_line(std::string_view line) {
  if (LogHandler handler = log_handler.load()) {
    handler(line);
  } else {
    fmt::print(stderr, "mk: {}\n", line);
  }
}

}  // namespace runtime

}  // namespace mk
