// Helpers for the channel tests: payload patterns that reveal corruption, thread pinning.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mk/channel.h"

namespace mk::test {

/// Byte `index` of message `sequence`: differs between neighbouring messages and positions,
/// so a lost, repeated, reordered, torn or shifted message shows in its bytes.
inline std::byte pattern_byte(std::uint64_t sequence, std::size_t index) {
  std::uint32_t x = static_cast<std::uint32_t>(sequence) * 0x9E3779B1u +
                    static_cast<std::uint32_t>(index) * 0x85EBCA77u;
  x ^= x >> 15;
  x *= 0x2C1B3C6Du;
  x ^= x >> 13;
  return static_cast<std::byte>(x);
}

/// Fills `out` with the pattern of message `sequence`.
inline void fill_pattern(std::span<std::byte> out, std::uint64_t sequence) {
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = pattern_byte(sequence, i);
}

/// True when `payload` is exactly `length` bytes of message `sequence`'s pattern.
inline bool matches_pattern(std::span<const std::byte> payload, std::uint64_t sequence,
                            std::size_t length) {
  if (payload.size() != length) return false;
  for (std::size_t i = 0; i < length; ++i) {
    if (payload[i] != pattern_byte(sequence, i)) return false;
  }
  return true;
}

/// The CPUs this thread may run on, in increasing order.
inline std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

/// Pins the calling thread to the `nth` allowed CPU (wrapping around); false if refused.
inline bool pin_to_nth_cpu(std::size_t nth) {
  const auto cpus = allowed_cpus();
  if (cpus.empty()) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[nth % cpus.size()], &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

/// The channel kinds whose ends run on two threads.
inline constexpr ChannelKind kCrossThreadKinds[] = {ChannelKind::urpc, ChannelKind::lockfree};

}  // namespace mk::test
