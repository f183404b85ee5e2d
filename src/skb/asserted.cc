// Asserted facts: a user's JSON file that overrides or adds facts (format in docs/skb.md).
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "mk/skb.h"
#include "skb/facts.h"
#include "skb/host_line_size.h"
#include "skb/json_errors.h"

namespace mk {
namespace {

using nlohmann::json;

// Bounds that catch typos (a latency in seconds, a ring of a billion slots), not policy.
constexpr std::int64_t kMaxLatencyNs = 1'000'000'000;
constexpr std::int64_t kMaxDistance = 1'000'000;
// Slot counts are the transport's to judge (mk/channel_geometry.h): this only keeps a count a
// number of slots at all.
constexpr std::int64_t kMaxRingSlots = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMaxPollBudgetNs = 10'000'000'000;
constexpr double kMaxClockGhz = 100;

// Applies one facts document to a copy of the facts; the first problem ends it.
class Asserter {
 public:
  Asserter(detail::SkbFacts& facts, std::string_view name) : facts_(facts), name_(name) {}

  Result<void> apply(const json& doc) {
    if (!doc.is_object()) return fail("", "the document must be a JSON object");
    static const std::set<std::string> kKeys = {
        "cpukinds",   "cores",          "latencies",       "distances",
        "transports", "answer_paths",   "cache_line_size", "prefetch_pair_distance",
        "ring_slots", "poll_budget_ns", "topology",        "clock_ghz",
        "notes",      "wake_mechanism", "wake_costs"};
    if (auto bad = unknown_key(doc, kKeys, "")) return std::move(*bad);
    // Descriptions for people and for tools that load the machine themselves (mk-bench
    // --profile); the SKB checks their form and keeps nothing of them.
    if (auto r = described(doc); !r) return r;
    // Kinds first, so that cores may name the asserted kinds.
    if (doc.contains("cpukinds")) {
      if (auto r = cpukinds(doc["cpukinds"]); !r) return r;
    }
    if (doc.contains("cores")) {
      if (auto r = each(doc["cores"], "cores", &Asserter::core); !r) return r;
    }
    if (doc.contains("latencies")) {
      if (auto r = each(doc["latencies"], "latencies", &Asserter::latency); !r) return r;
    }
    if (doc.contains("distances")) {
      if (auto r = each(doc["distances"], "distances", &Asserter::distance); !r) return r;
    }
    if (doc.contains("transports")) {
      if (auto r = each(doc["transports"], "transports", &Asserter::transport); !r) return r;
    }
    if (doc.contains("answer_paths")) {
      if (auto r = each(doc["answer_paths"], "answer_paths", &Asserter::answer_path); !r) return r;
    }
    if (doc.contains("cache_line_size")) {
      auto size = line_bytes(doc["cache_line_size"], "cache_line_size");
      if (!size) return std::move(size).error();
      facts_.line_size = *size;
      facts_.line_size_source = FactSource::asserted;
    }
    if (doc.contains("prefetch_pair_distance")) {
      auto pair = line_bytes(doc["prefetch_pair_distance"], "prefetch_pair_distance");
      if (!pair) return std::move(pair).error();
      if (*pair < facts_.line_size) {
        return fail("prefetch_pair_distance", fmt::format("{} is less than the cache line size, {}",
                                                          *pair, facts_.line_size));
      }
      facts_.asserted_prefetch_pair = *pair;
    }
    if (doc.contains("ring_slots")) {
      auto slots = integer(doc["ring_slots"], "ring_slots", 1, kMaxRingSlots);
      if (!slots) return std::move(slots).error();
      facts_.asserted_ring_slots = static_cast<std::size_t>(*slots);
    }
    if (doc.contains("poll_budget_ns")) {
      auto budget = integer(doc["poll_budget_ns"], "poll_budget_ns", 0, kMaxPollBudgetNs);
      if (!budget) return std::move(budget).error();
      facts_.asserted_poll_budget = std::chrono::nanoseconds(*budget);
    }
    if (doc.contains("wake_mechanism")) {
      auto mechanism = wake_mechanism(doc["wake_mechanism"], "wake_mechanism");
      if (!mechanism) return std::move(mechanism).error();
      facts_.asserted_wake_mechanism = *mechanism;
    }
    if (doc.contains("wake_costs")) {
      if (auto r = each(doc["wake_costs"], "wake_costs", &Asserter::wake_cost); !r) return r;
    }
    facts_.refresh_usable();
    if (facts_.usable.empty()) return fail("cores", "the facts leave no usable core");
    return {};
  }

