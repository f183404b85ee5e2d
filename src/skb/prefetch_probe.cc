// Stores from two cores to words a set distance apart: where the hardware moves lines in pairs,
// words in one pair disturb each other although they lie in different lines.
#include "mk/prefetch_probe.h"

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace mk {
namespace {

using Clock = std::chrono::steady_clock;

// A trial disturbs when it costs this much more than the words a page apart: false sharing
// costs several times as much, and scheduling noise on a quiet machine far less.
constexpr std::int64_t kDisturbedNumerator = 3;
constexpr std::int64_t kDisturbedDenominator = 2;
// Spins before a waiting probe thread yields, so that two probe threads on one core progress.
constexpr int kSpinsPerYield = 256;
constexpr std::size_t kPage = 4096;

bool disturbed(std::chrono::nanoseconds cost, std::chrono::nanoseconds apart) {
  return cost.count() * kDisturbedDenominator > apart.count() * kDisturbedNumerator;
}

Result<void> pin_to(CoreId core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set); rc != 0) {
    return error(Errc::io_error, fmt::format("cannot pin a prefetch probe thread to core {}: {}",
                                             core, std::strerror(rc)));
  }
  return {};
}

// Both threads wait here between trials; each trial's generation is one more.
class SpinBarrier {
 public:
  void arrive_and_wait() {
    // acq_rel: a thread leaving the barrier sees everything the other did before arriving.
    const std::uint64_t generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == 1) {
      // Relaxed: the release store of the generation below publishes it.
      arrived_.store(0, std::memory_order_relaxed);
      // Release: pairs with the waiter's acquire load.
      generation_.store(generation + 1, std::memory_order_release);
      return;
    }
    // Acquire: pairs with the release above.
    for (int spins = 1; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins % kSpinsPerYield == 0) std::this_thread::yield();
    }
  }

 private:
  std::atomic<int> arrived_{0};
  std::atomic<std::uint64_t> generation_{0};
};

// Two usable cores on different physical cores: the first usable core and the farthest from it.
Result<std::pair<CoreId, CoreId>> pick_cores(const Skb& skb) {
  const CoreId first = skb.usable_cores().front();
  const int first_core = skb.core_info(first).value().core;
  std::optional<CoreId> best;
  int best_distance = -1;
  for (CoreId other : skb.usable_cores()) {
    const CoreInfo info = skb.core_info(other).value();
    if (other == first || (info.core >= 0 && info.core == first_core)) continue;
    const int distance = skb.distance(first, other).value_or(0);
    if (distance > best_distance) {
      best = other;
      best_distance = distance;
    }
  }
  if (!best) {
    return error(Errc::unavailable,
                 "the prefetch pair distance needs two usable cores on different physical cores");
  }
  return std::pair(first, *best);
}

}  // namespace

Result<std::size_t> decide_prefetch_pair(std::chrono::nanoseconds same_line,
                                         std::chrono::nanoseconds apart,
                                         std::span<const PrefetchTrial> trials) {
  if (!disturbed(same_line, apart)) {
    return error(Errc::unavailable,
                 fmt::format("prefetch probe: stores to one line ({} ns) cost no more than stores "
                             "a page apart ({} ns): the two threads did not run at once",
                             same_line.count(), apart.count()));
  }
  for (const PrefetchTrial& trial : trials) {
    if (!disturbed(trial.cost, apart)) return trial.distance;
  }
  return error(Errc::unavailable,
               fmt::format("prefetch probe: even {} bytes apart stores disturbed each other: "
                           "the machine is too busy to tell",
                           trials.empty() ? 0 : trials.back().distance));
}

