#include "mk/skb.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "skb/facts.h"
#include "skb/host_line_size.h"
#include "skb/hwloc_loader.h"

namespace mk {
namespace {

// Without a measured wake cost, a kernel that finds nothing to do polls this long before it
// sleeps: long enough to catch the reply of a call to another core without paying a
// sleep/wake, short enough that an idle kernel costs close to nothing (docs/skb.md).
constexpr std::chrono::nanoseconds kDefaultPollBudget = std::chrono::microseconds(20);
// Bounds on a budget derived from a wake cost: below a microsecond a kernel would sleep between
// two messages of one burst; above a millisecond an idle system would burn a core's worth.
constexpr std::chrono::nanoseconds kMinDerivedPollBudget = std::chrono::microseconds(1);
constexpr std::chrono::nanoseconds kMaxDerivedPollBudget = std::chrono::milliseconds(1);

// Lines of 128 bytes or more are not known to travel in pairs; shorter ones are, on the x86
// cores whose adjacent-line prefetcher fetches 128-byte-aligned pairs (docs/skb.md).
constexpr std::size_t kUnpairedLineSize = 128;

}  // namespace

std::string_view to_string(FactSource source) noexcept {
  switch (source) {
    case FactSource::discovered:
      return "discovered";
    case FactSource::derived:
      return "derived";
    case FactSource::measured:
      return "measured";
    case FactSource::asserted:
      return "asserted";
  }
  return "unknown";
}

std::string_view to_string(WakeMechanism mechanism) noexcept {
  switch (mechanism) {
    case WakeMechanism::eventfd:
      return "eventfd";
    case WakeMechanism::futex:
      return "futex";
    case WakeMechanism::msg_ring:
      return "msg_ring";
  }
  return "unknown";
}

std::optional<WakeMechanism> wake_mechanism_named(std::string_view name) noexcept {
  for (WakeMechanism mechanism : kWakeMechanisms) {
    if (to_string(mechanism) == name) return mechanism;
  }
  return std::nullopt;
}

Skb::Skb(std::shared_ptr<const detail::SkbFacts> facts) : facts_(std::move(facts)) {}

Result<Skb> Skb::discover() {
  auto facts = detail::load_live();
  if (!facts) return std::move(facts).error();
  return Skb(std::move(facts).value());
}

Result<Skb> Skb::from_xml_file(const std::string& path) {
  auto facts = detail::load_xml_file(path);
  if (!facts) return std::move(facts).error();
  return Skb(std::move(facts).value());
}

Result<Skb> Skb::from_xml_text(std::string_view xml, std::string_view name) {
  auto facts = detail::load_xml_text(xml, name);
  if (!facts) return std::move(facts).error();
  return Skb(std::move(facts).value());
}

Result<Skb> Skb::from_synthetic(std::string_view description) {
  auto facts = detail::load_synthetic(description);
  if (!facts) return std::move(facts).error();
  return Skb(std::move(facts).value());
}

Result<Skb> Skb::load(std::string_view topology) {
  if (topology.empty()) return discover();
  const std::string text(topology);
  std::error_code ec;
  if (std::filesystem::exists(text, ec) || text.ends_with(".xml")) return from_xml_file(text);
  return from_synthetic(topology);
}

const std::string& Skb::origin() const {
  return facts_->origin;
}
bool Skb::is_live() const {
  return facts_->live;
}
const std::string& Skb::fingerprint() const {
  return facts_->fingerprint;
}
std::size_t Skb::cache_line_size() const {
  return facts_->line_size;
}
FactSource Skb::cache_line_size_source() const {
  return facts_->line_size_source;
}
std::size_t Skb::prefetch_pair_distance() const {
  const std::size_t line = facts_->line_size;
  std::size_t pair = line < kUnpairedLineSize ? 2 * line : line;
  if (facts_->asserted_prefetch_pair) {
    pair = *facts_->asserted_prefetch_pair;
  } else if (facts_->measured_prefetch_pair) {
    pair = *facts_->measured_prefetch_pair;
  }
  // A line is the least that travels; a pair measured before a larger line was asserted says
  // no more than that.
  return std::max(pair, line);
}
FactSource Skb::prefetch_pair_source() const {
  if (facts_->asserted_prefetch_pair) return FactSource::asserted;
  if (facts_->measured_prefetch_pair) return FactSource::measured;
  return FactSource::derived;
}
const std::vector<CoreId>& Skb::usable_cores() const {
  return facts_->usable;
}
const std::vector<CoreInfo>& Skb::cores() const {
  return facts_->cores;
}
const std::vector<CacheInfo>& Skb::caches() const {
  return facts_->caches;
}
const std::vector<NumaNodeInfo>& Skb::numa_nodes() const {
  return facts_->numa_nodes;
}
const std::vector<CpuKindInfo>& Skb::cpukinds() const {
  return facts_->cpukinds;
}

bool Skb::is_usable(CoreId core) const {
  const CoreInfo* info = facts_->find(core);
  return info != nullptr && info->usable();
}

Result<CoreInfo> Skb::core_info(CoreId core) const {
  const CoreInfo* info = facts_->find(core);
  if (info == nullptr) {
    return error(Errc::not_found, fmt::format("core {} does not exist on the {}", core, origin()));
  }
  return *info;
}

MachineCounts Skb::counts() const {
  std::vector<int> cores;
  std::vector<int> nodes;
  std::vector<int> packages;
  for (CoreId pu : facts_->usable) {
    const CoreInfo& info = *facts_->find(pu);
    if (info.core >= 0) cores.push_back(info.core);
    if (info.numa_node >= 0) nodes.push_back(info.numa_node);
    if (info.package >= 0) packages.push_back(info.package);
  }
  auto distinct = [](std::vector<int>& values) {
    std::sort(values.begin(), values.end());
    return static_cast<std::size_t>(std::unique(values.begin(), values.end()) - values.begin());
  };
  return MachineCounts{facts_->usable.size(), distinct(cores), distinct(nodes), distinct(packages)};
}

Result<int> Skb::numa_node_of(CoreId core) const {
  const CoreInfo* info = facts_->find(core);
  if (info == nullptr) {
    return error(Errc::not_found, fmt::format("core {} does not exist on the {}", core, origin()));
  }
  if (!info->online) {
    return error(Errc::not_found, fmt::format("core {} is offline: it has no NUMA node", core));
  }
  return info->numa_node;
}

Result<int> Skb::distance(CoreId a, CoreId b) const {
  for (CoreId core : {a, b}) {
    if (facts_->find(core) == nullptr) {
      return error(Errc::not_found,
                   fmt::format("core {} does not exist on the {}", core, origin()));
    }
  }
  if (auto it = facts_->asserted_distances.find(detail::make_pair_key(a, b));
      it != facts_->asserted_distances.end()) {
    return it->second;
  }
  if (auto value = detail::topology_distance(*facts_, a, b)) return *value;
  return error(Errc::not_found,
               fmt::format("no distance between cores {} and {}: one is offline", a, b));
}

Result<CoreLatency> Skb::latency(CoreId a, CoreId b) const {
  auto it = facts_->latencies.find(detail::make_pair_key(a, b));
  if (it == facts_->latencies.end()) {
    return error(Errc::not_found,
                 fmt::format("no latency measured or asserted between cores {} and {}", a, b));
  }
  return it->second;
}

bool Skb::has_latencies(std::span<const CoreId> cores) const {
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      if (cores[i] != cores[j] &&
          !facts_->latencies.contains(detail::make_pair_key(cores[i], cores[j]))) {
        return false;
      }
    }
  }
  return true;
}

