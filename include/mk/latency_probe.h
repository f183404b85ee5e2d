// Measuring message round trips between cores over real channels, for the SKB.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mk/answer_path.h"
#include "mk/channel.h"
#include "mk/channel_cost.h"
#include "mk/function_ref.h"
#include "mk/latency.h"
#include "mk/result.h"
#include "mk/skb.h"

namespace mk {

/// How to measure one pair.
struct LatencyProbeOptions {
  std::size_t round_trips = 2000;        ///< Timed round trips per pair.
  std::size_t warmup = 200;              ///< Untimed round trips first (caches, page faults).
  ChannelKind kind = ChannelKind::urpc;  ///< The channel carrying the messages.
};

/// Where measured latencies come from in load_or_measure_latencies().
enum class LatencyOrigin : std::uint8_t {
  cache,     ///< Read from the cache file of this machine.
  measured,  ///< Measured now (and written to the cache).
};

/// How load_or_measure_latencies() finds and refreshes the cache.
struct LatencySetup {
  std::string cache_dir;      ///< Empty: default_latency_cache_dir().
  bool remeasure = false;     ///< Measure even when the cache has every pair.
  LatencyProbeOptions probe;  ///< How each pair is measured.
};

/// Called after each measured pair with (pairs done, pairs in all).
using LatencyProgress = FunctionRef<void(std::size_t, std::size_t)>;

/// Round trips between `a` and `b` on the live machine: two threads pinned to the two cores
/// bounce one message over a pair of channels (rings on each receiver's NUMA node).
Result<CoreLatency> measure_round_trip(const Skb& skb, CoreId a, CoreId b,
                                       const LatencyProbeOptions& options = {});

/// Every pair of usable cores; the live machine only.
Result<std::vector<CoreLatency>> measure_latencies(const Skb& skb,
                                                   const LatencyProbeOptions& options,
                                                   LatencyProgress progress);

/// Round trips between every pair of usable cores over channels of each kind that joins two
/// cores (urpc and lockfree), for Skb::transport; the live machine only. `options.kind` is
/// ignored. `progress` counts pairs.
Result<std::vector<ChannelCost>> measure_channel_costs(const Skb& skb,
                                                       const LatencyProbeOptions& options,
                                                       LatencyProgress progress);

/// Round trips between `a` and `b` shaped as calls, once with each answer path (channel, then
/// in_line, as AnswerPath orders them): a thread pinned to `a` sends an 8-byte request over a
/// urpc channel, one pinned to `b` answers it through a urpc channel back or in the request's
/// line, alternating in blocks of a hundred; `options.warmup` untimed and `options.round_trips`
/// timed round trips of each. The live machine only; `options.kind` is ignored.
Result<std::array<AnswerCost, 2>> measure_answer_costs(const Skb& skb, CoreId a, CoreId b,
                                                       const LatencyProbeOptions& options = {});
/// Adds this machine's measured facts to `skb`: latencies, round trips per channel kind and per
/// answer path, and the prefetch pair distance. From its cache file when that has every pair
/// and `setup.remeasure` is false; otherwise measured now (measure_prefetch_pair,
/// measure_channel_costs, whose urpc round trips are the latencies and whose pairs `progress`
/// counts, then measure_answer_costs for every pair) and cached. A prefetch pair distance the probe
/// cannot tell is left to the SKB's derived value. A malformed cache file is an error naming it
/// (remeasure replaces it).
Result<LatencyOrigin> load_or_measure_latencies(Skb& skb, const LatencySetup& setup,
                                                LatencyProgress progress);

}  // namespace mk
