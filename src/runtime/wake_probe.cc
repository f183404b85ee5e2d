// The wake probe: two pinned threads, one asleep in a kernel's waiter, one waking it.
#include "mk/wake_probe.h"

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "mk/latency_cache.h"
#include "runtime/idle_waiter.h"
#include "runtime/listed_threads.h"

namespace mk {

namespace {

using runtime::IdleWaiter;
using runtime::listed_threads;

bool pin(CoreId core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// What the two threads share.
struct Rendezvous {
  std::atomic<IdleWaiter*> waiter{nullptr};
  std::atomic<bool> failed{false};
  std::atomic<std::size_t> ready{0};  ///< The round the sleeper is about to block in, plus one.
  std::atomic<bool> go{false};        ///< The waker's notification is real (not spurious).
  std::atomic<std::int64_t> woke{0};  ///< When the sleeper ran again; 0 until it did.
};

Result<WakeCost> measure_one(WakeMechanism mechanism, CoreId sleeper_core, CoreId waker_core,
                             const WakeProbeOptions& options) {
  Rendezvous shared;
  std::optional<Error> failure;
  const std::size_t rounds = options.warmup + options.wakes;
  std::thread sleeper([&] {
    auto waiter = runtime::make_idle_waiter(runtime::WakeSource{mechanism, -1, nullptr},
                                            WaitBackend::automatic, false);
    if (!waiter || !pin(sleeper_core)) {
      failure = waiter ? error(Errc::io_error, "wake probe: cannot pin a thread")
                       : std::move(waiter).error();
      shared.failed.store(true);
      return;
    }
    shared.waiter.store(waiter->get());
    for (std::size_t round = 0; round < rounds; ++round) {
      shared.ready.store(round + 1);
      // A wait may end early (a spurious wake): only the waker's notification counts.
      do {
        (*waiter)->wait(std::nullopt);
      } while (!shared.go.load());
      shared.woke.store(now_ns());
      shared.go.store(false);
    }
    // The waiter outlives the waker's last notify: wait until it has read the last time.
    while (shared.woke.load() != 0)
      sched_yield();
  });
  std::vector<std::int64_t> samples;
  std::thread waker([&] {
    pin(waker_core);
    while (shared.waiter.load() == nullptr && !shared.failed.load())
      sched_yield();
    if (shared.failed.load()) return;
    IdleWaiter& waiter = *shared.waiter.load();
    for (std::size_t round = 0; round < rounds; ++round) {
      while (shared.ready.load() != round + 1)
        sched_yield();
      std::this_thread::sleep_for(options.pause);
      const std::int64_t t0 = now_ns();
      shared.go.store(true);
      waiter.notify();
      std::int64_t woke = 0;
      while ((woke = shared.woke.load()) == 0)
        sched_yield();
      shared.woke.store(0);
      if (round >= options.warmup) samples.push_back(woke - t0);
    }
  });
  waker.join();
  sleeper.join();
  if (failure) return std::move(*failure);
  std::sort(samples.begin(), samples.end());
  if (samples.empty()) return error(Errc::invalid_argument, "wake probe: no wakes to time");
  return WakeCost{mechanism, std::chrono::nanoseconds(std::max<std::int64_t>(0, samples.front())),
                  std::chrono::nanoseconds(std::max<std::int64_t>(0, samples[samples.size() / 2])),
                  FactSource::measured};
}

}  // namespace

Result<std::vector<WakeCost>> measure_wake_costs(const Skb& skb, const WakeProbeOptions& options) {
  if (!skb.is_live()) {
    return error(Errc::unavailable, fmt::format("wake costs are measured on the live machine "
                                                "only, not the {}",
                                                skb.origin()));
  }
  const auto& cores = skb.usable_cores();
  if (cores.empty()) return error(Errc::unavailable, "wake probe: no usable core");
  const CoreId sleeper = cores.size() > 1 ? cores[1] : cores[0];
  const std::size_t threads_before = listed_threads();
  std::vector<WakeCost> costs;
  std::optional<Error> failure;
  for (WakeMechanism mechanism : kWakeMechanisms) {
    if (!runtime::check_wake_mechanism(mechanism, WaitBackend::automatic, Isolation::threads)) {
      continue;
    }
    auto cost = measure_one(mechanism, sleeper, cores[0], options);
    if (!cost) {
      failure = std::move(cost).error();
      break;
    }
    costs.push_back(*cost);
  }
  // A joined thread may still be listed for a moment while the OS finishes it; a caller about
  // to fork kernel processes counts the listed threads, so return once they are gone (or
  // after a second, when something else started threads meanwhile).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (listed_threads() > threads_before && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  if (failure) return std::move(*failure);
  return costs;
}

Result<LatencyOrigin> load_or_measure_wake_costs(Skb& skb, const LatencySetup& setup,
                                                 const WakeProbeOptions& options) {
  if (!skb.is_live()) {
    return error(Errc::unavailable, fmt::format("wake costs are measured on the live machine "
                                                "only, not the {}",
                                                skb.origin()));
  }
  auto found_dir = latency_cache_dir(setup.cache_dir);
  if (!found_dir) return std::move(found_dir).error();
  const std::string path = latency_cache_path(*found_dir, skb);
  if (!setup.remeasure) {
    auto cached = load_wake_cost_cache(path, skb);
    if (cached && !cached->empty()) {
      if (auto added = skb.add_measured_wake_costs(*cached); !added) return added.error();
      return LatencyOrigin::cache;
    }
    if (!cached && cached.error().code != Errc::not_found) return std::move(cached).error();
  }
  auto measured = measure_wake_costs(skb, options);
  if (!measured) return std::move(measured).error();
  if (auto added = skb.add_measured_wake_costs(*measured); !added) return added.error();
  if (auto saved = save_latency_cache(path, skb); !saved) return saved.error();
  return LatencyOrigin::measured;
}

}  // namespace mk