 private:
  Result<void> described(const json& doc) const {
    if (doc.contains("topology")) {
      const json& topology = doc["topology"];
      if (!topology.is_string() || topology.get<std::string>().empty()) {
        return fail("topology",
                    fmt::format("{} is not a non-empty string", detail::json_excerpt(topology)));
      }
    }
    if (doc.contains("clock_ghz")) {
      const json& clock = doc["clock_ghz"];
      if (!clock.is_number() || !(clock.get<double>() > 0) || clock.get<double>() > kMaxClockGhz) {
        return fail("clock_ghz", fmt::format("{} is not a number in (0, {}]",
                                             detail::json_excerpt(clock), kMaxClockGhz));
      }
    }
    if (doc.contains("notes")) {
      const json& notes = doc["notes"];
      if (!notes.is_array()) return fail("notes", "must be an array of strings");
      for (std::size_t i = 0; i < notes.size(); ++i) {
        if (!notes[i].is_string()) {
          return fail(fmt::format("notes[{}]", i),
                      fmt::format("{} is not a string", detail::json_excerpt(notes[i])));
        }
      }
    }
    return {};
  }

  // A size in bytes of what the hardware moves: a power of two from 16 to 4096.
  Result<std::size_t> line_bytes(const json& value, std::string_view path) const {
    auto size = integer(value, path, 16, 4096);
    if (!size) return std::move(size).error();
    if (!detail::plausible_line_size(static_cast<std::size_t>(*size))) {
      return fail(path, fmt::format("{} is not a power of two", *size));
    }
    return static_cast<std::size_t>(*size);
  }

  Error fail(std::string_view path, std::string_view what) const {
    return error(Errc::invalid_argument, path.empty()
                                             ? fmt::format("{}: {}", name_, what)
                                             : fmt::format("{}: {}: {}", name_, path, what));
  }

  std::optional<Error> unknown_key(const json& object, const std::set<std::string>& known,
                                   std::string_view path) const {
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (!known.contains(it.key())) {
        return fail(path, fmt::format("unknown field '{}' (expected one of: {})",
                                      detail::text_excerpt(it.key()), fmt::join(known, ", ")));
      }
    }
    return std::nullopt;
  }

  Result<std::int64_t> integer(const json& value, std::string_view path, std::int64_t min,
                               std::int64_t max) const {
    if (!value.is_number_integer()) {
      return fail(path, fmt::format("{} is not an integer", detail::json_excerpt(value)));
    }
    const bool is_unsigned = value.is_number_unsigned();
    if (is_unsigned && value.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
      return fail(
          path, fmt::format("{} is out of range [{}, {}]", detail::json_excerpt(value), min, max));
    }
    const auto number = value.get<std::int64_t>();
    if (number < min || number > max) {
      return fail(path, fmt::format("{} is out of range [{}, {}]", number, min, max));
    }
    return number;
  }

  Result<CoreId> existing_core(const json& value, std::string_view path) const {
    auto number = integer(value, path, 0, std::numeric_limits<CoreId>::max());
    if (!number) return std::move(number).error();
    const auto core = static_cast<CoreId>(*number);
    if (facts_.find(core) == nullptr) {
      return error(Errc::not_found, fmt::format("{}: {}: core {} does not exist on the {}", name_,
                                                path, core, facts_.origin));
    }
    return core;
  }

