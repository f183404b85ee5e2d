#include "skb_print.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>

namespace mk::tool {
namespace {

std::string human_bytes(std::uint64_t bytes) {
  if (bytes == 0) return "?";
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return value == static_cast<double>(static_cast<std::uint64_t>(value))
             ? fmt::format("{} {}", static_cast<std::uint64_t>(value), units[unit])
             : fmt::format("{:.1f} {}", value, units[unit]);
}

std::string cache_text(const Skb& skb, const CoreInfo& core) {
  std::string text;
  for (std::size_t index : core.caches) {
    const CacheInfo& cache = skb.caches()[index];
    text += fmt::format("  L{} {}", cache.level, human_bytes(cache.size));
    if (cache.cores.size() > 1) text += fmt::format(" (pus {})", format_core_list(cache.cores));
  }
  return text;
}

// Cores `pus` grouped by package, each in hwloc's logical order, one line per PU.
void print_cores(const Skb& skb, const std::vector<CoreId>& pus, std::string& out) {
  std::map<int, std::vector<const CoreInfo*>> packages;
  for (CoreId pu : pus) {
    // cores() ascends by pu.
    const auto core =
        std::lower_bound(skb.cores().begin(), skb.cores().end(), pu,
                         [](const CoreInfo& info, CoreId id) { return info.pu < id; });
    packages[core->package].push_back(&*core);
  }
  for (auto& [package, cores] : packages) {
    out += package >= 0 ? fmt::format("  package {}\n", package) : "  (no package)\n";
    std::sort(cores.begin(), cores.end(), [](const CoreInfo* a, const CoreInfo* b) {
      return a->logical_index < b->logical_index;
    });
    for (const CoreInfo* core : cores) {
      std::string status;
      if (!core->allowed) status = "  [disallowed]";
      if (core->disabled) status = "  [disabled by facts]";
      std::string kind;
      if (core->cpukind >= 0) {
        kind = fmt::format("  kind {} (efficiency {})", core->cpukind, core->efficiency);
      }
      std::string line = fmt::format("    core {:<3} pu {:<4}{}{}{}", core->core, core->pu,
                                     cache_text(skb, *core), kind, status);
      line.erase(line.find_last_not_of(' ') + 1);
      out += line + '\n';
    }
  }
}

// What a node header says beyond its size: memory-only, and hwloc's memory attributes.
std::string memory_text(const NumaNodeInfo& node) {
  std::string text;
  if (node.memory_only()) {
    text += node.near.empty()
                ? ": memory only"
                : fmt::format(": memory only, near pus {}", format_core_list(node.near));
  }
  auto attribute = [&](std::string_view name, const MemoryAttribute& values,
                       std::string_view unit) {
    for (const MemoryAccessValue& entry : values.by_initiator) {
      text += fmt::format("; {} {} {}", name, entry.value, unit);
      if (entry.from != node.near)
        text += fmt::format(" from pus {}", format_core_list(entry.from));
    }
  };
  attribute("bandwidth", node.bandwidth, "MiB/s");
  attribute("latency", node.latency, "ns");
  return text;
}

void print_tree(const Skb& skb, const Route& route, CoreId core, int depth, std::string& out) {
  const RouteNode* node = route.find(core);
  for (const RouteSend& send : node->sends) {
    const int distance = skb.distance(core, send.to).value();
    out += fmt::format("{:{}}-> pu {} (buffer on NUMA node {}, distance {})\n", "", depth * 2,
                       send.to, send.buffer_numa_node, distance);
    print_tree(skb, route, send.to, depth + 1, out);
  }
}

}  // namespace

std::string json_text(const nlohmann::json& doc, int indent) {
  return doc.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string format_core_list(const std::vector<CoreId>& cores) {
  std::string text;
  for (std::size_t i = 0; i < cores.size();) {
    std::size_t j = i;
    while (j + 1 < cores.size() && cores[j + 1] == cores[j] + 1)
      ++j;
    if (!text.empty()) text += ',';
    text += j == i ? fmt::format("{}", cores[i]) : fmt::format("{}-{}", cores[i], cores[j]);
    i = j + 1;
  }
  return text.empty() ? "none" : text;
}

Result<std::vector<CoreId>> parse_core_list(std::string_view text, const Skb& skb) {
  if (text == "all") return skb.usable_cores();
  std::vector<CoreId> cores;
  auto number = [](std::string_view item, CoreId& out) {
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), out);
    return ec == std::errc() && end == item.data() + item.size() && !item.empty();
  };
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const auto dash = item.find('-');
    CoreId first = 0;
    CoreId last = 0;
    const bool ok = dash == std::string_view::npos
                        ? number(item, first) && number(item, last)
                        : number(item.substr(0, dash), first) &&
                              number(item.substr(dash + 1), last) && first <= last;
    if (!ok) {
      return error(Errc::parse_error,
                   fmt::format("core list item '{}' is not N or N-M (as in 0-3,8)", item));
    }
    // No machine has this many cores; a bigger range is a typo, not a request for gigabytes.
    if (last - first >= 65536) {
      return error(Errc::invalid_argument, fmt::format("core range '{}' is too large", item));
    }
    for (CoreId core = first; core <= last; ++core) {
      cores.push_back(core);
      if (core == last) break;
    }
  }
  if (cores.empty()) return error(Errc::invalid_argument, "empty core list");
  return cores;
}

