// mk-skb: prints what the SKB knows about a machine and runs its queries.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>

#include "mk/latency_cache.h"
#include "mk/latency_probe.h"
#include "mk/skb.h"
#include "mk/wake_probe.h"
#include "runtime/idle_waiter.h"
#include "skb_print.h"

namespace {

struct Arguments {
  std::string topology;
  std::string facts;
  bool json = false;
  std::string root;
  std::string kind;
  std::string members = "all";
  std::string kernels;
  std::string policy = "compact";
  std::optional<int> cpukind;
  bool oversubscribe = false;
  std::string cache_dir;
  bool remeasure = false;
  std::size_t round_trips = mk::LatencyProbeOptions{}.round_trips;
};

int fail(const mk::Error& err) {
  std::fprintf(stderr, "mk-skb: error: %s\n", err.describe().c_str());
  return 1;
}

// The machine, with its cached measurements (live machine) and the user's facts on top.
mk::Result<mk::Skb> load(const Arguments& args) {
  auto skb = mk::Skb::load(args.topology);
  if (!skb) return skb;
  if (skb->is_live()) {
    // Latencies, wake costs, round trips per channel kind and the prefetch pair distance, as
    // boot loads them.
    if (auto cached = mk::load_cached_measurements(*skb, args.cache_dir); !cached) {
      std::fprintf(stderr, "mk-skb: warning: ignoring the latency cache: %s\n",
                   cached.error().describe().c_str());
    }
  }
  if (!args.facts.empty()) {
    if (auto asserted = skb->assert_facts_file(args.facts); !asserted) return asserted.error();
  }
  return skb;
}

int run_route(const mk::Skb& skb, const Arguments& args) {
  auto kind = mk::parse_route_kind(args.kind);
  if (!kind) return fail(kind.error());
  auto root = mk::tool::parse_core_list(args.root, skb);
  if (!root) return fail(root.error());
  if (root->size() != 1) {
    return fail(mk::error(mk::Errc::invalid_argument,
                          fmt::format("--root takes one core, not '{}'", args.root)));
  }
  auto members = mk::tool::parse_core_list(args.members, skb);
  if (!members) return fail(members.error());
  auto route = skb.route(root->front(), *members, *kind);
  if (!route) return fail(route.error());
  if (args.json) {
    std::printf("%s\n", mk::tool::json_text(mk::tool::route_json(*route), 2).c_str());
  } else {
    std::printf("%s", mk::tool::route_text(skb, *route).c_str());
  }
  return 0;
}

// A count of kernels: digits only, so that "-1" is refused instead of read as 2^64 - 1.
mk::Result<std::size_t> parse_kernels(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return mk::error(mk::Errc::invalid_argument,
                     fmt::format("N must be a number of kernels (1 or more), not '{}'", text));
  }
  std::size_t value = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc()) {
    return mk::error(mk::Errc::too_large, fmt::format("N = {} kernels is too many", text));
  }
  return value;
}

int run_place(const mk::Skb& skb, const Arguments& args) {
  auto kernels = parse_kernels(args.kernels);
  if (!kernels) return fail(kernels.error());
  auto policy = mk::parse_placement_policy(args.policy);
  if (!policy) return fail(policy.error());
  mk::PlacementOptions options;
  options.cpukind = args.cpukind;
  options.allow_oversubscription = args.oversubscribe;
  auto cores = skb.place(*kernels, *policy, options);
  if (!cores) return fail(cores.error());
  if (args.json) {
    std::printf("%s\n", mk::tool::json_text(nlohmann::json(*cores)).c_str());
  } else {
    std::printf("%s\n", fmt::format("{}", fmt::join(*cores, " ")).c_str());
  }
  return 0;
}

int run_measure(mk::Skb& skb, const Arguments& args) {
  if (!skb.is_live()) {
    return fail(mk::error(mk::Errc::unavailable,
                          fmt::format("measure needs the live machine, not the {}", skb.origin())));
  }
  mk::LatencySetup setup;
  setup.cache_dir = args.cache_dir;
  setup.remeasure = args.remeasure;
  setup.probe.round_trips = args.round_trips;
  auto progress = [](std::size_t done, std::size_t total) {
    std::fprintf(stderr, "\rmeasuring round trips: %zu/%zu pairs", done, total);
    if (done == total) std::fprintf(stderr, "\n");
  };
  auto origin = mk::load_or_measure_latencies(skb, setup, progress);
  if (!origin) return fail(origin.error());
  std::printf("latencies %s for machine %s\n",
              *origin == mk::LatencyOrigin::cache ? "read from the cache" : "measured and cached",
              skb.fingerprint().c_str());
  const auto& cores = skb.usable_cores();
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      const mk::CoreLatency latency = skb.latency(cores[i], cores[j]).value();
      std::printf("  pu %u-pu %u: min %lld ns, median %lld ns (%s)\n", cores[i], cores[j],
                  static_cast<long long>(latency.min.count()),
                  static_cast<long long>(latency.median.count()),
                  std::string(mk::to_string(latency.source)).c_str());
    }
  }
  auto woken = mk::load_or_measure_wake_costs(skb, setup);
  if (!woken) return fail(woken.error());
  std::printf("wake costs %s\n",
              *woken == mk::LatencyOrigin::cache ? "read from the cache" : "measured and cached");
  for (const mk::WakeCost& cost : skb.wake_costs()) {
    std::printf("%s\n",
                fmt::format("  {}: min {} ns, median {} ns ({})", mk::to_string(cost.mechanism),
                            cost.min.count(), cost.median.count(), mk::to_string(cost.source))
                    .c_str());
  }
  return 0;
}

