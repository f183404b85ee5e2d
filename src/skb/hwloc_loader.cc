#include "skb/hwloc_loader.h"

#include <fmt/format.h>
#include <hwloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <utility>

#include "skb/host_line_size.h"
#include "skb/hwloc_probe.h"
#include "skb/json_errors.h"

namespace mk::detail {
namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* topology) const { hwloc_topology_destroy(topology); }
};
using Topology = std::unique_ptr<hwloc_topology, TopologyDeleter>;

struct BitmapDeleter {
  void operator()(hwloc_bitmap_s* bitmap) const { hwloc_bitmap_free(bitmap); }
};
using Bitmap = std::unique_ptr<hwloc_bitmap_s, BitmapDeleter>;

Result<Topology> make_topology() {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) {
    return error(Errc::io_error, fmt::format("hwloc_topology_init: {}", std::strerror(errno)));
  }
  Topology topology(raw);
  // Disallowed PUs stay in the tree so that they are facts (never usable ones).
  if (hwloc_topology_set_flags(raw, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED) != 0) {
    return error(Errc::io_error, fmt::format("hwloc_topology_set_flags: {}", std::strerror(errno)));
  }
  return topology;
}

// mk's limit on PU (and NUMA node) OS indexes, which also bounds the PU count: Linux
// supports at most 8192 CPUs, and projections to bigger machines stay far below this.
constexpr int kMaxPuIndex = (1 << 17) - 1;

// The PUs of a cpuset. A set read from a file may be infinite ("0xf...f") or name an index
// no machine has; both are errors rather than an allocation without bound.
Result<std::vector<CoreId>> cores_of(hwloc_const_bitmap_t set, std::string_view origin,
                                     std::string_view what) {
  if (hwloc_bitmap_weight(set) < 0) {
    return error(Errc::parse_error, fmt::format("{}: the cpuset of {} is infinite", origin, what));
  }
  if (const int last = hwloc_bitmap_last(set); last > kMaxPuIndex) {
    return error(Errc::too_large, fmt::format("{}: {} holds PU {}; mk handles PU indexes up to {}",
                                              origin, what, last, kMaxPuIndex));
  }
  std::vector<CoreId> cores;
  int pu = -1;
  hwloc_bitmap_foreach_begin(pu, set) {
    cores.push_back(static_cast<CoreId>(pu));
  }
  hwloc_bitmap_foreach_end();
  return cores;
}

bool is_data_cache(hwloc_obj_t obj) {
  return hwloc_obj_type_is_dcache(obj->type) &&
         obj->attr->cache.type != HWLOC_OBJ_CACHE_INSTRUCTION;
}

// A matrix whose objects are all there (read_distances checks).
DistanceMatrix read_matrix(hwloc_topology_t topology, hwloc_distances_s* dist,
                           hwloc_obj_type_t type) {
  DistanceMatrix matrix;
  const char* name = hwloc_distances_get_name(topology, dist);
  matrix.name = name == nullptr ? "" : name;
  for (unsigned i = 0; i < dist->nbobjs; ++i) {
    hwloc_obj_t obj = dist->objs[i];
    matrix.indexes.push_back(
        static_cast<int>(type == HWLOC_OBJ_NUMANODE ? obj->os_index : obj->logical_index));
  }
  matrix.values.assign(dist->values, dist->values + std::size_t{dist->nbobjs} * dist->nbobjs);
  matrix.index_rows();
  return matrix;
}

