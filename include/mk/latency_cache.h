// The latency cache: measured round trips and wake costs kept in a file per machine, so that
// a second run does not measure again.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "mk/answer_path.h"
#include "mk/channel_cost.h"
#include "mk/latency.h"
#include "mk/result.h"
#include "mk/skb.h"
#include "mk/wake.h"

namespace mk {

/// `$XDG_CACHE_HOME/mk`, else `$HOME/.cache/mk`; unavailable when neither is set.
Result<std::string> default_latency_cache_dir();

/// `dir` when it is not empty, else default_latency_cache_dir().
Result<std::string> latency_cache_dir(const std::string& dir);

/// The cache file for `skb`'s machine inside `dir`: `dir/latency-<fingerprint>.json`.
std::string latency_cache_path(const std::string& dir, const Skb& skb);

/// The latencies cached in `path` for `skb`'s machine. not_found when the file does not
/// exist; parse_error naming the file and line when it is malformed or names cores the
/// machine lacks, or when it belongs to another machine.
Result<std::vector<CoreLatency>> load_latency_cache(const std::string& path, const Skb& skb);

/// The wake costs cached in `path` for `skb`'s machine. not_found when the file does not exist
/// or holds none; parse_error naming the file when it is malformed, belongs to another machine
/// or holds a malformed wake cost.
Result<std::vector<WakeCost>> load_wake_cost_cache(const std::string& path, const Skb& skb);

/// Writes `skb`'s measured latencies, wake costs, channel costs, answer costs and prefetch pair
/// distance to `path` (atomically, creating the directory). Latencies and wake costs `skb` has
/// nothing measured of keep what the file held.
Result<void> save_latency_cache(const std::string& path, const Skb& skb);

/// The other measured facts a latency cache keeps beside the latencies.
struct ChannelMeasurements {
  std::vector<ChannelCost> costs;            ///< Round trips per pair and channel kind.
  std::vector<AnswerCost> answer_costs;      ///< Round trips per pair and answer path.
  std::optional<std::size_t> prefetch_pair;  ///< Absent when it could not be measured.
};

/// The channel costs, answer costs and prefetch pair distance cached in `path` for `skb`'s
/// machine (empty for a cache written before they were measured). not_found when the file does not
/// exist; parse_error naming the file when it is malformed, belongs to another machine or holds a
/// channel or answer cost or prefetch distance that does not fit the machine.
Result<ChannelMeasurements> load_channel_measurements(const std::string& path, const Skb& skb);

/// Adds every measured fact cached for `skb`'s machine in `dir` (empty: the default cache
/// directory) to it, measuring nothing. false when there is no cache file; errors name a file
/// that is malformed or belongs to another machine.
Result<bool> load_cached_measurements(Skb& skb, const std::string& dir = {});

}  // namespace mk
