#include <fmt/format.h>

#include "mk/skb.h"
#include "skb/facts.h"

namespace mk {
namespace {

std::string pair_subject(CoreId a, CoreId b) {
  return fmt::format("pu {}-pu {}", a, b);
}

void list_matrix(const detail::DistanceMatrix& matrix, std::string_view what,
                 std::vector<Fact>& out) {
  const std::size_t n = matrix.indexes.size();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      out.push_back(
          Fact{fmt::format("{} {}-{} {}", what, matrix.indexes[i], what, matrix.indexes[j]),
               matrix.name.empty() ? "distance" : fmt::format("distance ({})", matrix.name),
               std::to_string(matrix.values[i * n + j]), FactSource::discovered});
    }
  }
}

void list_attribute(const std::string& subject, std::string_view property,
                    const MemoryAttribute& attribute, std::vector<Fact>& out) {
  if (attribute.local) {
    out.push_back(Fact{subject, std::string(property), std::to_string(*attribute.local),
                       FactSource::discovered});
  }
  for (const MemoryAccessValue& entry : attribute.by_initiator) {
    out.push_back(Fact{subject, fmt::format("{} from pus {}", property, fmt::join(entry.from, ",")),
                       std::to_string(entry.value), FactSource::discovered});
  }
}

}  // namespace

