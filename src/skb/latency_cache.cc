#include "mk/latency_cache.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "skb/cache_entry.h"
#include "skb/channel_measurements.h"
#include "skb/json_errors.h"

namespace mk {

Result<std::string> default_latency_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return fmt::format("{}/mk", xdg);
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    return fmt::format("{}/.cache/mk", home);
  }
  return error(Errc::unavailable, "no cache directory: neither XDG_CACHE_HOME nor HOME is set");
}

Result<std::string> latency_cache_dir(const std::string& dir) {
  if (!dir.empty()) return dir;
  return default_latency_cache_dir();
}

std::string latency_cache_path(const std::string& dir, const Skb& skb) {
  return fmt::format("{}/latency-{}.json", dir, skb.fingerprint());
}

namespace detail {

Error cache_error(const std::string& path, std::string_view what) {
  return error(Errc::parse_error, fmt::format("latency cache '{}': {}", path, what));
}

Result<nlohmann::json> read_latency_cache_file(const std::string& path, const Skb& skb) {
  auto text = read_text_file(path, "latency cache");
  if (!text) return std::move(text).error();
  auto doc = parse_json(*text, path);
  if (!doc) return std::move(doc).error();
  if (!doc->is_object() || !doc->contains("fingerprint") || !(*doc)["fingerprint"].is_string()) {
    return cache_error(path, "expected an object with 'fingerprint'");
  }
  if ((*doc)["fingerprint"].get<std::string>() != skb.fingerprint()) {
    return cache_error(path, fmt::format("belongs to machine {}, not {}",
                                         text_excerpt((*doc)["fingerprint"].get<std::string>()),
                                         skb.fingerprint()));
  }
  return doc;
}

}  // namespace detail

Result<std::vector<CoreLatency>> load_latency_cache(const std::string& path, const Skb& skb) {
  auto doc = detail::read_latency_cache_file(path, skb);
  if (!doc) return std::move(doc).error();
  auto bad = [&](std::string_view what) { return detail::cache_error(path, what); };
  if (!doc->contains("latencies") || !(*doc)["latencies"].is_array()) {
    return bad("expected 'latencies', an array");
  }
  std::vector<CoreLatency> latencies;
  const auto& list = (*doc)["latencies"];
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& entry = list[i];
    if (!detail::has_core_pair(entry) || !detail::has_timing(entry)) {
      return bad(fmt::format("latencies[{}] is malformed: {}", i, detail::json_excerpt(entry)));
    }
    CoreLatency latency;
    latency.a = entry["between"][0].get<CoreId>();
    latency.b = entry["between"][1].get<CoreId>();
    latency.min = std::chrono::nanoseconds(entry["min_ns"].get<std::int64_t>());
    latency.median = std::chrono::nanoseconds(entry["median_ns"].get<std::int64_t>());
    latency.source = FactSource::measured;
    if (!skb.is_usable(latency.a) || !skb.is_usable(latency.b) || latency.a == latency.b ||
        latency.median < latency.min) {
      return bad(fmt::format("latencies[{}] does not fit this machine: {}", i,
                             detail::json_excerpt(entry)));
    }
    latencies.push_back(latency);
  }
  return latencies;
}

Result<std::vector<WakeCost>> load_wake_cost_cache(const std::string& path, const Skb& skb) {
  auto doc = detail::read_latency_cache_file(path, skb);
  if (!doc) return std::move(doc).error();
  if (!doc->contains("wake_costs")) {
    return error(Errc::not_found, fmt::format("latency cache '{}' holds no wake costs", path));
  }
  const auto& list = (*doc)["wake_costs"];
  auto bad = [&](std::string_view what) { return detail::cache_error(path, what); };
  if (!list.is_array()) return bad("'wake_costs' is not an array");
  std::vector<WakeCost> costs;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& entry = list[i];
    std::optional<WakeMechanism> mechanism;
    if (entry.is_object() && entry.contains("mechanism") && entry["mechanism"].is_string()) {
      mechanism = wake_mechanism_named(entry["mechanism"].get<std::string>());
    }
    if (!mechanism || !detail::has_timing(entry) ||
        entry["median_ns"].get<std::uint64_t>() < entry["min_ns"].get<std::uint64_t>()) {
      return bad(fmt::format("wake_costs[{}] is malformed: {}", i, detail::json_excerpt(entry)));
    }
    costs.push_back(WakeCost{
        *mechanism, std::chrono::nanoseconds(entry["min_ns"].get<std::int64_t>()),
        std::chrono::nanoseconds(entry["median_ns"].get<std::int64_t>()), FactSource::measured});
  }
  return costs;
}

Result<void> save_latency_cache(const std::string& path, const Skb& skb) {
  nlohmann::json doc;
  doc["fingerprint"] = skb.fingerprint();
  doc["origin"] = skb.origin();
  doc["latencies"] = nlohmann::json::array();
  doc["wake_costs"] = nlohmann::json::array();
  for (const WakeCost& cost : skb.wake_costs()) {
    if (cost.source != FactSource::measured) continue;
    doc["wake_costs"].push_back({{"mechanism", std::string(to_string(cost.mechanism))},
                                 {"min_ns", cost.min.count()},
                                 {"median_ns", cost.median.count()}});
  }
  const auto& cores = skb.usable_cores();
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      auto latency = skb.latency(cores[i], cores[j]);
      if (!latency || latency->source != FactSource::measured) continue;
      doc["latencies"].push_back({{"between", {cores[i], cores[j]}},
                                  {"min_ns", latency->min.count()},
                                  {"median_ns", latency->median.count()}});
    }
  }
  // What the file already holds of a kind nothing was measured of here stays: measuring
  // latencies does not forget the wake costs, nor the other way round.
  if (doc["latencies"].empty()) {
    if (auto kept = load_latency_cache(path, skb)) {
      for (const CoreLatency& latency : *kept) {
        doc["latencies"].push_back({{"between", {latency.a, latency.b}},
                                    {"min_ns", latency.min.count()},
                                    {"median_ns", latency.median.count()}});
      }
    }
  }
  if (doc["wake_costs"].empty()) {
    if (auto kept = load_wake_cost_cache(path, skb)) {
      for (const WakeCost& cost : *kept) {
        doc["wake_costs"].push_back({{"mechanism", std::string(to_string(cost.mechanism))},
                                     {"min_ns", cost.min.count()},
                                     {"median_ns", cost.median.count()}});
      }
    }
  }
  detail::add_channel_measurements(doc, skb);
  const std::filesystem::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
  if (ec) {
    return error(Errc::io_error, fmt::format("latency cache '{}': cannot create its directory: {}",
                                             path, ec.message()));
  }
  // Write then rename, so a reader never sees half a file.
  const std::string temporary = fmt::format("{}.{}.tmp", path, getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    // The origin may name a file whose path is not UTF-8.
    out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    if (!out) {
      return error(Errc::io_error, fmt::format("latency cache '{}': cannot write: {}", temporary,
                                               std::strerror(errno)));
    }
  }
  std::filesystem::rename(temporary, target, ec);
  if (ec) {
    std::filesystem::remove(temporary, ec);
    return error(Errc::io_error,
                 fmt::format("latency cache '{}': cannot rename: {}", path, ec.message()));
  }
  return {};
}

}  // namespace mk
