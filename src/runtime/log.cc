#include "runtime/log.h"

#include <fmt/core.h>

#include <cstdio>

namespace mk::runtime {

void log_line(std::string_view line) {
  fmt::print(stderr, "mk: {}\n", line);
}

}  // namespace mk::runtime