// NUMA and package matrices; bandwidth matrices are skipped because the SKB's distances
// grow with cost.
void read_distances(hwloc_topology_t topology, SkbFacts& facts) {
  unsigned count = 0;
  if (hwloc_distances_get(topology, &count, nullptr, 0, 0) != 0 || count == 0) return;
  std::vector<hwloc_distances_s*> all(count, nullptr);
  if (hwloc_distances_get(topology, &count, all.data(), 0, 0) != 0) return;
  all.resize(count);
  for (hwloc_distances_s* dist : all) {
    const bool bandwidth = (dist->kind & HWLOC_DISTANCES_KIND_MEANS_BANDWIDTH) != 0;
    const hwloc_obj_type_t type =
        dist->nbobjs > 0 && dist->objs[0] != nullptr ? dist->objs[0]->type : HWLOC_OBJ_PU;
    bool homogeneous = true;
    for (unsigned i = 0; i < dist->nbobjs; ++i)
      homogeneous &= dist->objs[i] != nullptr && dist->objs[i]->type == type;
    if (!bandwidth && homogeneous && dist->nbobjs > 1) {
      if (type == HWLOC_OBJ_NUMANODE && !facts.numa_distances) {
        facts.numa_distances = read_matrix(topology, dist, type);
      } else if (type == HWLOC_OBJ_PACKAGE && !facts.package_distances) {
        facts.package_distances = read_matrix(topology, dist, type);
      }
    }
    hwloc_distances_release(topology, dist);
  }
}

Result<void> read_cpukinds(hwloc_topology_t topology, SkbFacts& facts) {
  const int count = hwloc_cpukinds_get_nr(topology, 0);
  Bitmap set(hwloc_bitmap_alloc());
  for (int kind = 0; kind < count; ++kind) {
    int efficiency = -1;
    unsigned nr_infos = 0;
    hwloc_info_s* infos = nullptr;
    if (hwloc_cpukinds_get_info(topology, static_cast<unsigned>(kind), set.get(), &efficiency,
                                &nr_infos, &infos, 0) != 0) {
      continue;
    }
    CpuKindInfo info;
    info.efficiency = efficiency;
    for (unsigned i = 0; i < nr_infos; ++i) {
      if (infos[i].name != nullptr && infos[i].value != nullptr &&
          std::strcmp(infos[i].name, "CoreType") == 0) {
        info.name = infos[i].value;
      }
    }
    auto cores = cores_of(set.get(), facts.origin, fmt::format("cpukind {}", kind));
    if (!cores) return std::move(cores).error();
    info.cores = std::move(cores).value();
    const int index = static_cast<int>(facts.cpukinds.size());
    for (CoreId core : info.cores) {
      if (CoreInfo* target = facts.find(core)) {
        target->cpukind = index;
        target->efficiency = efficiency;
      }
    }
    facts.cpukinds.push_back(std::move(info));
  }
  return {};
}

std::string canonical_description(const SkbFacts& facts, std::string_view host) {
  std::string text = fmt::format("host={};", host);
  for (const CoreInfo& core : facts.cores) {
    text += fmt::format("pu{}:{}:{}:{}:{}:{}:{};", core.pu, core.core, core.package, core.numa_node,
                        core.online, core.allowed, core.cpukind);
  }
  for (const CacheInfo& cache : facts.caches) {
    text += fmt::format("L{}:{}:{}:{};", cache.level, cache.size, cache.line_size,
                        fmt::join(cache.cores, ","));
  }
  // Memory sizes are left out: they change under ballooning and hotplug, latencies do not.
  for (const NumaNodeInfo& node : facts.numa_nodes)
    text += fmt::format("numa{};", node.os_index);
  if (facts.numa_distances)
    text += fmt::format("d{};", fmt::join(facts.numa_distances->values, ","));
  if (facts.package_distances) {
    text += fmt::format("p{};", fmt::join(facts.package_distances->values, ","));
  }
  return text;
}