// The wake mechanisms: each one's cost and whether this machine lets kernels use it, and what
// System::boot would choose (docs/runtime.md, "Wake mechanisms").
int run_wake(const mk::Skb& skb) {
  std::vector<mk::WakeMechanism> threads, processes;
  for (mk::WakeMechanism mechanism : mk::kWakeMechanisms) {
    auto cost = skb.wake_cost(mechanism);
    const std::string priced = cost ? fmt::format("min {} ns, median {} ns ({})", cost->min.count(),
                                                  cost->median.count(), mk::to_string(cost->source))
                                    : std::string("no cost measured or asserted");
    std::string usable;
    for (mk::Isolation isolation : {mk::Isolation::threads, mk::Isolation::processes}) {
      auto works =
          mk::runtime::check_wake_mechanism(mechanism, mk::WaitBackend::automatic, isolation);
      const char* name = isolation == mk::Isolation::threads ? "threads" : "processes";
      if (works) {
        (isolation == mk::Isolation::threads ? threads : processes).push_back(mechanism);
        usable += fmt::format("; {}: usable", name);
      } else {
        usable += fmt::format("; {}: {}", name, works.error().message);
      }
    }
    std::printf("%s\n", fmt::format("{}: {}{}", mk::to_string(mechanism), priced, usable).c_str());
  }
  for (const auto& [name, usable] : {std::pair{"threads", &threads}, {"processes", &processes}}) {
    const mk::WakeMechanism chosen = skb.wake_mechanism(*usable);
    std::printf("%s\n", fmt::format("chosen for kernels as {}: {}; poll budget {} ns", name,
                                    mk::to_string(chosen), skb.poll_budget(1, chosen).count())
                            .c_str());
  }
  return 0;
}

int run(const std::string& command, Arguments& args) {
  auto skb = load(args);
  if (!skb) return fail(skb.error());
  if (command == "show") {
    std::printf("%s", mk::tool::show_text(*skb).c_str());
  } else if (command == "facts") {
    if (args.json) {
      std::printf("%s\n", mk::tool::json_text(mk::tool::facts_json(*skb), 2).c_str());
    } else {
      std::printf("%s", mk::tool::facts_text(*skb).c_str());
    }
  } else if (command == "route") {
    return run_route(*skb, args);
  } else if (command == "place") {
    return run_place(*skb, args);
  } else if (command == "central") {
    auto central = skb->central_core();
    if (!central) return fail(central.error());
    std::printf("%u\n", *central);
  } else if (command == "measure") {
    return run_measure(*skb, args);
  } else if (command == "wake") {
    return run_wake(*skb);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  CLI::App app{"mk-skb: what mk knows about the machine, and the queries that use it"};
  app.require_subcommand(1);
  app.add_option("--topology", args.topology,
                 "hwloc XML file or synthetic description (default: the live machine)");
  app.add_option("--facts", args.facts, "JSON file of asserted facts (docs/skb.md)");
  app.add_option("--cache-dir", args.cache_dir,
                 "latency cache directory (default: $XDG_CACHE_HOME/mk or ~/.cache/mk)");

  app.add_subcommand("show", "the machine as mk sees it");
  CLI::App* facts = app.add_subcommand("facts", "every fact with its source");
  facts->add_flag("--json", args.json, "JSON output");

  CLI::App* route = app.add_subcommand("route", "a route from a root core to a set of cores");
  route->add_option("--root", args.root, "sending core")->required();
  route->add_option("--kind", args.kind, "unicast, broadcast, multicast or numa-multicast")
      ->required();
  route->add_option("--members", args.members, "cores such as 0-3,8, or all (default)");
  route->add_flag("--json", args.json, "JSON output");

  CLI::App* place = app.add_subcommand("place", "cores for N kernels");
  place->add_option("N", args.kernels, "number of kernels")->required();
  place->add_option("--policy", args.policy,
                    "compact (default), spread, one-per-numa-node or by-cpukind");
  place->add_option("--cpukind", args.cpukind, "with by-cpukind: only this kind");
  place->add_flag("--oversubscribe", args.oversubscribe, "allow more kernels than cores");
  place->add_flag("--json", args.json, "JSON output");

  app.add_subcommand("central", "the core with the lowest worst-case distance to the others");
  app.add_subcommand("wake", "wake mechanisms: their costs, which work here, the chosen one");

  CLI::App* measure =
      app.add_subcommand("measure", "measure and cache round-trip latencies and wake costs");
  measure->add_flag("--remeasure", args.remeasure, "measure even if the cache has them");
  measure->add_option("--round-trips", args.round_trips, "timed round trips per pair")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports a misspelt command as a missing one; name what was typed instead.
    const std::vector<std::string> rest = app.remaining();
    if (!rest.empty()) {
      std::fprintf(stderr,
                   "mk-skb: error: unknown command or argument '%s' (commands: show, facts, "
                   "route, place, central, wake, measure)\n",
                   rest.front().c_str());
    } else {
      std::fprintf(stderr, "mk-skb: error: %s\n", e.what());
    }
    return 2;
  }

  // Every error is a value; this is the last line of defence for a bug that throws.
  try {
    return run(app.get_subcommands().front()->get_name(), args);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mk-skb: error: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mk-skb: error: internal: %s (a bug in mk-skb)\n", e.what());
  }
  return 1;
}
