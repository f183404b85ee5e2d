// mk-bench project: how a one-phase update acknowledged by every kernel (a TLB-shootdown-like
// operation) scales with the number of cores on a machine we do not have, projected by the
// simulator with message costs measured on this machine, or, with --profile, with the
// asserted per-pair latencies of a machine profile under the cache-line model.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host_costs.h"
#include "mk/replicated.h"
#include "mk/simulation.h"
#include "profile.h"
#include "projection.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {

namespace {

// The paper's 32-core AMD system: eight packages of four cores, one NUMA node each.
constexpr std::string_view kDefaultTopology = "pack:8 numa:1 core:4 pu:1";
/// Core counts to project: every count from 2 to all cores; in quick mode powers of two and
/// all cores.
std::vector<std::size_t> core_counts(std::size_t cores, bool quick) {
  std::vector<std::size_t> counts;
  for (std::size_t n = 2; n < cores; n = quick ? n * 2 : n + 1)
    counts.push_back(n);
  if (cores >= 2) counts.push_back(cores);
  return counts;
}

/// Prints the curves in ns and, when `clock_ghz` is positive, in cycles of that clock.
void print_curves(const Skb& machine, const std::map<std::size_t, std::array<double, 4>>& curves,
                  double clock_ghz) {
  fmt::print(
      "\nprojection on {}: latency (virtual time) of a one-phase update from kernel 0\n"
      "acknowledged by every kernel, one kernel per core\n",
      machine.origin());
  auto table = [&](const char* unit, double scale) {
    fmt::print("{:>6}", "cores");
    for (RouteKind route : kRoutes)
      fmt::print(" {:>18}", route_name(route) + " " + unit);
    fmt::print("\n");
    for (const auto& [cores, row] : curves) {
      fmt::print("{:>6}", cores);
      for (double ns : row)
        fmt::print(" {:>18}", ns > 0 ? fmt::format("{:.0f}", ns * scale) : std::string("-"));
      fmt::print("\n");
    }
  };
  table("ns", 1);
  if (clock_ghz > 0) {
    fmt::print("\nthe same in cycles at {} GHz\n", clock_ghz);
    table("cycles", clock_ghz);
  }
  fmt::print("\n");
}

/// How far a projected ratio to unicast may be from the reference's and still match it.
constexpr double kRatioTolerance = 0.30;

std::optional<double> reference_value(const MachineProfile& profile, std::size_t cores,
                                      RouteKind route) {
  for (const ReferencePoint& point : profile.reference) {
    if (point.cores == cores && point.route == route) return point.value;
  }
  return std::nullopt;
}

/// The projection beside the profile's reference figures: each point in cycles, and at every
/// core count where the reference has unicast and another route, the two ratios to unicast.
void compare_with_reference(const MachineProfile& profile,
                            const std::map<std::size_t, std::array<double, 4>>& curves,
                            Report& report) {
  fmt::print("beside the reference: {}\n", profile.reference_source);
  fmt::print("{:>6} {:>15} {:>10} {:>10} {:>8}   {:>22}\n", "cores", "route", "projected",
             "reference", "ratio", "to unicast: proj / ref");
  for (const ReferencePoint& point : profile.reference) {
    const std::string name =
        fmt::format("project.reference.{}.{}.latency_cycles", route_name(point.route), point.cores);
    report.add({name, point.value, "cycles", std::nullopt, std::nullopt});
    auto row = curves.find(point.cores);
    const auto r = static_cast<std::size_t>(std::find(kRoutes.begin(), kRoutes.end(), point.route) -
                                            kRoutes.begin());
    if (row == curves.end() || row->second[r] <= 0) {
      fmt::print("{:>6} {:>15} {:>10} {:>10.0f}\n", point.cores, route_name(point.route), "-",
                 point.value);
      continue;
    }
    const double projected = row->second[r] * profile.clock_ghz;
    std::string to_unicast;
    const auto unicast = reference_value(profile, point.cores, RouteKind::unicast);
    if (point.route != RouteKind::unicast && unicast && row->second[0] > 0) {
      const double ours = row->second[r] / row->second[0];
      const double theirs = point.value / *unicast;
      const bool close = std::abs(ours / theirs - 1) <= kRatioTolerance;
      to_unicast = fmt::format("{:.2f} / {:.2f} ({})", ours, theirs,
                               close ? "within 30%" : "off by more than 30%");
    }
    fmt::print("{:>6} {:>15} {:>10.0f} {:>10.0f} {:>8.2f}   {}\n", point.cores,
               route_name(point.route), projected, point.value, projected / point.value,
               to_unicast);
  }
  fmt::print("\n");
}

/// The per-message model with this host's measured costs, when they can be measured; the
/// simulator's defaults otherwise.
void measure_costs(const Options& options, Report& report, SimCosts& costs) {
  bool measured = false;
  if (auto here = Skb::discover()) {
    if (auto host = measure_host_costs(*here, options.quick)) {
      costs = sim_costs_from(*host);
      measured = true;
      report.add({"project.host.rtt_ns", host->rtt_ns, "ns", std::nullopt, std::nullopt});
      report.add(
          {"project.host.per_message_ns", host->per_message_ns, "ns", std::nullopt, std::nullopt});
    }
  }
  fmt::print(stderr, "mk-bench project: {}\n", describe(costs, measured));
}

}  // namespace

