// detail::SkbFacts: everything an Skb knows, as plain data. Queries are pure functions of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mk/channel.h"
#include "mk/fact.h"
#include "mk/latency.h"
#include "mk/topology.h"

namespace mk::detail {

/// A distance matrix from hwloc, between NUMA nodes (by OS index) or packages (by logical
/// index).
struct DistanceMatrix {
  std::string name;                   // hwloc's name, such as "NUMALatency"; may be empty
  std::vector<int> indexes;           // which node/package each row and column is
  std::vector<std::uint64_t> values;  // row-major, indexes.size() squared

  /// The value normalised so that an object's distance to itself is 10 (ACPI SLIT scale).
  std::optional<int> normalized(int from, int to) const;
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

  std::optional<DistanceMatrix> numa_distances;
  std::optional<DistanceMatrix> package_distances;

  std::map<CorePair, CoreLatency> latencies;
  std::map<CorePair, int> asserted_distances;
  std::map<std::pair<CoreId, CoreId>, ChannelKind> asserted_transports;  // ordered (from, to)
  std::optional<std::size_t> asserted_ring_slots;
  std::optional<std::chrono::nanoseconds> asserted_poll_budget;

  /// The core with OS index `pu`, or nullptr.
  const CoreInfo* find(CoreId pu) const;
  CoreInfo* find(CoreId pu);
  /// Recomputes `usable` after cores changed.
  void refresh_usable();
};

/// Distance on the docs/skb.md scale, ignoring assertions; nullopt for an offline core.
std::optional<int> topology_distance(const SkbFacts& facts, CoreId a, CoreId b);

/// Latency (median, ns) when every pair of `cores` has one, distance otherwise: the metric
/// routes and the central core order by.
class Proximity {
 public:
  Proximity(const SkbFacts& facts, const std::vector<CoreId>& cores);
  /// Cost between two of the cores given to the constructor (0 for a core to itself).
  std::int64_t operator()(CoreId a, CoreId b) const;

 private:
  const SkbFacts& facts_;
  bool by_latency_;
};

/// A stable 64-bit FNV-1a hash as 16 hex digits.
std::string fnv1a_hex(std::string_view text);

}  // namespace mk::detail