Result<std::vector<CoreId>> Skb::cores_of_numa_node(int os_index) const {
  const auto& nodes = facts_->numa_nodes;
  auto node = std::find_if(nodes.begin(), nodes.end(),
                           [&](const NumaNodeInfo& n) { return n.os_index == os_index; });
  if (node == nodes.end()) {
    return error(Errc::not_found,
                 fmt::format("NUMA node {} does not exist on the {}", os_index, origin()));
  }
  std::vector<CoreId> result;
  for (CoreId core : node->cores) {
    if (is_usable(core)) result.push_back(core);
  }
  return result;
}

Result<std::vector<CoreId>> Skb::cores_of_package(int package) const {
  std::vector<CoreId> result;
  bool exists = false;
  for (const CoreInfo& core : facts_->cores) {
    if (core.package != package || package < 0) continue;
    exists = true;
    if (core.usable()) result.push_back(core.pu);
  }
  if (!exists) {
    return error(Errc::not_found,
                 fmt::format("package {} does not exist on the {}", package, origin()));
  }
  return result;
}

Result<std::vector<CoreId>> Skb::cores_sharing_cache(CoreId core, int level) const {
  const CoreInfo* info = facts_->find(core);
  if (info == nullptr) {
    return error(Errc::not_found, fmt::format("core {} does not exist on the {}", core, origin()));
  }
  for (std::size_t index : info->caches) {
    const CacheInfo& cache = facts_->caches[index];
    if (cache.level != level) continue;
    std::vector<CoreId> result;
    for (CoreId other : cache.cores) {
      if (is_usable(other)) result.push_back(other);
    }
    return result;
  }
  return error(Errc::not_found, fmt::format("core {} has no L{} data cache", core, level));
}

