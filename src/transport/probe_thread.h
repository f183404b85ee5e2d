// What the round-trip probes share: pinning a probe thread, and how long it polls before it
// yields.
#pragma once

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <cstring>

#include "mk/core_id.h"
#include "mk/result.h"

namespace mk::transport {

/// Polls between yields while waiting: long enough that an answer from another core is caught
/// without a syscall, short enough that a probe thread sharing its core lets the other run.
inline constexpr int kPollsPerYield = 256;

/// Pins the calling probe thread to `core`.
inline Result<void> pin_probe_thread(CoreId core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set); rc != 0) {
    return error(Errc::io_error,
                 fmt::format("cannot pin a probe thread to core {}: {}", core, std::strerror(rc)));
  }
  return {};
}

}  // namespace mk::transport
