#include "skb/channel_measurements.h"

#include <fmt/format.h>

#include <limits>

#include "mk/latency_cache.h"
#include "skb/cache_entry.h"
#include "skb/host_line_size.h"
#include "skb/json_errors.h"

namespace mk {

namespace detail {

void add_channel_measurements(nlohmann::json& doc, const Skb& skb) {
  doc["channel_costs"] = nlohmann::json::array();
  const auto& cores = skb.usable_cores();
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      for (ChannelKind kind : kChannelKinds) {
        auto cost = skb.channel_cost(cores[i], cores[j], kind);
        if (!cost) continue;
        doc["channel_costs"].push_back({{"between", {cores[i], cores[j]}},
                                        {"kind", std::string(to_string(kind))},
                                        {"min_ns", cost->min.count()},
                                        {"median_ns", cost->median.count()}});
      }
    }
  }
  doc["answer_costs"] = nlohmann::json::array();
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      for (AnswerPath path : kAnswerPaths) {
        auto cost = skb.answer_cost(cores[i], cores[j], path);
        if (!cost) continue;
        doc["answer_costs"].push_back({{"between", {cores[i], cores[j]}},
                                       {"path", std::string(to_string(path))},
                                       {"min_ns", cost->min.count()},
                                       {"median_ns", cost->median.count()}});
      }
    }
  }
  doc["prefetch_pair_distance"] = nullptr;
  if (skb.prefetch_pair_source() == FactSource::measured) {
    doc["prefetch_pair_distance"] = skb.prefetch_pair_distance();
  }
}

}  // namespace detail

Result<ChannelMeasurements> load_channel_measurements(const std::string& path, const Skb& skb) {
  auto doc = detail::read_latency_cache_file(path, skb);
  if (!doc) return std::move(doc).error();
  auto bad = [&](std::string_view what) { return detail::cache_error(path, what); };
  ChannelMeasurements out;
  if (doc->contains("prefetch_pair_distance") && !(*doc)["prefetch_pair_distance"].is_null()) {
    const auto& pair = (*doc)["prefetch_pair_distance"];
    if (!pair.is_number_unsigned() || pair.get<std::uint64_t>() > 4096 ||
        !detail::plausible_line_size(pair.get<std::size_t>())) {
      return bad(fmt::format("prefetch_pair_distance {} is not a power of two from 16 to 4096",
                             detail::json_excerpt(pair)));
    }
    out.prefetch_pair = pair.get<std::size_t>();
  }
  if (doc->contains("answer_costs")) {
    const auto& answers = (*doc)["answer_costs"];
    if (!answers.is_array()) return bad("answer_costs must be an array");
    for (std::size_t i = 0; i < answers.size(); ++i) {
      const auto& entry = answers[i];
      const bool well_formed = detail::has_core_pair(entry) && detail::has_timing(entry) &&
                               entry.contains("path") && entry["path"].is_string();
      if (!well_formed) {
        return bad(
            fmt::format("answer_costs[{}] is malformed: {}", i, detail::json_excerpt(entry)));
      }
      const auto path = answer_path_named(entry["path"].get<std::string>());
      AnswerCost cost;
      cost.round_trip.a = entry["between"][0].get<CoreId>();
      cost.round_trip.b = entry["between"][1].get<CoreId>();
      cost.round_trip.min = std::chrono::nanoseconds(entry["min_ns"].get<std::int64_t>());
      cost.round_trip.median = std::chrono::nanoseconds(entry["median_ns"].get<std::int64_t>());
      if (!path || !skb.is_usable(cost.round_trip.a) || !skb.is_usable(cost.round_trip.b) ||
          cost.round_trip.a == cost.round_trip.b || cost.round_trip.median < cost.round_trip.min) {
        return bad(fmt::format("answer_costs[{}] does not fit this machine: {}", i,
                               detail::json_excerpt(entry)));
      }
      cost.path = *path;
      out.answer_costs.push_back(cost);
    }
  }
  if (!doc->contains("channel_costs")) return out;
  const auto& list = (*doc)["channel_costs"];
  if (!list.is_array()) return bad("channel_costs must be an array");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& entry = list[i];
    const bool well_formed = detail::has_core_pair(entry) && detail::has_timing(entry) &&
                             entry.contains("kind") && entry["kind"].is_string();
    if (!well_formed) {
      return bad(fmt::format("channel_costs[{}] is malformed: {}", i, detail::json_excerpt(entry)));
    }
    auto kind = parse_channel_kind(entry["kind"].get<std::string>());
    ChannelCost cost;
    cost.round_trip.a = entry["between"][0].get<CoreId>();
    cost.round_trip.b = entry["between"][1].get<CoreId>();
    cost.round_trip.min = std::chrono::nanoseconds(entry["min_ns"].get<std::int64_t>());
    cost.round_trip.median = std::chrono::nanoseconds(entry["median_ns"].get<std::int64_t>());
    if (!kind || *kind == ChannelKind::local || !skb.is_usable(cost.round_trip.a) ||
        !skb.is_usable(cost.round_trip.b) || cost.round_trip.a == cost.round_trip.b ||
        cost.round_trip.median < cost.round_trip.min) {
      return bad(fmt::format("channel_costs[{}] does not fit this machine: {}", i,
                             detail::json_excerpt(entry)));
    }
    cost.kind = *kind;
    out.costs.push_back(cost);
  }
  return out;
}

Result<bool> load_cached_measurements(Skb& skb, const std::string& dir) {
  // No cache directory at all is no cache.
  auto directory = latency_cache_dir(dir);
  if (!directory) return false;
  const std::string path = latency_cache_path(*directory, skb);
  auto latencies = load_latency_cache(path, skb);
  if (!latencies && latencies.error().code == Errc::not_found) return false;
  if (!latencies) return std::move(latencies).error();
  auto channels = load_channel_measurements(path, skb);
  if (!channels) return std::move(channels).error();
  Skb next = skb;
  if (auto added = next.add_measured_latencies(*latencies); !added) return added.error();
  if (auto added = next.add_measured_channel_costs(channels->costs); !added) return added.error();
  if (auto added = next.add_measured_answer_costs(channels->answer_costs); !added) {
    return added.error();
  }
  if (channels->prefetch_pair) {
    if (auto added = next.add_measured_prefetch_pair(*channels->prefetch_pair); !added) {
      return added.error();
    }
  }
  // A file without wake costs (not_found) has none to add.
  auto wakes = load_wake_cost_cache(path, skb);
  if (!wakes && wakes.error().code != Errc::not_found) return std::move(wakes).error();
  if (wakes) {
    if (auto added = next.add_measured_wake_costs(*wakes); !added) return added.error();
  }
  skb = std::move(next);
  return true;
}

}  // namespace mk
