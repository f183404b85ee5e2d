// Two threads pinned to two different CPUs, started together, and the waits and clock they
// measure with: what mk-bench channel and mk-bench peers share.
#pragma once

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace mk::bench {

/// Spins before a waiting thread yields: far above a round trip, so a measured wait never
/// yields, yet a thread whose peer lost its CPU gives the CPU back.
inline constexpr unsigned kSpinsBeforeYield = 1u << 16;

/// Where the two threads of each measurement run.
struct CorePair {
  int first = -1;   ///< Pinger / consumer.
  int second = -1;  ///< Echo / producer.
};

/// The first two CPUs this process may run on; unpinned (-1) when there are fewer, which
/// `suite` names on stderr.
inline CorePair choose_cores(std::string_view suite) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  if (cpus.size() < 2) {
    fmt::print(stderr, "mk-bench {}: fewer than two CPUs allowed; threads are not pinned\n", suite);
    return {};
  }
  return {cpus[0], cpus[1]};
}

/// Pins the calling thread to `cpu`; does nothing for -1, says so on stderr when refused.
inline void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
    fmt::print(stderr, "mk-bench: cannot pin a thread to CPU {}\n", cpu);
  }
}

/// A pause in a spin loop, so the sibling hyperthread and the memory system get on.
inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

/// Spins, and yields now and then in case the peer lost its CPU.
class Backoff {
 public:
  /// One step of a wait.
  void wait() {
    if (++spins_ < kSpinsBeforeYield) {
      cpu_relax();
    } else {
      spins_ = 0;
      std::this_thread::yield();
    }
  }

 private:
  unsigned spins_ = 0;
};

/// A cheap clock for single round trips: the TSC where there is one (calibrated against
/// steady_clock once), steady_clock elsewhere.
class TickClock {
 public:
  /// Calibrates; takes 20 ms.
  TickClock() {
    const auto wall0 = std::chrono::steady_clock::now();
    const std::uint64_t tick0 = ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto wall1 = std::chrono::steady_clock::now();
    const std::uint64_t tick1 = ticks();
    const double ns = std::chrono::duration<double, std::nano>(wall1 - wall0).count();
    ns_per_tick_ = ns / static_cast<double>(tick1 - tick0);
  }

  /// Now, in ticks.
  static std::uint64_t ticks() {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch() /
                                      std::chrono::nanoseconds(1));
#endif
  }

  /// A span of `ticks` in nanoseconds.
  double to_ns(std::uint64_t ticks) const {
    return static_cast<double>(ticks) * ns_per_tick_;
  }

 private:
  double ns_per_tick_ = 1.0;
};

/// Runs `first` and `second` on the two cores at once, started together.
template <class First, class Second>
void run_pair(const CorePair& cores, First&& first, Second&& second) {
  std::atomic<int> ready{0};
  auto start = [&ready] {
    ready.fetch_add(1);
    while (ready.load() < 2)
      std::this_thread::yield();
  };
  std::thread b([&] {
    pin(cores.second);
    start();
    second();
  });
  std::thread a([&] {
    pin(cores.first);
    start();
    first();
  });
  a.join();
  b.join();
}

}  // namespace mk::bench
