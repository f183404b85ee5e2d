// mk::CoreInfo, mk::CacheInfo, mk::NumaNodeInfo, mk::CpuKindInfo: the machine's parts as the
// SKB sees them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mk/core_id.h"
#include "mk/fact.h"

namespace mk {

/// One data or unified cache and the PUs that share it.
struct CacheInfo {
  int level = 0;                ///< 1 for L1d, 2 for L2, and so on.
  std::uint64_t size = 0;       ///< Capacity in bytes; 0 when hwloc does not know it.
  std::uint32_t line_size = 0;  ///< Line size in bytes; 0 when hwloc does not know it.
  std::vector<CoreId> cores;    ///< Every PU below this cache, usable or not, ascending.
};

/// One PU (hardware thread), which mk calls a core because one kernel runs on it.
struct CoreInfo {
  CoreId pu = 0;           ///< OS index of the PU; the CoreId everywhere in mk.
  int logical_index = -1;  ///< hwloc logical index of the PU (tree order); -1 when offline.
  int core = -1;           ///< hwloc logical index of its physical core; -1 when unknown/offline.
  int package = -1;        ///< hwloc logical index of its package; -1 when unknown/offline.
  int numa_node = -1;      ///< OS index of its local NUMA node; -1 when offline or in none.
  std::vector<std::size_t> caches;  ///< Indices into Skb::caches(), innermost first.
  int cpukind = -1;                 ///< Index into Skb::cpukinds(); -1 when hwloc reports no kinds.
  int efficiency = -1;    ///< hwloc efficiency rank of its kind (higher is faster); -1 unknown.
  bool online = true;     ///< False for a PU the OS reports offline.
  bool allowed = true;    ///< False for a PU outside the process's allowed cpuset.
  bool disabled = false;  ///< True when a facts file marked it unusable.
  FactSource kind_source = FactSource::discovered;  ///< Source of cpukind and efficiency.

  /// True when kernels may run here: online, allowed and not disabled by a facts file.
  bool usable() const noexcept { return online && allowed && !disabled; }
};

/// One value of an hwloc memory attribute of a NUMA node, for accesses from some PUs.
struct MemoryAccessValue {
  std::vector<CoreId> from;  ///< The initiator: PUs of hwloc's initiator cpuset, ascending.
  std::uint64_t value = 0;   ///< MiB/s for bandwidth, nanoseconds for latency.
};

/// One hwloc memory attribute (bandwidth or latency) of one NUMA node.
struct MemoryAttribute {
  /// For accesses from the PUs near the node (its hwloc cpuset); empty when hwloc has none.
  std::optional<std::uint64_t> local;
  /// Every value hwloc holds for the node, one per initiator, in hwloc's order.
  std::vector<MemoryAccessValue> by_initiator;

  /// The value for accesses from `pu`: the first initiator that holds it, as hwloc matches a
  /// PU's cpuset; empty when none does.
  std::optional<std::uint64_t> from(CoreId pu) const {
    for (const MemoryAccessValue& entry : by_initiator) {
      if (std::binary_search(entry.from.begin(), entry.from.end(), pu)) return entry.value;
    }
    return std::nullopt;
  }
};

/// One NUMA node: a memory, the PUs whose local memory it is, and what hwloc knows of it.
/// A node without cores is memory-only (HBM, MCDRAM, CXL or NVM memory beside the DRAM).
struct NumaNodeInfo {
  int os_index = 0;                ///< OS index, as libnuma numbers it.
  std::uint64_t memory_bytes = 0;  ///< Local memory; 0 when hwloc does not know it.
  /// PUs whose local memory it is (the first node in hwloc's order whose cpuset holds them),
  /// usable or not, ascending; empty for a memory-only node.
  std::vector<CoreId> cores;
  /// PUs hwloc places it near (its cpuset), ascending: a superset of `cores`; an MCDRAM node
  /// beside a cluster's DRAM has the cluster's PUs here and no `cores`.
  std::vector<CoreId> near;
  /// hwloc's subtype, such as "DRAM", "HBM", "MCDRAM", "NVM" or "SPM"; empty when it has none.
  std::string kind;
  MemoryAttribute bandwidth;  ///< hwloc's Bandwidth attribute, MiB/s.
  MemoryAttribute latency;    ///< hwloc's Latency attribute, nanoseconds.

  /// True for a node that is no PU's local memory (it has no cores).
  bool memory_only() const noexcept { return cores.empty(); }
};

/// One kind of core on a heterogeneous machine (hwloc cpukinds).
struct CpuKindInfo {
  int efficiency = -1;        ///< hwloc efficiency rank (higher is faster); -1 when unknown.
  std::string name;           ///< hwloc "CoreType" info such as "IntelAtom"; empty if none.
  std::vector<CoreId> cores;  ///< PUs of this kind, ascending.
  FactSource source = FactSource::discovered;  ///< Discovered, or asserted by a facts file.
};

}  // namespace mk
