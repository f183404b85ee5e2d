#include "skb/host_line_size.h"

#include <unistd.h>

#include <bit>
#include <fstream>

namespace mk::detail {
namespace {

std::size_t detect() {
  const long from_sysconf = sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
  if (from_sysconf > 0 && plausible_line_size(static_cast<std::size_t>(from_sysconf))) {
    return static_cast<std::size_t>(from_sysconf);
  }
  std::ifstream file("/sys/devices/system/cpu/cpu0/cache/index0/coherency_line_size");
  long from_sys = 0;
  if (file >> from_sys && from_sys > 0 && plausible_line_size(static_cast<std::size_t>(from_sys))) {
    return static_cast<std::size_t>(from_sys);
  }
  return 0;
}

}  // namespace

bool plausible_line_size(std::size_t bytes) {
  return bytes >= 16 && bytes <= 4096 && std::has_single_bit(bytes);
}

std::size_t reported_line_size() {
  static const std::size_t line_size = detect();
  return line_size;
}

std::size_t host_line_size() {
  const std::size_t reported = reported_line_size();
  return reported != 0 ? reported : kFallbackLineSize;
}

}  // namespace mk::detail
