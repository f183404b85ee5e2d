#include "fuzz/skb_checks.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <string>

#include "mk/channel_geometry.h"
#include "skb/central_reference.h"
#include "tools/skb_print.h"

namespace mk::fuzz {
namespace {

// The quadratic definition is cheap enough per input below this many cores.
constexpr std::size_t kMaxReferenceCores = 64;

using test::central_by_definition;

void check_route(const Skb& skb, const std::vector<CoreId>& cores, RouteKind kind) {
  auto route = skb.route(cores.front(), cores, kind);
  require(route.ok(), "a route to every usable core exists");
  require(!route->nodes.empty() && route->nodes.front().core == cores.front(),
          "a route starts at its root");
  std::set<CoreId> seen;
  for (const RouteNode& node : route->nodes)
    require(seen.insert(node.core).second, "a route visits each core once");
  for (CoreId core : cores)
    require(seen.contains(core), "a route reaches every member");
}

}  // namespace

void require(bool condition, std::string_view what) {
  if (condition) return;
  std::fprintf(stderr, "invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

void check_error(const Error& err, std::string_view name) {
  require(err.message.find(name) != std::string::npos, "an error names its input");
}

void check_queries(const Skb& skb) {
  const std::vector<CoreId>& usable = skb.usable_cores();
  require(!usable.empty(), "a loaded machine has a usable core");
  require(std::is_sorted(usable.begin(), usable.end()), "usable cores ascend");
  const MachineCounts counts = skb.counts();
  require(counts.pus == usable.size(), "counts.pus is the number of usable cores");
  require(!skb.facts().empty(), "a machine has facts");
  require(skb.cache_line_size() >= 16, "a cache line is at least 16 bytes");

  auto central = skb.central_core();
  require(central.ok() && skb.is_usable(*central), "the central core is usable");
  if (usable.size() <= kMaxReferenceCores) {
    require(*central == central_by_definition(skb, usable), "central_core() equals its definition");
    // Every other core too, so that subsets (one NUMA node, a pair) are covered.
    std::vector<CoreId> alternate;
    for (std::size_t i = 0; i < usable.size(); i += 2)
      alternate.push_back(usable[i]);
    require(*skb.central_core(alternate) == central_by_definition(skb, alternate),
            "central_core(subset) equals its definition");
  }

  for (PlacementPolicy policy : {PlacementPolicy::compact, PlacementPolicy::spread,
                                 PlacementPolicy::one_per_numa_node, PlacementPolicy::by_cpukind}) {
    PlacementOptions options;
    options.allow_oversubscription = true;
    for (std::size_t n : {std::size_t{1}, usable.size(), 2 * usable.size() + 1,
                          std::numeric_limits<std::size_t>::max()}) {
      auto placed = skb.place(n, policy, options);
      if (!placed) continue;
      require(placed->size() == n, "a placement has n cores");
      for (CoreId core : *placed)
        require(skb.is_usable(core), "a placement uses usable cores only");
    }
  }

  for (RouteKind kind : {RouteKind::unicast, RouteKind::broadcast, RouteKind::multicast,
                         RouteKind::numa_multicast}) {
    check_route(skb, usable, kind);
  }

  const CoreId first = usable.front();
  const CoreId last = usable.back();
  require(skb.distance(first, first).value() == 0, "a core is at distance 0 from itself");
  require(skb.distance(first, last).ok(), "usable cores have a distance");
  require(skb.numa_node_of(first).ok(), "a usable core has a NUMA node");
  for (const NumaNodeInfo& node : skb.numa_nodes()) {
    require(skb.numa_distance(node.os_index, node.os_index).value() == 10,
            "a NUMA node is at distance 10 from itself");
    require(skb.numa_distance(skb.numa_nodes().front().os_index, node.os_index).ok(),
            "every pair of NUMA nodes has a distance");
  }
  for (const MemoryRequest& request :
       {MemoryRequest::fastest_near(first), MemoryRequest::nearest_to(last)}) {
    auto node = skb.memory_node(request);
    require(node.ok() == !skb.numa_nodes().empty(), "a usable core has some memory");
    if (node) require(skb.memory_node(MemoryRequest::numa_node(*node)).ok(), "it names a node");
  }
  // The transport's rule judges whatever the facts say: options it accepts, or an error naming
  // the fact, never a crash.
  if (auto options = channel_options_for(skb, first, last)) {
    require(options->slots >= min_ring_slots(options->line_size) &&
                (options->slots & (options->slots - 1)) == 0,
            "ring slots are a power of two, at least the transport's minimum");
    require(options->separation >= options->line_size, "the separation is at least a line");
  } else {
    require(options.error().code == Errc::invalid_argument, "bad facts are invalid_argument");
  }
  (void)skb.poll_budget(usable.size());
  (void)skb.transport(first, last);

  require(!tool::show_text(skb).empty(), "show prints the machine");
  require(!tool::facts_text(skb).empty(), "facts prints the facts");
  require(!tool::json_text(tool::facts_json(skb), 2).empty(), "facts --json prints JSON");
  if (auto route = skb.route(first, usable, RouteKind::numa_multicast)) {
    require(!tool::route_text(skb, *route).empty(), "route prints the route");
    require(!tool::json_text(tool::route_json(*route), 2).empty(), "route --json prints JSON");
  }
}

}  // namespace mk::fuzz