// Each PU of the tree: online, allowed or not, and its physical core, package and caches,
// from its ancestors.
Result<void> read_pus(hwloc_topology_t topology, SkbFacts& facts,
                      const std::map<hwloc_obj_t, std::size_t>& cache_index,
                      hwloc_const_bitmap_t allowed) {
  for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_PU, nullptr); pu != nullptr;
       pu = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_PU, pu)) {
    CoreInfo* core = pu->os_index > static_cast<unsigned>(kMaxPuIndex)
                         ? nullptr
                         : facts.find(static_cast<CoreId>(pu->os_index));
    if (core == nullptr) {
      return error(Errc::parse_error, fmt::format("{}: PU P#{} lies outside the complete cpuset",
                                                  facts.origin, pu->os_index));
    }
    core->logical_index = static_cast<int>(pu->logical_index);
    core->online = true;
    core->allowed = hwloc_bitmap_isset(allowed, pu->os_index) != 0;
    int cores_above = 0;
    for (hwloc_obj_t up = pu->parent; up != nullptr; up = up->parent) {
      if (auto it = cache_index.find(up); it != cache_index.end())
        core->caches.push_back(it->second);
      if (up->type == HWLOC_OBJ_CORE && cores_above++ == 0)
        core->core = static_cast<int>(up->logical_index);
      if (up->type == HWLOC_OBJ_PACKAGE && core->package < 0)
        core->package = static_cast<int>(up->logical_index);
    }
    // A core inside a core would make "the same physical core" ambiguous.
    if (cores_above > 1) {
      return error(Errc::parse_error, fmt::format("{}: PU P#{} lies inside {} Core objects",
                                                  facts.origin, pu->os_index, cores_above));
    }
  }
  // Without Package objects the machine is one package, as routes and placement group it, so
  // that every core's package is one `packages` counts (docs/skb.md).
  if (hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PACKAGE) == 0) {
    for (CoreInfo& core : facts.cores) {
      if (core.online) core.package = 0;
    }
  }
  return {};
}

// One of hwloc's memory attributes of `node`: the value for accesses from the node's own
// PUs, and every value hwloc holds with its initiator. Initiators that are objects (hwloc
// leaves them to users, for GPUs) are skipped; cpusets come from the file, so they are checked.
Result<MemoryAttribute> read_memory_attribute(hwloc_topology_t topology, hwloc_memattr_id_t id,
                                              hwloc_obj_t node, std::string_view origin,
                                              std::string_view what) {
  MemoryAttribute attribute;
  if (!hwloc_bitmap_iszero(node->cpuset) && hwloc_bitmap_weight(node->cpuset) > 0) {
    hwloc_location local{};
    local.type = HWLOC_LOCATION_TYPE_CPUSET;
    local.location.cpuset = node->cpuset;
    hwloc_uint64_t value = 0;
    if (hwloc_memattr_get_value(topology, id, node, &local, 0, &value) == 0) {
      attribute.local = value;
    }
  }
  unsigned count = 0;
  if (hwloc_memattr_get_initiators(topology, id, node, 0, &count, nullptr, nullptr) != 0 ||
      count == 0) {
    return attribute;
  }
  std::vector<hwloc_location> initiators(count);
  std::vector<hwloc_uint64_t> values(count);
  if (hwloc_memattr_get_initiators(topology, id, node, 0, &count, initiators.data(),
                                   values.data()) != 0) {
    return attribute;
  }
  count = std::min<unsigned>(count, static_cast<unsigned>(initiators.size()));
  for (unsigned i = 0; i < count; ++i) {
    if (initiators[i].type != HWLOC_LOCATION_TYPE_CPUSET ||
        initiators[i].location.cpuset == nullptr) {
      continue;
    }
    auto from = cores_of(initiators[i].location.cpuset, origin, fmt::format("{} initiator", what));
    if (!from) return std::move(from).error();
    attribute.by_initiator.push_back(MemoryAccessValue{std::move(from).value(), values[i]});
  }
  return attribute;
}

// Orders NUMA nodes by OS index, and finds them by it.
struct ByOsIndex {
  bool operator()(const NumaNodeInfo& node, int index) const { return node.os_index < index; }
  bool operator()(int index, const NumaNodeInfo& node) const { return index < node.os_index; }
};

