#include "machine_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "mk/latency_probe.h"
#include "mk/skb.h"

namespace mk::bench {

std::string machine_rtt_name(CoreId a, CoreId b) {
  return fmt::format("machine.rtt_ns.{}.{}", std::min(a, b), std::max(a, b));
}

static std::string bytes(std::uint64_t n) {
  if (n == 0) return "unknown size";
  if (n % (1024 * 1024) == 0) return fmt::format("{} MiB", n / (1024 * 1024));
  return fmt::format("{} KiB", n / 1024);
}

mk::Result<MachineFacts> measure_machine(bool quick, Report& report) {
  auto skb = Skb::discover();
  if (!skb) return skb.error();
  MachineFacts facts;
  facts.cores = skb->usable_cores();
  const MachineCounts counts = skb->counts();
  facts.rows.emplace_back("topology", skb->origin());
  facts.rows.emplace_back("packages", fmt::format("{}", counts.packages));
  facts.rows.emplace_back("NUMA nodes", fmt::format("{}", counts.numa_nodes));
  facts.rows.emplace_back("physical cores", fmt::format("{}", counts.cores));
  facts.rows.emplace_back("usable PUs (mk cores)", fmt::format("{}", counts.pus));
  facts.rows.emplace_back("cache line", fmt::format("{} B", skb->cache_line_size()));
  // Caches of one level and size, with how many of them and how many PUs share each.
  std::map<std::pair<int, std::uint64_t>, std::pair<std::size_t, std::size_t>> caches;
  for (const CacheInfo& cache : skb->caches()) {
    auto& [instances, pus] = caches[{cache.level, cache.size}];
    ++instances;
    pus = std::max(pus, cache.cores.size());
  }
  for (const auto& [key, value] : caches) {
    facts.rows.emplace_back(
        fmt::format("L{} cache", key.first),
        fmt::format("{} x {}, shared by {} PU(s)", value.first, bytes(key.second), value.second));
  }
  if (facts.cores.size() < 2) return facts;

  LatencyProbeOptions probe;
  probe.round_trips = quick ? 500 : 2000;
  probe.warmup = quick ? 50 : 200;
  auto progress = [](std::size_t done, std::size_t all) {
    if (done == all || done % 64 == 0) {
      fmt::print(stderr, "mk-bench report: machine: round trips, pair {} of {}\n", done, all);
    }
  };
  auto measured = measure_latencies(*skb, probe, progress);
  if (!measured) {
    // The rest of the report does not need the matrix: say why it is missing instead.
    facts.rows.emplace_back("core-to-core round trip",
                            "not measured: " + measured.error().describe());
    return facts;
  }
  for (const CoreLatency& pair : *measured) {
    report.add({machine_rtt_name(pair.a, pair.b), static_cast<double>(pair.median.count()), "ns",
                std::nullopt, std::nullopt});
  }
  return facts;
}

}  // namespace mk::bench