  // A pair as "between": [a, b] with two distinct existing cores.
  Result<std::pair<CoreId, CoreId>> pair(const json& value, std::string_view path) const {
    if (!value.is_array() || value.size() != 2) {
      return fail(path,
                  fmt::format("{} is not a pair of cores [a, b]", detail::json_excerpt(value)));
    }
    auto a = existing_core(value[0], fmt::format("{}[0]", path));
    if (!a) return std::move(a).error();
    auto b = existing_core(value[1], fmt::format("{}[1]", path));
    if (!b) return std::move(b).error();
    if (*a == *b) return fail(path, fmt::format("names core {} twice", *a));
    return std::pair(*a, *b);
  }

  Result<void> each(const json& list, std::string_view field,
                    Result<void> (Asserter::*apply_one)(const json&, const std::string&)) {
    if (!list.is_array()) return fail(field, "must be a JSON array");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string path = fmt::format("{}[{}]", field, i);
      if (!list[i].is_object()) return fail(path, "must be a JSON object");
      if (auto r = (this->*apply_one)(list[i], path); !r) return r;
    }
    return {};
  }

  Result<void> cpukinds(const json& list) {
    if (!list.is_array()) return fail("cpukinds", "must be a JSON array");
    std::vector<CpuKindInfo> kinds;
    std::set<CoreId> assigned;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string path = fmt::format("cpukinds[{}]", i);
      const json& entry = list[i];
      if (!entry.is_object()) return fail(path, "must be a JSON object");
      if (auto bad = unknown_key(entry, {"name", "efficiency", "cores"}, path)) return *bad;
      CpuKindInfo kind;
      kind.source = FactSource::asserted;
      if (entry.contains("name")) {
        if (!entry["name"].is_string()) return fail(path + ".name", "must be a string");
        kind.name = entry["name"].get<std::string>();
      }
      if (!entry.contains("efficiency")) return fail(path, "missing field 'efficiency'");
      auto efficiency = integer(entry["efficiency"], path + ".efficiency", 0, 1'000'000);
      if (!efficiency) return std::move(efficiency).error();
      kind.efficiency = static_cast<int>(*efficiency);
      if (!entry.contains("cores") || !entry["cores"].is_array()) {
        return fail(path + ".cores", "must be an array of cores");
      }
      for (std::size_t j = 0; j < entry["cores"].size(); ++j) {
        const std::string core_path = fmt::format("{}.cores[{}]", path, j);
        auto core = existing_core(entry["cores"][j], core_path);
        if (!core) return std::move(core).error();
        if (!assigned.insert(*core).second) {
          return fail(core_path, fmt::format("core {} is in two kinds", *core));
        }
        kind.cores.push_back(*core);
      }
      std::sort(kind.cores.begin(), kind.cores.end());
      kinds.push_back(std::move(kind));
    }
    for (CoreInfo& core : facts_.cores) {
      core.cpukind = -1;
      core.efficiency = -1;
      core.kind_source = FactSource::asserted;
    }
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      for (CoreId pu : kinds[k].cores) {
        CoreInfo& core = *facts_.find(pu);
        core.cpukind = static_cast<int>(k);
        core.efficiency = kinds[k].efficiency;
      }
    }
    facts_.cpukinds = std::move(kinds);
    return {};
  }

  Result<void> core(const json& entry, const std::string& path) {
    if (auto bad = unknown_key(entry, {"pu", "usable", "cpukind", "efficiency"}, path)) return *bad;
    if (!entry.contains("pu")) return fail(path, "missing field 'pu'");
    auto pu = existing_core(entry["pu"], path + ".pu");
    if (!pu) return std::move(pu).error();
    CoreInfo& core = *facts_.find(*pu);
    if (entry.contains("usable")) {
      const json& usable = entry["usable"];
      if (!usable.is_boolean()) return fail(path + ".usable", "must be true or false");
      if (usable.get<bool>() && !(core.online && core.allowed)) {
        return fail(path + ".usable",
                    fmt::format("core {} is {}: a facts file cannot make it usable", *pu,
                                core.online ? "not allowed to this process" : "offline"));
      }
      core.disabled = !usable.get<bool>();
    }
    if (entry.contains("cpukind")) {
      if (facts_.cpukinds.empty()) return fail(path + ".cpukind", "the machine has no cpukinds");
      auto kind = integer(entry["cpukind"], path + ".cpukind", 0,
                          static_cast<std::int64_t>(facts_.cpukinds.size()) - 1);
      if (!kind) return std::move(kind).error();
      for (CpuKindInfo& info : facts_.cpukinds)
        std::erase(info.cores, *pu);
      auto& cores = facts_.cpukinds[static_cast<std::size_t>(*kind)].cores;
      cores.insert(std::upper_bound(cores.begin(), cores.end(), *pu), *pu);
      core.cpukind = static_cast<int>(*kind);
      core.efficiency = facts_.cpukinds[static_cast<std::size_t>(*kind)].efficiency;
      core.kind_source = FactSource::asserted;
    }
    if (entry.contains("efficiency")) {
      auto efficiency = integer(entry["efficiency"], path + ".efficiency", 0, 1'000'000);
      if (!efficiency) return std::move(efficiency).error();
      core.efficiency = static_cast<int>(*efficiency);
      core.kind_source = FactSource::asserted;
    }
    return {};
  }

  /// An entry's `median_ns` (required) and `min_ns` (at most the median; the median when
  /// absent), in that order: min first.
  Result<std::pair<std::chrono::nanoseconds, std::chrono::nanoseconds>> min_and_median(
      const json& entry, const std::string& path) const {
    if (!entry.contains("median_ns")) return fail(path, "missing field 'median_ns'");
    auto median = integer(entry["median_ns"], path + ".median_ns", 0, kMaxLatencyNs);
    if (!median) return std::move(median).error();
    std::int64_t min = *median;
    if (entry.contains("min_ns")) {
      auto value = integer(entry["min_ns"], path + ".min_ns", 0, *median);
      if (!value) return std::move(value).error();
      min = *value;
    }
    return std::pair(std::chrono::nanoseconds(min), std::chrono::nanoseconds(*median));
  }

  Result<void> latency(const json& entry, const std::string& path) {
    if (auto bad = unknown_key(entry, {"between", "min_ns", "median_ns"}, path)) return *bad;
    if (!entry.contains("between")) return fail(path, "missing field 'between'");
    auto cores = pair(entry["between"], path + ".between");
    if (!cores) return std::move(cores).error();
    auto times = min_and_median(entry, path);
    if (!times) return std::move(times).error();
    facts_.latencies[detail::make_pair_key(cores->first, cores->second)] =
        CoreLatency{cores->first, cores->second, times->first, times->second, FactSource::asserted};
    return {};
  }

  Result<WakeMechanism> wake_mechanism(const json& value, std::string_view path) const {
    const std::string name =
        value.is_string() ? value.get<std::string>() : detail::json_excerpt(value);
    if (auto mechanism = wake_mechanism_named(name)) return *mechanism;
    return fail(path, fmt::format("unknown wake mechanism '{}' (expected eventfd, futex or "
                                  "msg_ring)",
                                  detail::text_excerpt(name)));
  }

  Result<void> wake_cost(const json& entry, const std::string& path) {
    if (auto bad = unknown_key(entry, {"mechanism", "min_ns", "median_ns"}, path)) return *bad;
    if (!entry.contains("mechanism")) return fail(path, "missing field 'mechanism'");
    auto mechanism = wake_mechanism(entry["mechanism"], path + ".mechanism");
    if (!mechanism) return std::move(mechanism).error();
    auto times = min_and_median(entry, path);
    if (!times) return std::move(times).error();
    facts_.wake_costs[*mechanism] =
        WakeCost{*mechanism, times->first, times->second, FactSource::asserted};
    return {};
  }

  Result<void> distance(const json& entry, const std::string& path) {
    if (auto bad = unknown_key(entry, {"between", "value"}, path)) return *bad;
    if (!entry.contains("between")) return fail(path, "missing field 'between'");
    auto cores = pair(entry["between"], path + ".between");
    if (!cores) return std::move(cores).error();
    if (!entry.contains("value")) return fail(path, "missing field 'value'");
    auto value = integer(entry["value"], path + ".value", 1, kMaxDistance);
    if (!value) return std::move(value).error();
    facts_.asserted_distances[detail::make_pair_key(cores->first, cores->second)] =
        static_cast<int>(*value);
    return {};
  }

  Result<void> transport(const json& entry, const std::string& path) {
    if (auto bad = unknown_key(entry, {"from", "to", "kind"}, path)) return *bad;
    for (const char* field : {"from", "to", "kind"}) {
      if (!entry.contains(field)) return fail(path, fmt::format("missing field '{}'", field));
    }
    auto from = existing_core(entry["from"], path + ".from");
    if (!from) return std::move(from).error();
    auto to = existing_core(entry["to"], path + ".to");
    if (!to) return std::move(to).error();
    const json& kind = entry["kind"];
    const std::string name =
        kind.is_string() ? kind.get<std::string>() : detail::json_excerpt(kind);
    ChannelKind parsed;
    if (name == "urpc") {
      parsed = ChannelKind::urpc;
    } else if (name == "lockfree") {
      parsed = ChannelKind::lockfree;
    } else if (name == "local" && *from == *to) {
      parsed = ChannelKind::local;
    } else if (name == "local") {
      return fail(path + ".kind", "'local' needs both ends on one core");
    } else {
      return fail(path + ".kind",
                  fmt::format("unknown transport '{}' (expected urpc, lockfree or local)",
                              detail::text_excerpt(name)));
    }
    facts_.asserted_transports[{*from, *to}] = parsed;
    return {};
  }

  Result<void> answer_path(const json& entry, const std::string& path) {
    if (auto bad = unknown_key(entry, {"from", "to", "path"}, path)) return *bad;
    for (const char* field : {"from", "to", "path"}) {
      if (!entry.contains(field)) return fail(path, fmt::format("missing field '{}'", field));
    }
    auto from = existing_core(entry["from"], path + ".from");
    if (!from) return std::move(from).error();
    auto to = existing_core(entry["to"], path + ".to");
    if (!to) return std::move(to).error();
    if (*from == *to) return fail(path, "a call to its own core has no line to answer in");
    const json& named = entry["path"];
    const std::string name =
        named.is_string() ? named.get<std::string>() : detail::json_excerpt(named);
    const std::optional<AnswerPath> parsed = answer_path_named(name);
    if (!parsed) {
      return fail(path + ".path", fmt::format("unknown answer path '{}' (expected channel or "
                                              "in_line)",
                                              detail::text_excerpt(name)));
    }
    facts_.asserted_answer_paths[{*from, *to}] = *parsed;
    return {};
  }

  detail::SkbFacts& facts_;
  std::string name_;
};

}  // namespace

Result<void> Skb::assert_facts_json(std::string_view json_text, std::string_view name) {
  auto doc = detail::parse_json(json_text, name);
  if (!doc) return std::move(doc).error();
  auto next = std::make_shared<detail::SkbFacts>(*facts_);
  if (auto applied = Asserter(*next, name).apply(*doc); !applied) return applied;
  facts_ = std::move(next);
  return {};
}

Result<void> Skb::assert_facts_file(const std::string& path) {
  auto text = detail::read_text_file(path, "facts file");
  if (!text) return std::move(text).error();
  return assert_facts_json(*text, path);
}

}  // namespace mk
