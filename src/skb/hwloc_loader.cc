#include "skb/hwloc_loader.h"

#include <fmt/format.h>
#include <hwloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <utility>

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

int logical_ancestor(hwloc_topology_t topology, hwloc_obj_t pu, hwloc_obj_type_t type) {
  hwloc_obj_t ancestor = hwloc_get_ancestor_obj_by_type(topology, type, pu);
  return ancestor == nullptr ? -1 : static_cast<int>(ancestor->logical_index);
}

bool is_data_cache(hwloc_obj_t obj) {
  return hwloc_obj_type_is_dcache(obj->type) &&
         obj->attr->cache.type != HWLOC_OBJ_CACHE_INSTRUCTION;
}

std::optional<DistanceMatrix> read_matrix(hwloc_topology_t topology, hwloc_distances_s* dist,
                                          hwloc_obj_type_t type) {
  DistanceMatrix matrix;
  const char* name = hwloc_distances_get_name(topology, dist);
  matrix.name = name == nullptr ? "" : name;
  for (unsigned i = 0; i < dist->nbobjs; ++i) {
    hwloc_obj_t obj = dist->objs[i];
    if (obj == nullptr) return std::nullopt;
    matrix.indexes.push_back(
        static_cast<int>(type == HWLOC_OBJ_NUMANODE ? obj->os_index : obj->logical_index));
  }
  matrix.values.assign(dist->values, dist->values + std::size_t{dist->nbobjs} * dist->nbobjs);
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
    hwloc_obj_type_t type = dist->nbobjs > 0 ? dist->objs[0]->type : HWLOC_OBJ_PU;
    bool homogeneous = true;
    for (unsigned i = 0; i < dist->nbobjs; ++i)
      homogeneous &= dist->objs[i]->type == type;
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

void read_cpukinds(hwloc_topology_t topology, SkbFacts& facts) {
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
      if (std::strcmp(infos[i].name, "CoreType") == 0) info.name = infos[i].value;
    }
    int pu = -1;
    hwloc_bitmap_foreach_begin(pu, set.get()) {
      info.cores.push_back(static_cast<CoreId>(pu));
    }
    hwloc_bitmap_foreach_end();
    const int index = static_cast<int>(facts.cpukinds.size());
    for (CoreId core : info.cores) {
      if (CoreInfo* target = facts.find(core)) {
        target->cpukind = index;
        target->efficiency = efficiency;
      }
    }
    facts.cpukinds.push_back(std::move(info));
  }
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

