#include "transport/line_size.h"

#include <unistd.h>

#include <bit>
#include <fstream>

#include "transport/slot_format.h"

namespace mk::transport {
namespace {

bool plausible(long bytes) {
  return bytes >= static_cast<long>(kMinLineSize) && bytes <= static_cast<long>(kMaxLineSize) &&
         std::has_single_bit(static_cast<unsigned long>(bytes));
}

std::size_t detect() {
  const long from_sysconf = sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
  if (plausible(from_sysconf)) return static_cast<std::size_t>(from_sysconf);
  std::ifstream file("/sys/devices/system/cpu/cpu0/cache/index0/coherency_line_size");
  long from_sys = 0;
  if (file >> from_sys && plausible(from_sys)) return static_cast<std::size_t>(from_sys);
  return kFallbackLineSize;
}

}  // namespace

std::size_t detected_line_size() {
  static const std::size_t line_size = detect();
  return line_size;
}

}  // namespace mk::transport
