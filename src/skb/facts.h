// detail::SkbFacts: everything an Skb knows, as plain data. Queries are pure functions of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mk/answer_path.h"
#include "mk/channel_kind.h"
#include "mk/fact.h"
#include "mk/latency.h"
#include "mk/topology.h"
#include "mk/wake.h"

namespace mk::detail {

/// A distance matrix from hwloc, between NUMA nodes (by OS index) or packages (by logical
/// index).
struct DistanceMatrix {
  std::string name;                           // hwloc's name, such as "NUMALatency"; may be empty
  std::vector<int> indexes;                   // which node/package each row and column is
  std::vector<std::uint64_t> values;          // row-major, indexes.size() squared
  std::unordered_map<int, std::size_t> rows;  // index -> the first row that names it

  /// Fills `rows` from `indexes`; call after changing them.
  void index_rows();
  /// The row (and column) of `index`, if the matrix has one.
  std::optional<std::size_t> row(int index) const;
  /// The value normalised so that an object's distance to itself is 10 (ACPI SLIT scale).
  std::optional<int> normalized(int from, int to) const;
  /// normalized() by row and column.
  int normalized_at(std::size_t i, std::size_t j) const;
};

/// An unordered pair of cores, smaller first, as a map key.
using CorePair = std::pair<CoreId, CoreId>;
inline CorePair make_pair_key(CoreId a, CoreId b) {
  return a < b ? CorePair{a, b} : CorePair{b, a};
}

struct SkbFacts {
  std::string origin;
  bool live = false;
  std::string fingerprint;

  std::vector<CoreInfo> cores;  // ascending pu
  std::vector<CacheInfo> caches;
  std::vector<NumaNodeInfo> numa_nodes;  // ascending os_index
  std::vector<CpuKindInfo> cpukinds;
  std::vector<CoreId> usable;  // derived from cores after every change

  std::size_t line_size = 64;
  FactSource line_size_source = FactSource::discovered;
  // The adjacent-line prefetch pair distance; derived from line_size when neither is set.
  std::optional<std::size_t> measured_prefetch_pair;
  std::optional<std::size_t> asserted_prefetch_pair;

  std::optional<DistanceMatrix> numa_distances;
  std::optional<DistanceMatrix> package_distances;

  std::map<CorePair, CoreLatency> latencies;
  std::map<CorePair, std::map<ChannelKind, CoreLatency>> channel_costs;  // measured per kind
  std::map<CorePair, int> asserted_distances;
  std::map<std::pair<CoreId, CoreId>, ChannelKind> asserted_transports;   // ordered (from, to)
  std::map<CorePair, std::map<AnswerPath, CoreLatency>> answer_costs;     // measured per path
  std::map<std::pair<CoreId, CoreId>, AnswerPath> asserted_answer_paths;  // ordered (from, to)
  std::optional<std::size_t> asserted_ring_slots;
  std::optional<std::chrono::nanoseconds> asserted_poll_budget;
  std::map<WakeMechanism, WakeCost> wake_costs;  // measured or asserted, by mechanism
  std::optional<WakeMechanism> asserted_wake_mechanism;

  /// The core with OS index `pu`, or nullptr.
  const CoreInfo* find(CoreId pu) const;
  CoreInfo* find(CoreId pu);
  /// Recomputes `usable` after cores changed.
  void refresh_usable();
};

// The derived distance scale of docs/skb.md.
inline constexpr int kSameCore = 1;
inline constexpr int kCacheBase = 1;  // sharing a cache of level L costs 1 + L
inline constexpr int kSamePackage = 6;
inline constexpr int kSameNode = 10;
inline constexpr int kRemoteNode = 20;

/// Distance on the docs/skb.md scale, ignoring assertions; nullopt for an offline core.
std::optional<int> topology_distance(const SkbFacts& facts, CoreId a, CoreId b);

/// The part of topology_distance() for two online PUs that share neither a physical core nor
/// a cache: it depends on their NUMA nodes and packages alone.
int node_distance(const SkbFacts& facts, const CoreInfo& x, const CoreInfo& y);

/// Distance on the docs/skb.md scale from NUMA node `from` to `to` (any nodes, memory-only
/// ones included): hwloc's NUMA matrix, else the distance across the nodes' cores, else 20.
int numa_node_distance(const SkbFacts& facts, int from, const NumaNodeInfo& to);

/// Latency (median, ns) when every pair of `cores` has one, distance otherwise: the metric
/// routes and the central core order by.
class Proximity {
 public:
  Proximity(const SkbFacts& facts, const std::vector<CoreId>& cores);
  /// Cost between two of the cores given to the constructor (0 for a core to itself).
  std::int64_t operator()(CoreId a, CoreId b) const;
  /// True when the costs are latencies, false when they are distances.
  bool by_latency() const { return by_latency_; }

 private:
  const SkbFacts& facts_;
  bool by_latency_;
};

/// A stable 64-bit FNV-1a hash as 16 hex digits.
std::string fnv1a_hex(std::string_view text);

}  // namespace mk::detail