// Each PU's local memory: the first NUMA node (in hwloc's order) whose cpuset holds it; later
// ones are extra memories such as HBM, memory-only to mk. Every node keeps its capacity, kind,
// the PUs near it and its memory attributes.
Result<void> read_numa_nodes(hwloc_topology_t topology, SkbFacts& facts) {
  for (hwloc_obj_t node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, nullptr);
       node != nullptr; node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, node)) {
    if (node->os_index > static_cast<unsigned>(kMaxPuIndex)) {
      return error(Errc::too_large, fmt::format("{}: NUMA node {} is beyond mk's limit of {}",
                                                facts.origin, node->os_index, kMaxPuIndex));
    }
    const int os_index = static_cast<int>(node->os_index);
    NumaNodeInfo info;
    info.os_index = os_index;
    info.memory_bytes = node->attr->numanode.local_memory;
    if (node->subtype != nullptr) info.kind = node->subtype;
    const std::string what = fmt::format("NUMA node {}", os_index);
    auto cores = cores_of(node->cpuset, facts.origin, what);
    if (!cores) return std::move(cores).error();
    for (CoreId pu : *cores) {
      CoreInfo* core = facts.find(pu);
      // Only PUs in the tree have a place, hence a node.
      if (core == nullptr || !core->online) continue;
      info.near.push_back(pu);
      if (core->numa_node < 0) core->numa_node = os_index;
    }
    auto bandwidth = read_memory_attribute(topology, HWLOC_MEMATTR_ID_BANDWIDTH, node, facts.origin,
                                           what + "'s bandwidth");
    if (!bandwidth) return std::move(bandwidth).error();
    info.bandwidth = std::move(bandwidth).value();
    auto latency = read_memory_attribute(topology, HWLOC_MEMATTR_ID_LATENCY, node, facts.origin,
                                         what + "'s latency");
    if (!latency) return std::move(latency).error();
    info.latency = std::move(latency).value();
    facts.numa_nodes.push_back(std::move(info));
  }
  // A PU that no node's cpuset holds keeps node -1: hwloc accepts such trees (a package whose
  // memory is all elsewhere), and the PU is usable all the same.
  std::stable_sort(
      facts.numa_nodes.begin(), facts.numa_nodes.end(),
      [](const NumaNodeInfo& x, const NumaNodeInfo& y) { return x.os_index < y.os_index; });
  for (const CoreInfo& core : facts.cores) {
    const auto [first, last] = std::equal_range(facts.numa_nodes.begin(), facts.numa_nodes.end(),
                                                core.numa_node, ByOsIndex{});
    for (auto node = first; node != last; ++node)
      node->cores.push_back(core.pu);
  }
  return {};
}