std::vector<Fact> Skb::facts() const {
  const detail::SkbFacts& facts = *facts_;
  std::vector<Fact> out;
  auto add = [&](std::string subject, std::string property, std::string value,
                 FactSource source = FactSource::discovered) {
    out.push_back(Fact{std::move(subject), std::move(property), std::move(value), source});
  };
  add("machine", "origin", facts.origin);
  add("machine", "fingerprint", facts.fingerprint, FactSource::derived);
  add("machine", "cache_line_size", std::to_string(facts.line_size), facts.line_size_source);
  add("machine", "prefetch_pair_distance", std::to_string(prefetch_pair_distance()),
      prefetch_pair_source());
  const MachineCounts n = counts();
  add("machine", "usable_pus", std::to_string(n.pus), FactSource::derived);
  add("machine", "usable_cores", std::to_string(n.cores), FactSource::derived);
  add("machine", "usable_numa_nodes", std::to_string(n.numa_nodes), FactSource::derived);
  add("machine", "usable_packages", std::to_string(n.packages), FactSource::derived);

  for (const CoreInfo& core : facts.cores) {
    const std::string subject = fmt::format("pu {}", core.pu);
    add(subject, "online", core.online ? "true" : "false");
    add(subject, "allowed", core.allowed ? "true" : "false");
    add(subject, "usable", core.usable() ? "true" : "false",
        core.disabled ? FactSource::asserted : FactSource::derived);
    if (!core.online) continue;
    add(subject, "core", std::to_string(core.core));
    add(subject, "package", std::to_string(core.package));
    add(subject, "numa_node", std::to_string(core.numa_node));
    for (std::size_t index : core.caches) {
      add(subject, fmt::format("L{}", facts.caches[index].level), fmt::format("cache {}", index));
    }
    if (core.cpukind >= 0) add(subject, "cpukind", std::to_string(core.cpukind), core.kind_source);
    if (core.efficiency >= 0) {
      add(subject, "efficiency", std::to_string(core.efficiency), core.kind_source);
    }
  }
  for (std::size_t i = 0; i < facts.caches.size(); ++i) {
    const CacheInfo& cache = facts.caches[i];
    const std::string subject = fmt::format("cache {}", i);
    add(subject, "level", std::to_string(cache.level));
    add(subject, "size", std::to_string(cache.size));
    add(subject, "line_size", std::to_string(cache.line_size));
    add(subject, "cores", fmt::format("{}", fmt::join(cache.cores, ",")));
  }
  for (const NumaNodeInfo& node : facts.numa_nodes) {
    const std::string subject = fmt::format("numa {}", node.os_index);
    add(subject, "memory_bytes", std::to_string(node.memory_bytes));
    add(subject, "cores", fmt::format("{}", fmt::join(node.cores, ",")));
    add(subject, "memory_only", node.memory_only() ? "true" : "false", FactSource::derived);
    add(subject, "near", fmt::format("{}", fmt::join(node.near, ",")));
    if (!node.kind.empty()) add(subject, "kind", node.kind);
    list_attribute(subject, "bandwidth_mib_s", node.bandwidth, out);
    list_attribute(subject, "latency_ns", node.latency, out);
  }
  // Every pair of nodes, memory-only ones included, on the SKB's scale.
  for (const NumaNodeInfo& from : facts.numa_nodes) {
    for (const NumaNodeInfo& to : facts.numa_nodes) {
      const bool from_matrix = facts.numa_distances && from.os_index != to.os_index &&
                               facts.numa_distances->row(from.os_index) &&
                               facts.numa_distances->row(to.os_index);
      add(fmt::format("numa {}-numa {}", from.os_index, to.os_index), "distance",
          std::to_string(detail::numa_node_distance(facts, from.os_index, to)),
          from_matrix ? FactSource::discovered : FactSource::derived);
    }
  }
  for (std::size_t i = 0; i < facts.cpukinds.size(); ++i) {
    const CpuKindInfo& kind = facts.cpukinds[i];
    const std::string subject = fmt::format("cpukind {}", i);
    add(subject, "efficiency", std::to_string(kind.efficiency), kind.source);
    if (!kind.name.empty()) add(subject, "name", kind.name, kind.source);
    add(subject, "cores", fmt::format("{}", fmt::join(kind.cores, ",")), kind.source);
  }
  if (facts.numa_distances) list_matrix(*facts.numa_distances, "numa", out);
  if (facts.package_distances) list_matrix(*facts.package_distances, "package", out);
  for (const auto& [pair, value] : facts.asserted_distances) {
    add(pair_subject(pair.first, pair.second), "distance", std::to_string(value),
        FactSource::asserted);
  }
  for (const auto& [pair, latency] : facts.latencies) {
    add(pair_subject(pair.first, pair.second), "latency_min_ns",
        std::to_string(latency.min.count()), latency.source);
    add(pair_subject(pair.first, pair.second), "latency_median_ns",
        std::to_string(latency.median.count()), latency.source);
  }
  for (const auto& [pair, costs] : facts.channel_costs) {
    for (const auto& [kind, cost] : costs) {
      add(pair_subject(pair.first, pair.second), fmt::format("{}_median_ns", to_string(kind)),
          std::to_string(cost.median.count()), cost.source);
    }
    // The choice the costs make, both ways, unless a facts file made it.
    for (auto [from, to] : {pair, std::pair(pair.second, pair.first)}) {
      if (transport_source(from, to) != FactSource::measured) continue;
      add(fmt::format("pu {}->pu {}", from, to), "transport",
          std::string(to_string(transport(from, to))), FactSource::measured);
    }
  }
  for (const auto& [pair, costs] : facts.answer_costs) {
    for (const auto& [path, cost] : costs) {
      add(pair_subject(pair.first, pair.second),
          fmt::format("answer_{}_median_ns", to_string(path)), std::to_string(cost.median.count()),
          cost.source);
    }
    for (auto [from, to] : {pair, std::pair(pair.second, pair.first)}) {
      if (answer_path_source(from, to) != FactSource::measured) continue;
      add(fmt::format("pu {}->pu {}", from, to), "answer_path",
          std::string(to_string(answer_path(from, to))), FactSource::measured);
    }
  }
  for (const auto& [pair, path] : facts.asserted_answer_paths) {
    add(fmt::format("pu {}->pu {}", pair.first, pair.second), "answer_path",
        std::string(to_string(path)), FactSource::asserted);
  }
  for (const auto& [pair, kind] : facts.asserted_transports) {
    add(fmt::format("pu {}->pu {}", pair.first, pair.second), "transport",
        std::string(to_string(kind)), FactSource::asserted);
  }
  if (facts.asserted_ring_slots) {
    add("machine", "ring_slots", std::to_string(*facts.asserted_ring_slots), FactSource::asserted);
  }
  if (facts.asserted_poll_budget) {
    add("machine", "poll_budget_ns", std::to_string(facts.asserted_poll_budget->count()),
        FactSource::asserted);
  }
  for (const auto& [mechanism, cost] : facts.wake_costs) {
    const std::string subject = fmt::format("wake {}", to_string(mechanism));
    add(subject, "wake_min_ns", std::to_string(cost.min.count()), cost.source);
    add(subject, "wake_median_ns", std::to_string(cost.median.count()), cost.source);
  }
  if (facts.asserted_wake_mechanism) {
    add("machine", "wake_mechanism", std::string(to_string(*facts.asserted_wake_mechanism)),
        FactSource::asserted);
  }
  return out;
}

}  // namespace mk