Result<std::size_t> measure_prefetch_pair(const Skb& skb, const PrefetchProbeOptions& options) {
  if (!skb.is_live()) {
    return error(Errc::unavailable,
                 fmt::format("the prefetch pair distance is measured on the live machine only, "
                             "not the {}",
                             skb.origin()));
  }
  if (options.stores == 0 || options.rounds == 0) {
    return error(Errc::invalid_argument, "PrefetchProbeOptions: stores and rounds must be >= 1");
  }
  auto cores = pick_cores(skb);
  if (!cores) return std::move(cores).error();
  const std::size_t line = skb.cache_line_size();
  const std::size_t far = std::max(kPage, 8 * line);
  // The same line, one, two and four lines, and `far` (its own page): what each trial sets.
  const std::array<std::size_t, 5> distances = {sizeof(std::uint64_t), line, 2 * line, 4 * line,
                                                far};
  std::unique_ptr<std::byte, decltype(&std::free)> block(
      static_cast<std::byte*>(std::aligned_alloc(far, 2 * far)), &std::free);
  if (!block) return error(Errc::io_error, "prefetch probe: no memory for its words");
  std::memset(block.get(), 0, 2 * far);

  std::array<std::chrono::nanoseconds, distances.size()> best;
  best.fill(std::chrono::nanoseconds::max());
  std::array<std::array<Clock::duration, distances.size()>, 2> elapsed{};
  // Stores the other thread made while this one timed its own: a trial counts only when each
  // thread was timed while the other stored, since a thread timed alone shows no disturbance.
  std::array<std::array<std::uint64_t, distances.size()>, 2> overlap{};
  SpinBarrier barrier;
  std::atomic<int> done{0};
  std::array<Result<void>, 2> pinned;

  auto run = [&](int side) {
    pinned[side] = pin_to(side == 0 ? cores->first : cores->second);
    // Each thread counts in its word, a count that only grows, so the other can tell how far
    // it got.
    std::uint64_t count = 0;
    for (std::size_t round = 0; round < options.rounds; ++round) {
      for (std::size_t d = 0; d < distances.size(); ++d) {
        std::atomic_ref<std::uint64_t> mine(
            *reinterpret_cast<std::uint64_t*>(block.get() + (side == 0 ? 0 : distances[d])));
        std::atomic_ref<std::uint64_t> theirs(
            *reinterpret_cast<std::uint64_t*>(block.get() + (side == 0 ? distances[d] : 0)));
        // Relaxed, here and below: only how far the other got matters, not what it published
        // (the barrier orders this store before the other's first load).
        mine.store(count, std::memory_order_relaxed);
        barrier.arrive_and_wait();
        const std::uint64_t theirs_before = theirs.load(std::memory_order_relaxed);
        const auto start = Clock::now();
        // Each thread times its first `stores` stores and goes on storing until both have
        // timed theirs, so that a thread that starts late is still timed against the other.
        for (std::size_t i = 0;; ++i) {
          // A load and a store, as a counter in memory is kept: the load waits for the line
          // whenever the other core took it, where a store alone would wait in the buffer.
          count = mine.load(std::memory_order_relaxed) + 1;
          mine.store(count, std::memory_order_relaxed);
          if (i + 1 == options.stores) {
            elapsed[side][d] = Clock::now() - start;
            overlap[side][d] = theirs.load(std::memory_order_relaxed) - theirs_before;
            // Relaxed: the barrier below orders the timings for the thread that reads them.
            done.fetch_add(1, std::memory_order_relaxed);
          }
          // Relaxed: a count that only ends the loop.
          if (i + 1 >= options.stores && i % 64 == 0 && done.load(std::memory_order_relaxed) == 2) {
            break;
          }
        }
        barrier.arrive_and_wait();
        if (side == 0) {
          // Relaxed: the next trial starts only after the barrier above.
          done.store(0, std::memory_order_relaxed);
          const std::uint64_t quarter = options.stores / 4;
          if (overlap[0][d] >= quarter && overlap[1][d] >= quarter) {
            const auto cost = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::max(elapsed[0][d], elapsed[1][d]));
            best[d] = std::min(best[d], cost);
          }
        }
      }
    }
  };
  // Both on threads of their own: pinning the caller would shrink what it may run on, and with
  // it the machine a later Skb::discover() sees.
  std::thread one(run, 0);
  std::thread other(run, 1);
  one.join();
  other.join();
  for (const Result<void>& pin : pinned) {
    if (!pin) return pin.error();
  }
  for (std::size_t d = 0; d < distances.size(); ++d) {
    if (best[d] == std::chrono::nanoseconds::max()) {
      return error(Errc::unavailable,
                   fmt::format("prefetch probe: in no round of {} did the two threads store at "
                               "once with their words {} bytes apart",
                               options.rounds, distances[d]));
    }
  }
  const std::array<PrefetchTrial, 3> trials = {PrefetchTrial{distances[1], best[1]},
                                               PrefetchTrial{distances[2], best[2]},
                                               PrefetchTrial{distances[3], best[3]}};
  return decide_prefetch_pair(best[0], best[4], trials);
}

}  // namespace mk
