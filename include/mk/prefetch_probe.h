// Measuring the prefetch pair distance: how far apart two cores' stores must be so that they
// do not disturb each other (Skb::prefetch_pair_distance).
#pragma once

#include <chrono>
#include <cstddef>
#include <span>

#include "mk/result.h"
#include "mk/skb.h"

namespace mk {

/// How measure_prefetch_pair() measures.
struct PrefetchProbeOptions {
  std::size_t stores = std::size_t{1} << 18;  ///< Increments each thread times per trial.
  /// Trials of every distance, interleaved; the fastest in which both threads stored at once
  /// counts.
  std::size_t rounds = 7;
};

/// What two threads on two cores took to make their stores with their words `distance` bytes
/// apart (the slower thread's time, the fastest round).
struct PrefetchTrial {
  std::size_t distance = 0;          ///< Bytes between the two words.
  std::chrono::nanoseconds cost{0};  ///< Time for `stores` stores.
};

/// The decision measure_prefetch_pair() makes from its trials, apart from the clock so that it
/// can be tested. `same_line` is the cost with both words in one line, `apart` with them a page
/// or more apart, `trials` the costs at one line, two lines and four lines, in that order. A
/// distance disturbs when it costs more than 1.5 x `apart`. The answer is the first trial
/// distance that does not disturb. unavailable when even one line shared did not disturb (the
/// threads never ran at once, or they share a cache) or when every trial disturbed (noise).
Result<std::size_t> decide_prefetch_pair(std::chrono::nanoseconds same_line,
                                         std::chrono::nanoseconds apart,
                                         std::span<const PrefetchTrial> trials);

/// Measures the prefetch pair distance on the live machine: two threads, pinned to two usable
/// cores on different physical cores (the first usable core and the farthest from it), count
/// in their own words at distances of one, two and four lines, against the same line and a
/// page apart (docs/skb.md). unavailable on a described machine, with fewer than two physical
/// cores, or when decide_prefetch_pair() cannot tell; the SKB then keeps its derived value.
Result<std::size_t> measure_prefetch_pair(const Skb& skb, const PrefetchProbeOptions& options = {});

}  // namespace mk