namespace {

// The cheaper of urpc and lockfree for a pair whose round trips over both were measured.
std::optional<ChannelKind> measured_choice(const detail::SkbFacts& facts, CoreId from, CoreId to) {
  if (from == to) return std::nullopt;
  auto pair = facts.channel_costs.find(detail::make_pair_key(from, to));
  if (pair == facts.channel_costs.end()) return std::nullopt;
  auto urpc = pair->second.find(ChannelKind::urpc);
  auto lockfree = pair->second.find(ChannelKind::lockfree);
  if (urpc == pair->second.end() || lockfree == pair->second.end()) return std::nullopt;
  return lockfree->second.median < urpc->second.median ? ChannelKind::lockfree : ChannelKind::urpc;
}

}  // namespace

ChannelKind Skb::transport(CoreId from, CoreId to) const {
  if (auto it = facts_->asserted_transports.find({from, to});
      it != facts_->asserted_transports.end()) {
    return it->second;
  }
  if (from == to) return ChannelKind::local;
  return measured_choice(*facts_, from, to).value_or(ChannelKind::urpc);
}

FactSource Skb::transport_source(CoreId from, CoreId to) const {
  if (facts_->asserted_transports.contains({from, to})) return FactSource::asserted;
  if (measured_choice(*facts_, from, to)) return FactSource::measured;
  return FactSource::derived;
}

Result<CoreLatency> Skb::channel_cost(CoreId a, CoreId b, ChannelKind kind) const {
  if (auto pair = facts_->channel_costs.find(detail::make_pair_key(a, b));
      pair != facts_->channel_costs.end()) {
    if (auto cost = pair->second.find(kind); cost != pair->second.end()) return cost->second;
  }
  return error(Errc::not_found, fmt::format("no {} round trip measured between cores {} and {}",
                                            to_string(kind), a, b));
}

namespace {

// The path a pair's measured round trips choose, when both were measured.
std::optional<AnswerPath> measured_answer_path(const detail::SkbFacts& facts, CoreId from,
                                               CoreId to) {
  if (from == to) return std::nullopt;
  auto pair = facts.answer_costs.find(detail::make_pair_key(from, to));
  if (pair == facts.answer_costs.end()) return std::nullopt;
  auto channel = pair->second.find(AnswerPath::channel);
  auto in_line = pair->second.find(AnswerPath::in_line);
  if (channel == pair->second.end() || in_line == pair->second.end()) return std::nullopt;
  const double bar = Skb::kInLineAdvantage * static_cast<double>(channel->second.median.count());
  return static_cast<double>(in_line->second.median.count()) < bar ? AnswerPath::in_line
                                                                   : AnswerPath::channel;
}

}  // namespace

