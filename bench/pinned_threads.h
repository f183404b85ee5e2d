// Threads pinned to chosen cores and started together: the shared-memory side of the benches
// that compare mk with plain threads on the same cores.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <span>
#include <thread>
#include <vector>

#include "mk/core_id.h"

namespace mk::bench {

/// Pins the calling thread to `core`; false when the OS refuses.
inline bool pin_to(CoreId core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

/// Runs `body(i)` on one thread per entry of `cores`, thread i pinned to cores[i], all released
/// at once so that none runs alone while the others are still being created. Returns when all
/// have finished. The caller's thread is never pinned: later System boots must see every core.
inline void run_pinned(std::span<const CoreId> cores,
                       const std::function<void(std::size_t)>& body) {
  std::atomic<std::size_t> arrived{0};
  std::vector<std::thread> threads;
  threads.reserve(cores.size());
  for (std::size_t i = 0; i < cores.size(); ++i) {
    threads.emplace_back([&, i] {
      pin_to(cores[i]);
      arrived.fetch_add(1);
      // Yields rather than spins: with more threads than cores a spinner would starve the rest.
      while (arrived.load() < cores.size())
        std::this_thread::yield();
      body(i);
    });
  }
  for (auto& thread : threads)
    thread.join();
}

}  // namespace mk::bench