// Reads a loaded topology. `restrict_to` (live machine only) further limits the allowed PUs.
Result<std::shared_ptr<SkbFacts>> read_topology(hwloc_topology_t topology, std::string origin,
                                                bool live, hwloc_const_bitmap_t restrict_to) {
  auto facts = std::make_shared<SkbFacts>();
  facts->origin = std::move(origin);
  facts->live = live;

  Bitmap allowed(hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(topology)));
  if (restrict_to != nullptr) hwloc_bitmap_and(allowed.get(), allowed.get(), restrict_to);

  // Offline PUs exist only in the complete cpuset: they are facts without a place in the tree.
  // A PU is online when the tree has it (read_pus), not when a cpuset claims it.
  auto complete =
      cores_of(hwloc_topology_get_complete_cpuset(topology), facts->origin, "the machine");
  if (!complete) return std::move(complete).error();
  for (CoreId pu : *complete) {
    CoreInfo core;
    core.pu = pu;
    core.online = false;
    core.allowed = false;
    facts->cores.push_back(std::move(core));
  }

  std::map<hwloc_obj_t, std::size_t> cache_index;
  for (int level = HWLOC_OBJ_L1CACHE; level <= HWLOC_OBJ_L5CACHE; ++level) {
    const auto type = static_cast<hwloc_obj_type_t>(level);
    for (hwloc_obj_t obj = hwloc_get_next_obj_by_type(topology, type, nullptr); obj != nullptr;
         obj = hwloc_get_next_obj_by_type(topology, type, obj)) {
      if (!is_data_cache(obj)) continue;
      CacheInfo cache;
      // The level from the type, not the depth attribute a file may set to anything.
      cache.level = level - HWLOC_OBJ_L1CACHE + 1;
      cache.size = obj->attr->cache.size;
      cache.line_size = obj->attr->cache.linesize;
      auto cores = cores_of(obj->cpuset, facts->origin, fmt::format("an L{} cache", cache.level));
      if (!cores) return std::move(cores).error();
      cache.cores = std::move(cores).value();
      cache_index.emplace(obj, facts->caches.size());
      facts->caches.push_back(std::move(cache));
    }
  }

  if (auto pus = read_pus(topology, *facts, cache_index, allowed.get()); !pus) return pus.error();
  if (auto nodes = read_numa_nodes(topology, *facts); !nodes) return nodes.error();
  if (auto kinds = read_cpukinds(topology, *facts); !kinds) return kinds.error();
  read_distances(topology, *facts);

  // The line size of the innermost data cache; hwloc may not know it (synthetic topologies),
  // and a file may claim a size rings cannot be laid out with.
  facts->line_size = 0;
  for (const CacheInfo& cache : facts->caches) {
    if (cache.level == 1 && plausible_line_size(cache.line_size)) {
      facts->line_size = cache.line_size;
      break;
    }
  }
  facts->line_size_source = FactSource::discovered;
  if (facts->line_size == 0) {
    // The operating system's answer on the live machine (the detection a channel made without
    // an SKB uses too); a described machine that does not say gets the fallback.
    const std::size_t reported = live ? reported_line_size() : 0;
    facts->line_size = reported != 0 ? reported : kFallbackLineSize;
    facts->line_size_source = reported != 0 ? FactSource::discovered : FactSource::derived;
  }

  std::string host;
  if (live) {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) == 0) host = name;
  }
  facts->fingerprint = fnv1a_hex(canonical_description(*facts, host));
  facts->refresh_usable();
  if (facts->usable.empty()) {
    return error(Errc::unavailable, fmt::format("{}: no PU is online and allowed", facts->origin));
  }
  return facts;
}

// One more PU than mk handles.
constexpr std::uint64_t kTooManyPus = std::uint64_t{kMaxPuIndex} + 2;

// A decimal number, saturated at 2^64 - 1.
std::uint64_t saturating_number(std::string_view digits) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return ec == std::errc::result_out_of_range ? std::numeric_limits<std::uint64_t>::max() : value;
}

bool valid_count(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         text.find_first_not_of('0') != std::string_view::npos;
}

// Splits a synthetic description into tokens at blanks outside brackets, and after a closing
// bracket back at depth 0: hwloc reads what follows one, blank or not, as the next level
// ("pack:2(indexes=...)5" is 2 packages of 5 PUs).
std::vector<std::string> synthetic_tokens(std::string_view description) {
  std::vector<std::string> tokens;
  std::string current;
  int depth = 0;
  for (char c : description) {
    if (c == '(' || c == '{' || c == '[') ++depth;
    if (depth == 0 && (c == ' ' || c == '\t' || c == '\n')) {
      if (!current.empty()) tokens.push_back(std::move(current));
      current.clear();
      continue;
    }
    current += c;
    if (c == ')' || c == '}' || c == ']') {
      if (--depth == 0) {
        tokens.push_back(std::move(current));
        current.clear();
      }
    }
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  return tokens;
}

// Whether `token`'s brackets are as hwloc reads them: attributes in one (...) with no bracket
// inside, attached memory in one [...] that may hold such attributes, each closed. hwloc does
// not nest them the way a counter would: "(indexes=(a)5" ends its attributes at the first ')'
// and reads 5 as another level.
bool brackets_well_formed(std::string_view token) {
  std::string open;  // the brackets open at this point, outermost first
  for (char c : token) {
    if (c == '(' || c == '[' || c == '{') {
      if (c == '{' || (!open.empty() && (c == '[' || open.back() == '('))) return false;
      open += c;
    } else if (c == ')' || c == ']' || c == '}') {
      if (open.empty() || open.back() != (c == ')' ? '(' : c == ']' ? '[' : '{')) return false;
      open.pop_back();
    }
  }
  return open.empty();
}

// hwloc 2.9 inserts each object by comparing its cpuset with those of its siblings, level by
// level, so building a machine costs about (objects x siblings x bitmap words) steps; this
// many take about a minute on a 2020s core (100,000 PUs as pack:100 numa:2 l3:1 core:250
// pu:2 need 2e10; core:10000 pu:1 needs 1.6e10).
constexpr std::uint64_t kMaxSyntheticWork = 30'000'000'000;

}  // namespace

