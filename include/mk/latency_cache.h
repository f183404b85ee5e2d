// The latency cache: measured round trips and wake costs kept in a file per machine, so that
// a second run does not measure again.
#pragma once

#include <string>
#include <vector>

#include "mk/latency.h"
#include "mk/result.h"
#include "mk/skb.h"
#include "mk/wake.h"

namespace mk {

/// `$XDG_CACHE_HOME/mk`, else `$HOME/.cache/mk`; unavailable when neither is set.
Result<std::string> default_latency_cache_dir();

/// The cache file for `skb`'s machine inside `dir`: `dir/latency-<fingerprint>.json`.
std::string latency_cache_path(const std::string& dir, const Skb& skb);

/// The latencies cached in `path` for `skb`'s machine. not_found when the file does not
/// exist; parse_error naming the file and line when it is malformed or names cores the
/// machine lacks, or when it belongs to another machine.
Result<std::vector<CoreLatency>> load_latency_cache(const std::string& path, const Skb& skb);

/// The wake costs cached in `path` for `skb`'s machine. not_found when the file does not exist
/// or holds none; parse_error as for load_latency_cache.
Result<std::vector<WakeCost>> load_wake_cost_cache(const std::string& path, const Skb& skb);

/// Writes `skb`'s measured latencies and wake costs to `path` (atomically, creating the
/// directory). Of the two kinds, one `skb` has nothing measured of keeps what the file held.
Result<void> save_latency_cache(const std::string& path, const Skb& skb);

}  // namespace mk
