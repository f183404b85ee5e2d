#include "runtime/sim_trace.h"

#include <fmt/format.h>

#include <chrono>

namespace mk::runtime {

namespace {

std::uint64_t ns(Instant when) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count());
}

std::string describe(SimEvent event, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  switch (event) {
    case SimEvent::turn:
      return a != 0 ? "turn worked" : "turn idle";
    case SimEvent::sleep:
      return a != 0 ? fmt::format("sleep until {}", a) : "sleep";
    case SimEvent::send:
      return fmt::format("send to k{} type {} arrives {}", a, b, c);
    case SimEvent::receive:
      return fmt::format("receive from k{} type {}", a, b);
    case SimEvent::stall:
      return fmt::format("stalled until {}", a);
    case SimEvent::crash:
      return "crashed";
    case SimEvent::stop:
      return "stopped";
  }
  return "unknown";
}

}  // namespace

void SimTrace::mix(std::uint64_t value) noexcept {
  for (int i = 0; i < 8; ++i) {
    hash_ ^= (value >> (8 * i)) & 0xff;
    hash_ *= 0x100000001b3ULL;
  }
}

void SimTrace::record(Instant when, KernelId kernel, SimEvent event, std::uint64_t a,
                      std::uint64_t b, std::uint64_t c) {
  ++events_;
  mix(ns(when));
  mix(kernel);
  mix(static_cast<std::uint64_t>(event));
  mix(a);
  mix(b);
  mix(c);
  if (keep_lines_)
    lines_.push_back(fmt::format("{} k{} {}", ns(when), kernel, describe(event, a, b, c)));
}

}  // namespace mk::runtime