AnswerPath Skb::answer_path(CoreId from, CoreId to) const {
  if (auto it = facts_->asserted_answer_paths.find({from, to});
      it != facts_->asserted_answer_paths.end()) {
    return it->second;
  }
  return measured_answer_path(*facts_, from, to).value_or(AnswerPath::channel);
}

FactSource Skb::answer_path_source(CoreId from, CoreId to) const {
  if (facts_->asserted_answer_paths.contains({from, to})) return FactSource::asserted;
  if (measured_answer_path(*facts_, from, to)) return FactSource::measured;
  return FactSource::derived;
}

Result<CoreLatency> Skb::answer_cost(CoreId a, CoreId b, AnswerPath path) const {
  if (auto pair = facts_->answer_costs.find(detail::make_pair_key(a, b));
      pair != facts_->answer_costs.end()) {
    if (auto cost = pair->second.find(path); cost != pair->second.end()) return cost->second;
  }
  return error(Errc::not_found,
               fmt::format("no round trip with answers {} measured between cores {} and {}",
                           path == AnswerPath::in_line ? "in line" : "through the channel", a, b));
}

std::optional<std::size_t> Skb::asserted_ring_slots() const {
  return facts_->asserted_ring_slots;
}

std::chrono::nanoseconds Skb::poll_budget(std::size_t kernels, WakeMechanism mechanism) const {
  if (kernels > facts_->usable.size()) return std::chrono::nanoseconds(0);
  if (facts_->asserted_poll_budget) return *facts_->asserted_poll_budget;
  // Ski rental: a kernel that polls as long as a wake costs before it sleeps spends at most
  // twice what knowing when the next message comes would have cost it.
  auto cost = facts_->wake_costs.find(mechanism);
  if (cost == facts_->wake_costs.end()) return kDefaultPollBudget;
  return std::clamp(cost->second.median, kMinDerivedPollBudget, kMaxDerivedPollBudget);
}

std::chrono::nanoseconds Skb::poll_budget(std::size_t kernels) const {
  return poll_budget(kernels, wake_mechanism());
}

std::vector<WakeCost> Skb::wake_costs() const {
  std::vector<WakeCost> costs;
  for (const auto& [mechanism, cost] : facts_->wake_costs)
    costs.push_back(cost);
  return costs;
}

Result<WakeCost> Skb::wake_cost(WakeMechanism mechanism) const {
  auto it = facts_->wake_costs.find(mechanism);
  if (it == facts_->wake_costs.end()) {
    return error(Errc::not_found,
                 fmt::format("no wake cost measured or asserted for {}", to_string(mechanism)));
  }
  return it->second;
}

std::optional<WakeMechanism> Skb::asserted_wake_mechanism() const {
  return facts_->asserted_wake_mechanism;
}

WakeMechanism Skb::wake_mechanism(std::span<const WakeMechanism> usable) const {
  if (usable.empty()) return WakeMechanism::eventfd;
  auto allowed = [&](WakeMechanism mechanism) {
    return std::find(usable.begin(), usable.end(), mechanism) != usable.end();
  };
  if (facts_->asserted_wake_mechanism && allowed(*facts_->asserted_wake_mechanism)) {
    return *facts_->asserted_wake_mechanism;
  }
  std::optional<WakeCost> best;
  for (const auto& [mechanism, cost] : facts_->wake_costs) {
    if (allowed(mechanism) && (!best || cost.median < best->median)) best = cost;
  }
  return best ? best->mechanism : usable.front();
}

Result<void> Skb::add_measured_wake_costs(std::span<const WakeCost> costs) {
  auto next = std::make_shared<detail::SkbFacts>(*facts_);
  for (const WakeCost& cost : costs) {
    if (!wake_mechanism_named(to_string(cost.mechanism)) || cost.min.count() < 0 ||
        cost.median < cost.min) {
      return error(Errc::invalid_argument,
                   fmt::format("measured wake cost of {} is inconsistent (min {} ns, median {} ns)",
                               to_string(cost.mechanism), cost.min.count(), cost.median.count()));
    }
    auto [slot, inserted] = next->wake_costs.try_emplace(cost.mechanism, cost);
    if (!inserted && slot->second.source == FactSource::asserted) continue;
    slot->second = cost;
    slot->second.source = FactSource::measured;
  }
  facts_ = std::move(next);
  return {};
}