void run_project(const Options& options, Report& report) {
  std::optional<Skb> machine;
  std::optional<MachineProfile> profile;
  SimCosts costs;
  double clock_ghz = 0;
  if (!options.profile.empty()) {
    // A profile's projection depends on the profile alone: nothing is measured here.
    auto loaded = load_profile(options.profile);
    if (!loaded) {
      fmt::print(stderr, "mk-bench project: {}\n", loaded.error().describe());
      return;
    }
    profile = std::move(*loaded);
    machine = std::move(profile->machine);
    clock_ghz = profile->clock_ghz;
    costs.lines.enabled = true;
    fmt::print(stderr,
               "mk-bench project: profile {} ({}, {} GHz)\nmk-bench project: the cache-line "
               "model: a slot travels from its writer to the buffer's node while the writer "
               "goes on, and costs its reader a line transfer from there, each priced at the "
               "asserted one-way latency / {}; buffers where each route puts them, a "
               "broadcast's one buffer read by one reader at a time; {} ns per kernel turn, "
               "jitter up to {} ns (seeded)\n",
               profile->path, profile->topology, clock_ghz, costs.lines.transfers_per_message,
               costs.turn.count(), costs.jitter.count());
  } else {
    const std::string topology =
        options.topology.empty() ? std::string(kDefaultTopology) : options.topology;
    auto loaded = Skb::load(topology);
    if (!loaded) {
      fmt::print(stderr, "mk-bench project: --topology {}: {}\n", topology,
                 loaded.error().describe());
      return;
    }
    machine = std::move(*loaded);
    fmt::print(stderr, "mk-bench project: machine {}\n", machine->origin());
    measure_costs(options, report, costs);
  }

  const std::size_t cores = machine->usable_cores().size();
  std::map<std::size_t, std::array<double, 4>> curves;
  for (std::size_t n : core_counts(cores, options.quick)) {
    auto& row = curves[n];
    for (std::size_t r = 0; r < kRoutes.size(); ++r) {
      auto ns = project_point(*machine, n, kRoutes[r], costs);
      if (!ns) {
        fmt::print(stderr, "mk-bench project: {} on {} cores: {}\n", to_string(kRoutes[r]), n,
                   ns.error().describe());
        row[r] = -1;
        continue;
      }
      row[r] = *ns;
      const std::string unicast = fmt::format("project.unicast.{}.latency_ns", n);
      const bool is_unicast = kRoutes[r] == RouteKind::unicast;
      report.add({fmt::format("project.{}.{}.latency_ns", route_name(kRoutes[r]), n), *ns, "ns",
                  is_unicast || row[0] <= 0 ? std::nullopt : std::optional(unicast), std::nullopt});
      if (clock_ghz > 0) {
        const bool referenced = profile && reference_value(*profile, n, kRoutes[r]);
        report.add({fmt::format("project.{}.{}.latency_cycles", route_name(kRoutes[r]), n),
                    *ns * clock_ghz, "cycles",
                    referenced ? std::optional(fmt::format("project.reference.{}.{}.latency_cycles",
                                                           route_name(kRoutes[r]), n))
                               : std::nullopt,
                    std::nullopt});
      }
    }
  }
  print_curves(*machine, curves, clock_ghz);
  if (profile && !profile->reference.empty()) compare_with_reference(*profile, curves, report);
}

}  // namespace mk::bench