Result<SyntheticSize> measure_synthetic(std::string_view description) {
  auto bad = [&](std::string_view token) {
    return error(Errc::parse_error,
                 fmt::format("synthetic topology \"{}\": bad token '{}' (expected TYPE:COUNT "
                             "such as pack:2)",
                             description, text_excerpt(token)));
  };
  if (auto odd =
          std::find_if(description.begin(), description.end(),
                       [](char c) { return (c < ' ' && c != '\t' && c != '\n') || c > '~'; });
      odd != description.end()) {
    return error(Errc::parse_error,
                 fmt::format("synthetic topology: unexpected byte 0x{:02x} at offset {}",
                             static_cast<unsigned char>(*odd), odd - description.begin()));
  }
  SyntheticSize size;
  std::uint64_t side_by_side = 0;  // sum over levels of objects x siblings
  for (const std::string& token : synthetic_tokens(description)) {
    if (!brackets_well_formed(token)) return bad(token);
    // An explicit list of OS indexes (hwloc's other form, interleaving, stays below the count).
    for (std::size_t at = token.find("indexes="); at != std::string::npos;
         at = token.find("indexes=", at + 1)) {
      std::string_view list = std::string_view(token).substr(at + 8);
      list = list.substr(0, list.find_first_not_of("0123456789,"));
      while (!list.empty()) {
        const std::string_view digits = list.substr(0, list.find(','));
        list.remove_prefix(std::min(list.size(), digits.size() + 1));
        if (!digits.empty() && saturating_number(digits) > kMaxPuIndex) {
          return error(
              Errc::too_large,
              fmt::format("synthetic topology \"{}\": index {} in '{}' is beyond mk's "
                          "limit of {}",
                          description, text_excerpt(digits), text_excerpt(token), kMaxPuIndex));
        }
      }
    }
    if (token.front() == '{' || token.front() == '(' || token.front() == '[') continue;
    const auto colon = token.find(':');
    if (colon == std::string::npos) return bad(token);
    const std::string type_name = token.substr(0, colon);
    std::string_view count = std::string_view(token).substr(colon + 1);
    count = count.substr(0, count.find('('));
    hwloc_obj_type_t type{};
    if (hwloc_type_sscanf(type_name.c_str(), &type, nullptr, 0) != 0) return bad(token);
    if (!valid_count(count)) return bad(token);
    // Saturating just past the limit, so that no product overflows.
    const std::uint64_t siblings = std::min(saturating_number(count), kTooManyPus);
    size.pus = std::min(size.pus * siblings, kTooManyPus);
    side_by_side += size.pus * siblings;
  }
  if (size.pus >= kTooManyPus) {
    return error(Errc::too_large,
                 fmt::format("synthetic topology \"{}\": more than {} PUs (mk's limit)",
                             description, kMaxPuIndex + 1));
  }
  size.build_work = side_by_side * ((size.pus + 63) / 64);
  if (size.build_work > kMaxSyntheticWork) {
    return error(Errc::too_large,
                 fmt::format("synthetic topology \"{}\": hwloc would take minutes to build it "
                             "(it compares every object with all its siblings); put fewer "
                             "objects side by side, as in pack:16 core:64 rather than core:1024",
                             description));
  }
  return size;
}

