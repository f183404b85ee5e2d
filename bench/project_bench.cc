// mk-bench project: how a one-phase update acknowledged by every kernel (a TLB-shootdown-like
// operation) scales with the number of cores on a machine we do not have, projected by the
// simulator with message costs measured on this machine, or, with --profile, with the
// asserted per-pair latencies of a machine profile under the cache-line model.
#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host_costs.h"
#include "mk/replicated.h"
#include "mk/simulation.h"
#include "profile.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {

/// The replicated object of the projection: additions commute, so one-phase suits it.
struct ProjectCounter {
  struct Op {
    std::int64_t add;
  };
  using Result = std::int64_t;
  std::int64_t value = 0;

  Result apply(const Op& op) { return value += op.add; }
};

namespace {

// The paper's 32-core AMD system: eight packages of four cores, one NUMA node each.
constexpr std::string_view kDefaultTopology = "pack:8 numa:1 core:4 pu:1";
constexpr std::array<RouteKind, 4> kRoutes = {RouteKind::unicast, RouteKind::broadcast,
                                              RouteKind::multicast, RouteKind::numa_multicast};
// Updates measured per point after one unmeasured one; virtual time varies only by jitter.
constexpr std::size_t kUpdates = 9;

std::string route_name(RouteKind route) {
  std::string name(to_string(route));
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

/// Core counts to project: every count from 2 to all cores; in quick mode powers of two and
/// all cores.
std::vector<std::size_t> core_counts(std::size_t cores, bool quick) {
  std::vector<std::size_t> counts;
  for (std::size_t n = 2; n < cores; n = quick ? n * 2 : n + 1)
    counts.push_back(n);
  if (cores >= 2) counts.push_back(cores);
  return counts;
}

/// The median virtual latency of a one-phase update from kernel 0 acknowledged by all
/// `kernels` kernels over `route`; the error when the simulation failed.
mk::Result<double> project_point(const Skb& machine, std::size_t kernels, RouteKind route,
                                 const SimCosts& costs) {
  mk::SimulationOptions options;
  options.skb = machine;
  options.kernels = kernels;
  options.seed = 1;
  options.costs = costs;
  auto sim = Simulation::create(std::move(options));
  if (!sim) return std::move(sim).error();
  auto samples = (*sim)->run(0, [route](Kernel& k) -> Task<mk::Result<std::vector<double>>> {
    ReplicaOptions replica;
    replica.protocol = Protocol::one_phase;
    replica.route = route;
    auto counter = co_await Replicated<ProjectCounter>::create_async(k, {}, replica);
    if (!counter) co_return std::move(counter).error();
    std::vector<double> out;
    for (std::size_t i = 0; i <= kUpdates; ++i) {
      const Instant t0 = k.now();
      auto applied = co_await counter->propose(k, {1});
      const Instant t1 = k.now();
      if (!applied) co_return std::move(applied).error();
      if (i > 0) out.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
    co_return out;
  });
  (void)(*sim)->shutdown();
  if (!samples) return std::move(samples).error();
  if (!*samples) return std::move(*samples).error();
  return median(**samples);
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
  SimCosts costs;
  double clock_ghz = 0;
  if (!options.profile.empty()) {
    // A profile's projection depends on the profile alone: nothing is measured here.
    auto profile = load_profile(options.profile);
    if (!profile) {
      fmt::print(stderr, "mk-bench project: {}\n", profile.error().describe());
      return;
    }
    machine = std::move(profile->machine);
    clock_ghz = profile->clock_ghz;
    costs.lines.enabled = true;
    fmt::print(stderr,
               "mk-bench project: profile {} ({}, {} GHz)\nmk-bench project: the cache-line "
               "model: a slot costs its writer and its reader one line transfer each, priced "
               "at the asserted one-way latency to the buffer's node / {}; {} ns per kernel "
               "turn, jitter up to {} ns (seeded)\n",
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
        report.add({fmt::format("project.{}.{}.latency_cycles", route_name(kRoutes[r]), n),
                    *ns * clock_ghz, "cycles", std::nullopt, std::nullopt});
      }
    }
  }
  print_curves(*machine, curves, clock_ghz);
}

}  // namespace mk::bench