Result<void> Skb::add_measured_latencies(std::span<const CoreLatency> latencies) {
  auto next = std::make_shared<detail::SkbFacts>(*facts_);
  for (const CoreLatency& latency : latencies) {
    for (CoreId core : {latency.a, latency.b}) {
      if (!is_usable(core)) {
        return error(Errc::invalid_argument,
                     fmt::format("measured latency names core {}, which is not usable", core));
      }
    }
    if (latency.a == latency.b || latency.min.count() < 0 || latency.median < latency.min) {
      return error(Errc::invalid_argument,
                   fmt::format("measured latency {}-{} is inconsistent (min {} ns, median {} ns)",
                               latency.a, latency.b, latency.min.count(), latency.median.count()));
    }
    auto [slot, inserted] =
        next->latencies.try_emplace(detail::make_pair_key(latency.a, latency.b), latency);
    if (!inserted && slot->second.source == FactSource::asserted) continue;
    slot->second = latency;
    slot->second.source = FactSource::measured;
  }
  facts_ = std::move(next);
  return {};
}

Result<void> Skb::add_measured_channel_costs(std::span<const ChannelCost> costs) {
  auto next = std::make_shared<detail::SkbFacts>(*facts_);
  for (const ChannelCost& cost : costs) {
    const CoreLatency& trip = cost.round_trip;
    for (CoreId core : {trip.a, trip.b}) {
      if (!is_usable(core)) {
        return error(Errc::invalid_argument,
                     fmt::format("measured {} round trip names core {}, which is not usable",
                                 to_string(cost.kind), core));
      }
    }
    if (cost.kind == ChannelKind::local || trip.a == trip.b || trip.min.count() < 0 ||
        trip.median < trip.min) {
      return error(
          Errc::invalid_argument,
          fmt::format("measured {} round trip {}-{} is inconsistent (min {} ns, median "
                      "{} ns)",
                      to_string(cost.kind), trip.a, trip.b, trip.min.count(), trip.median.count()));
    }
    CoreLatency& slot = next->channel_costs[detail::make_pair_key(trip.a, trip.b)][cost.kind];
    slot = trip;
    slot.source = FactSource::measured;
  }
  facts_ = std::move(next);
  return {};
}

Result<void> Skb::add_measured_answer_costs(std::span<const AnswerCost> costs) {
  auto next = std::make_shared<detail::SkbFacts>(*facts_);
  for (const AnswerCost& cost : costs) {
    const CoreLatency& trip = cost.round_trip;
    for (CoreId core : {trip.a, trip.b}) {
      if (!is_usable(core)) {
        return error(Errc::invalid_argument,
                     fmt::format("measured {} round trip names core {}, which is not usable",
                                 to_string(cost.path), core));
      }
    }
    if (trip.a == trip.b || trip.min.count() < 0 || trip.median < trip.min) {
      return error(
          Errc::invalid_argument,
          fmt::format("measured {} round trip {}-{} is inconsistent (min {} ns, median {} ns)",
                      to_string(cost.path), trip.a, trip.b, trip.min.count(), trip.median.count()));
    }
    CoreLatency& slot = next->answer_costs[detail::make_pair_key(trip.a, trip.b)][cost.path];
    slot = trip;
    slot.source = FactSource::measured;
  }
  facts_ = std::move(next);
  return {};
}

Result<void> Skb::add_measured_prefetch_pair(std::size_t bytes) {
  if (!detail::plausible_line_size(bytes)) {
    return error(Errc::invalid_argument,
                 fmt::format("measured prefetch pair distance {} is not a power of two from 16 "
                             "to 4096 bytes",
                             bytes));
  }
  auto next = std::make_shared<detail::SkbFacts>(*facts_);
  next->measured_prefetch_pair = bytes;
  facts_ = std::move(next);
  return {};
}

}  // namespace mk