namespace {

// Reads `xml`: first in mk-hwloc-probe, then here if hwloc survived it and accepted it.
Result<std::shared_ptr<SkbFacts>> load_xml(std::string_view xml, std::string_view name) {
  const std::string subject = fmt::format("topology file '{}'", name);
  if (xml.size() > kMaxInputBytes) {
    return error(Errc::too_large,
                 fmt::format("{}: larger than the {} MiB limit", subject, kMaxInputBytes >> 20));
  }
  auto verdict = probe_with_hwloc(ProbeInput::xml, xml, subject);
  if (!verdict) return std::move(verdict).error();
  auto topology = make_topology();
  if (!topology) return std::move(topology).error();
  hwloc_topology_t raw = topology->get();
  if (!verdict->accepted ||
      hwloc_topology_set_xmlbuffer(raw, xml.data(), static_cast<int>(xml.size())) != 0 ||
      hwloc_topology_load(raw) != 0) {
    const int refusal = verdict->accepted ? errno : verdict->error_number;
    return error(Errc::parse_error, fmt::format("{}: not a valid hwloc XML export ({})", subject,
                                                std::strerror(refusal)));
  }
  return read_topology(raw, fmt::format("xml file {}", name), false, nullptr);
}

}  // namespace

Result<std::shared_ptr<SkbFacts>> load_live() {
  auto topology = make_topology();
  if (!topology) return std::move(topology).error();
  hwloc_topology_t raw = topology->get();
  if (hwloc_topology_load(raw) != 0) {
    return error(Errc::io_error,
                 fmt::format("hwloc could not discover this machine: {}", std::strerror(errno)));
  }
  Bitmap bound(hwloc_bitmap_alloc());
  const bool have_binding = hwloc_get_cpubind(raw, bound.get(), HWLOC_CPUBIND_PROCESS) == 0;
  return read_topology(raw, "live machine", true, have_binding ? bound.get() : nullptr);
}

Result<std::shared_ptr<SkbFacts>> load_xml_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    return error(Errc::not_found, fmt::format("topology file '{}': not a regular file", path));
  }
  auto text = read_text_file(path, "topology file");
  if (!text) return std::move(text).error();
  return load_xml(*text, path);
}

Result<std::shared_ptr<SkbFacts>> load_xml_text(std::string_view xml, std::string_view name) {
  return load_xml(xml, name);
}

Result<std::shared_ptr<SkbFacts>> load_synthetic(std::string_view description) {
  const std::string text(description);
  if (text.find_first_not_of(" \t\n") == std::string::npos) {
    return error(Errc::parse_error, "synthetic topology: empty description");
  }
  if (auto size = measure_synthetic(text); !size) return std::move(size).error();
  // hwloc leaks on some descriptions it refuses, so the probe parses them first; building the
  // machine, which can take a minute, happens here only.
  const std::string subject = fmt::format("synthetic topology \"{}\"", text);
  auto verdict = probe_with_hwloc(ProbeInput::synthetic, text, subject);
  if (!verdict) return std::move(verdict).error();
  auto topology = make_topology();
  if (!topology) return std::move(topology).error();
  hwloc_topology_t raw = topology->get();
  if (!verdict->accepted || hwloc_topology_set_synthetic(raw, text.c_str()) != 0 ||
      hwloc_topology_load(raw) != 0) {
    const int refusal = verdict->accepted ? errno : verdict->error_number;
    return error(Errc::parse_error,
                 fmt::format("{}: hwloc rejects it ({})", subject, std::strerror(refusal)));
  }
  return read_topology(raw, fmt::format("synthetic \"{}\"", text), false, nullptr);
}

}  // namespace mk::detail