// Reads a loaded topology. `restrict_to` (live machine only) further limits the allowed PUs.
Result<std::shared_ptr<SkbFacts>> read_topology(hwloc_topology_t topology, std::string origin,
                                                bool live, hwloc_const_bitmap_t restrict_to) {
  auto facts = std::make_shared<SkbFacts>();
  facts->origin = std::move(origin);
  facts->live = live;

  hwloc_const_bitmap_t complete = hwloc_topology_get_complete_cpuset(topology);
  hwloc_const_bitmap_t present = hwloc_topology_get_topology_cpuset(topology);
  Bitmap allowed(hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(topology)));
  if (restrict_to != nullptr) hwloc_bitmap_and(allowed.get(), allowed.get(), restrict_to);

  // Offline PUs exist only in the complete cpuset: they are facts without a place in the tree.
  int index = -1;
  hwloc_bitmap_foreach_begin(index, complete) {
    CoreInfo core;
    core.pu = static_cast<CoreId>(index);
    core.online = hwloc_bitmap_isset(present, static_cast<unsigned>(index)) != 0;
    core.allowed = core.online && hwloc_bitmap_isset(allowed.get(), static_cast<unsigned>(index));
    facts->cores.push_back(std::move(core));
  }
  hwloc_bitmap_foreach_end();

  for (hwloc_obj_t node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, nullptr);
       node != nullptr; node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, node)) {
    NumaNodeInfo info;
    info.os_index = static_cast<int>(node->os_index);
    info.memory_bytes = node->attr->numanode.local_memory;
    facts->numa_nodes.push_back(std::move(info));
  }
  std::sort(facts->numa_nodes.begin(), facts->numa_nodes.end(),
            [](const NumaNodeInfo& x, const NumaNodeInfo& y) { return x.os_index < y.os_index; });

  std::map<hwloc_obj_t, std::size_t> cache_index;
  for (int level = HWLOC_OBJ_L1CACHE; level <= HWLOC_OBJ_L5CACHE; ++level) {
    const auto type = static_cast<hwloc_obj_type_t>(level);
    for (hwloc_obj_t obj = hwloc_get_next_obj_by_type(topology, type, nullptr); obj != nullptr;
         obj = hwloc_get_next_obj_by_type(topology, type, obj)) {
      if (!is_data_cache(obj)) continue;
      CacheInfo cache;
      cache.level = static_cast<int>(obj->attr->cache.depth);
      cache.size = obj->attr->cache.size;
      cache.line_size = obj->attr->cache.linesize;
      int pu = -1;
      hwloc_bitmap_foreach_begin(pu, obj->cpuset) {
        cache.cores.push_back(static_cast<CoreId>(pu));
      }
      hwloc_bitmap_foreach_end();
      cache_index.emplace(obj, facts->caches.size());
      facts->caches.push_back(std::move(cache));
    }
  }

  for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_PU, nullptr); pu != nullptr;
       pu = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_PU, pu)) {
    CoreInfo* core = facts->find(static_cast<CoreId>(pu->os_index));
    if (core == nullptr) {
      return error(Errc::parse_error, fmt::format("{}: PU P#{} lies outside the complete cpuset",
                                                  facts->origin, pu->os_index));
    }
    core->logical_index = static_cast<int>(pu->logical_index);
    core->core = logical_ancestor(topology, pu, HWLOC_OBJ_CORE);
    core->package = logical_ancestor(topology, pu, HWLOC_OBJ_PACKAGE);
    for (hwloc_obj_t up = pu->parent; up != nullptr; up = up->parent) {
      if (auto it = cache_index.find(up); it != cache_index.end())
        core->caches.push_back(it->second);
    }
    // The first NUMA node (in hwloc's order) whose cpuset holds the PU is its local memory;
    // later ones are extra memories such as HBM.
    for (hwloc_obj_t node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, nullptr);
         node != nullptr; node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, node)) {
      if (hwloc_bitmap_isset(node->cpuset, pu->os_index)) {
        core->numa_node = static_cast<int>(node->os_index);
        break;
      }
    }
  }
  for (const CoreInfo& core : facts->cores) {
    for (NumaNodeInfo& node : facts->numa_nodes) {
      if (node.os_index == core.numa_node) node.cores.push_back(core.pu);
    }
  }

  read_cpukinds(topology, *facts);
  read_distances(topology, *facts);

  // The line size of the innermost data cache; hwloc may not know it (synthetic topologies).
  facts->line_size = 0;
  for (const CacheInfo& cache : facts->caches) {
    if (cache.level == 1 && cache.line_size > 0) {
      facts->line_size = cache.line_size;
      break;
    }
  }
  facts->line_size_source = FactSource::discovered;
  if (facts->line_size == 0) {
    const long detected = live ? sysconf(_SC_LEVEL1_DCACHE_LINESIZE) : 0;
    // 64 bytes is the line of every x86-64 and most Arm64 cores mk targets.
    facts->line_size = detected > 0 ? static_cast<std::size_t>(detected) : 64;
    facts->line_size_source = live && detected > 0 ? FactSource::discovered : FactSource::derived;
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

bool valid_count(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         text.find_first_not_of('0') != std::string_view::npos;
}

// hwloc says only "invalid" for a bad synthetic string; this finds the token to name.
std::optional<std::string> bad_synthetic_token(std::string_view description) {
  std::vector<std::string> tokens;
  std::string current;
  int depth = 0;
  for (char c : description) {
    if (c == '(' || c == '{' || c == '[') ++depth;
    if (c == ')' || c == '}' || c == ']') --depth;
    if (depth == 0 && (c == ' ' || c == '\t' || c == '\n')) {
      if (!current.empty()) tokens.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  for (const std::string& token : tokens) {
    if (token.front() == '{' || token.front() == '(' || token.front() == '[') continue;
    const auto colon = token.find(':');
    if (colon == std::string::npos) return token;
    const std::string type_name = token.substr(0, colon);
    std::string_view count = std::string_view(token).substr(colon + 1);
    count = count.substr(0, count.find('('));
    hwloc_obj_type_t type{};
    if (hwloc_type_sscanf(type_name.c_str(), &type, nullptr, 0) != 0) return token;
    if (!valid_count(count)) return token;
  }
  return std::nullopt;
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

Result<std::shared_ptr<SkbFacts>> load_xml(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return error(
        Errc::not_found,
        fmt::format("topology file '{}': {}", path,
                    std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  }
  if (std::ifstream probe(path); !probe) {
    return error(Errc::io_error,
                 fmt::format("topology file '{}': cannot read: {}", path, std::strerror(errno)));
  }
  auto topology = make_topology();
  if (!topology) return std::move(topology).error();
  hwloc_topology_t raw = topology->get();
  if (hwloc_topology_set_xml(raw, path.c_str()) != 0 || hwloc_topology_load(raw) != 0) {
    return error(Errc::parse_error,
                 fmt::format("topology file '{}': not a valid hwloc XML export ({})", path,
                             std::strerror(errno)));
  }
  return read_topology(raw, fmt::format("xml file {}", path), false, nullptr);
}

Result<std::shared_ptr<SkbFacts>> load_synthetic(std::string_view description) {
  const std::string text(description);
  if (text.find_first_not_of(" \t\n") == std::string::npos) {
    return error(Errc::parse_error, "synthetic topology: empty description");
  }
  if (auto bad = bad_synthetic_token(text)) {
    return error(Errc::parse_error,
                 fmt::format("synthetic topology \"{}\": bad token '{}' (expected TYPE:COUNT "
                             "such as pack:2)",
                             text, *bad));
  }
  auto topology = make_topology();
  if (!topology) return std::move(topology).error();
  hwloc_topology_t raw = topology->get();
  if (hwloc_topology_set_synthetic(raw, text.c_str()) != 0 || hwloc_topology_load(raw) != 0) {
    return error(Errc::parse_error, fmt::format("synthetic topology \"{}\": hwloc rejects it ({})",
                                                text, std::strerror(errno)));
  }
  return read_topology(raw, fmt::format("synthetic \"{}\"", text), false, nullptr);
}

}  // namespace mk::detail