std::string show_text(const Skb& skb) {
  std::string out;
  const MachineCounts counts = skb.counts();
  out += fmt::format("{}\n", skb.origin());
  out += fmt::format("usable: {} PUs, {} cores, {} packages, {} NUMA nodes; cache line {} B\n",
                     counts.pus, counts.cores, counts.packages, counts.numa_nodes,
                     skb.cache_line_size());
  for (const NumaNodeInfo& node : skb.numa_nodes()) {
    out += fmt::format("NUMA node {} ({}{}){}\n", node.os_index, human_bytes(node.memory_bytes),
                       node.kind.empty() ? "" : ", " + node.kind, memory_text(node));
    print_cores(skb, node.cores, out);
  }
  std::vector<CoreId> nodeless;
  for (const CoreInfo& core : skb.cores()) {
    if (core.online && core.numa_node < 0) nodeless.push_back(core.pu);
  }
  if (!nodeless.empty()) {
    out += "no local NUMA node (memory from any node)\n";
    print_cores(skb, nodeless, out);
  }
  std::vector<CoreId> offline;
  for (const CoreInfo& core : skb.cores()) {
    if (!core.online) offline.push_back(core.pu);
  }
  if (!offline.empty()) out += fmt::format("offline PUs: {}\n", format_core_list(offline));
  for (std::size_t i = 0; i < skb.cpukinds().size(); ++i) {
    const CpuKindInfo& kind = skb.cpukinds()[i];
    out += fmt::format("cpukind {}: efficiency {}{}, pus {}\n", i, kind.efficiency,
                       kind.name.empty() ? "" : fmt::format(" ({})", kind.name),
                       format_core_list(kind.cores));
  }
  // Node-to-node distances as the SKB uses them, memory-only nodes included.
  const auto& nodes = skb.numa_nodes();
  if (nodes.size() > 1) {
    out += "NUMA distances (10 = local):\n      ";
    for (const NumaNodeInfo& node : nodes)
      out += fmt::format("{:>5}", node.os_index);
    out += '\n';
    for (const NumaNodeInfo& from : nodes) {
      out += fmt::format("  {:>3} ", from.os_index);
      for (const NumaNodeInfo& to : nodes)
        out += fmt::format("{:>5}", skb.numa_distance(from.os_index, to.os_index).value());
      out += '\n';
    }
  }
  if (auto central = skb.central_core()) out += fmt::format("central core: pu {}\n", *central);
  const auto& usable = skb.usable_cores();
  if (usable.size() > 1 && skb.has_latencies(usable)) {
    out += "latencies (round trip, median ns):\n";
    for (std::size_t i = 0; i < usable.size(); ++i) {
      for (std::size_t j = i + 1; j < usable.size(); ++j) {
        const CoreLatency latency = skb.latency(usable[i], usable[j]).value();
        out += fmt::format("  pu {}-pu {}: min {} ns, median {} ns ({})\n", usable[i], usable[j],
                           latency.min.count(), latency.median.count(), to_string(latency.source));
      }
    }
  }
  const std::vector<WakeCost> wakes = skb.wake_costs();
  if (!wakes.empty() || skb.asserted_wake_mechanism()) {
    out += "wake costs (notification to sleeper running):\n";
    for (const WakeCost& cost : wakes) {
      out += fmt::format("  {}: min {} ns, median {} ns ({})\n", to_string(cost.mechanism),
                         cost.min.count(), cost.median.count(), to_string(cost.source));
    }
    // Among every mechanism; `mk-skb wake` says which this machine allows, as boot does.
    out += fmt::format("  preferred: {}{}\n", to_string(skb.wake_mechanism()),
                       skb.asserted_wake_mechanism() ? " (asserted)" : "");
  }
  return out;
}

