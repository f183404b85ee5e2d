// What every reader of the latency cache shares: the file's checks (a JSON object of this
// machine), and the shapes of its entries, checked before any value is narrowed.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mk/core_id.h"
#include "mk/result.h"
#include "mk/skb.h"

namespace mk::detail {

/// A parse_error about the latency cache at `path`.
Error cache_error(const std::string& path, std::string_view what);

/// The latency cache at `path`, parsed, once it is a JSON object whose "fingerprint" is
/// `skb`'s: not_found when there is no such file, else errors that name the file.
Result<nlohmann::json> read_latency_cache_file(const std::string& path, const Skb& skb);

/// True when `value` is an unsigned number no greater than `max` (larger ones would wrap when
/// narrowed).
inline bool fits_unsigned(const nlohmann::json& value, std::uint64_t max) {
  return value.is_number_unsigned() && value.get<std::uint64_t>() <= max;
}

/// True when `entry` is an object whose "between" is two core ids.
inline bool has_core_pair(const nlohmann::json& entry) {
  constexpr std::uint64_t kMaxCore = std::numeric_limits<CoreId>::max();
  return entry.is_object() && entry.contains("between") && entry["between"].is_array() &&
         entry["between"].size() == 2 && fits_unsigned(entry["between"][0], kMaxCore) &&
         fits_unsigned(entry["between"][1], kMaxCore);
}

/// True when `entry` is an object whose "min_ns" and "median_ns" are nanosecond counts.
inline bool has_timing(const nlohmann::json& entry) {
  constexpr std::uint64_t kMaxNs = std::numeric_limits<std::int64_t>::max();
  return entry.is_object() && entry.contains("min_ns") && fits_unsigned(entry["min_ns"], kMaxNs) &&
         entry.contains("median_ns") && fits_unsigned(entry["median_ns"], kMaxNs);
}

}  // namespace mk::detail