nlohmann::json facts_json(const Skb& skb) {
  const MachineCounts counts = skb.counts();
  nlohmann::json doc;
  doc["origin"] = skb.origin();
  doc["fingerprint"] = skb.fingerprint();
  doc["cache_line_size"] = skb.cache_line_size();
  doc["pus"] = counts.pus;
  doc["cores"] = counts.cores;
  doc["numa_nodes"] = counts.numa_nodes;
  doc["packages"] = counts.packages;
  doc["core_list"] = nlohmann::json::array();
  doc["unusable_pus"] = nlohmann::json::array();
  for (const CoreInfo& core : skb.cores()) {
    nlohmann::json entry = {{"pu", core.pu},           {"core", core.core},
                            {"package", core.package}, {"numa_node", core.numa_node},
                            {"online", core.online},   {"allowed", core.allowed},
                            {"usable", core.usable()}};
    if (core.cpukind >= 0) {
      entry["cpukind"] = core.cpukind;
      entry["efficiency"] = core.efficiency;
    }
    doc[core.usable() ? "core_list" : "unusable_pus"].push_back(std::move(entry));
  }
  doc["numa_node_list"] = nlohmann::json::array();
  for (const NumaNodeInfo& node : skb.numa_nodes()) {
    nlohmann::json entry = {{"os_index", node.os_index},
                            {"memory_bytes", node.memory_bytes},
                            {"memory_only", node.memory_only()},
                            {"cores", node.cores},
                            {"near", node.near}};
    if (!node.kind.empty()) entry["kind"] = node.kind;
    for (const auto& [name, values] :
         {std::pair{"bandwidth_mib_s", &node.bandwidth}, std::pair{"latency_ns", &node.latency}}) {
      if (values->local) entry[name] = *values->local;
      for (const MemoryAccessValue& value : values->by_initiator) {
        entry[std::string(name) + "_by_initiator"].push_back(
            {{"from", value.from}, {"value", value.value}});
      }
    }
    nlohmann::json distances = nlohmann::json::array();
    for (const NumaNodeInfo& to : skb.numa_nodes())
      distances.push_back(skb.numa_distance(node.os_index, to.os_index).value());
    entry["distances"] = std::move(distances);
    doc["numa_node_list"].push_back(std::move(entry));
  }
  doc["facts"] = nlohmann::json::array();
  for (const Fact& fact : skb.facts()) {
    doc["facts"].push_back({{"subject", fact.subject},
                            {"property", fact.property},
                            {"value", fact.value},
                            {"source", to_string(fact.source)}});
  }
  return doc;
}

std::string facts_text(const Skb& skb) {
  const std::vector<Fact> facts = skb.facts();
  std::size_t subject = 7;
  std::size_t property = 8;
  for (const Fact& fact : facts) {
    subject = std::max(subject, fact.subject.size());
    property = std::max(property, fact.property.size());
  }
  std::string out = fmt::format("{:<{}}  {:<{}}  {:<10}  {}\n", "subject", subject, "property",
                                property, "source", "value");
  for (const Fact& fact : facts) {
    out += fmt::format("{:<{}}  {:<{}}  {:<10}  {}\n", fact.subject, subject, fact.property,
                       property, to_string(fact.source), fact.value);
  }
  return out;
}

std::string route_text(const Skb& skb, const Route& route) {
  std::size_t sends = 0;
  for (const RouteNode& node : route.nodes)
    sends += node.sends.size();
  std::string out = fmt::format(
      "{} route from pu {} to {} cores: {} messages, {} buffers written\n", to_string(route.kind),
      route.root, route.nodes.size(), sends, route.buffers_written());
  out += fmt::format("pu {}\n", route.root);
  print_tree(skb, route, route.root, 1, out);
  return out;
}

nlohmann::json route_json(const Route& route) {
  nlohmann::json doc;
  doc["kind"] = to_string(route.kind);
  doc["root"] = route.root;
  doc["buffers_written"] = route.buffers_written();
  doc["nodes"] = nlohmann::json::array();
  for (const RouteNode& node : route.nodes) {
    nlohmann::json entry;
    entry["core"] = node.core;
    entry["parent"] = node.parent ? nlohmann::json(*node.parent) : nlohmann::json(nullptr);
    entry["sends"] = nlohmann::json::array();
    for (const RouteSend& send : node.sends) {
      entry["sends"].push_back({{"to", send.to}, {"buffer_numa_node", send.buffer_numa_node}});
    }
    doc["nodes"].push_back(std::move(entry));
  }
  return doc;
}

}  // namespace mk::tool
