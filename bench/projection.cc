#include "projection.h"

#include <chrono>
#include <cstdint>
#include <vector>

#include "bench_counter.h"
#include "mk/replicated.h"
#include "mk/simulation.h"
#include "stats.h"

namespace mk::bench {

namespace {

// Updates measured per point after one unmeasured one; virtual time varies only by jitter.
constexpr std::size_t kUpdates = 9;

/// The median virtual latency of updates proposed one after another by kernel 0 of `kernels`
/// kernels on `machine`, kept as `replica` says, each complete as `completion` says.
Result<double> project_update(const Skb& machine, std::size_t kernels, const SimCosts& costs,
                              ReplicaOptions replica, Completion completion = Completion::local) {
  mk::SimulationOptions options;
  options.skb = machine;
  options.kernels = kernels;
  options.seed = 1;
  options.costs = costs;
  auto sim = Simulation::create(std::move(options));
  if (!sim) return std::move(sim).error();
  auto samples =
      (*sim)->run(0,
                  [replica = std::move(replica),
                   completion](Kernel& k) -> Task<mk::Result<std::vector<double>>> {
                    auto counter = co_await Replicated<BenchCounter>::create_async(k, {}, replica);
                    if (!counter) co_return std::move(counter).error();
                    std::vector<double> out;
                    for (std::size_t i = 0; i <= kUpdates; ++i) {
                      const Instant t0 = k.now();
                      auto applied = co_await counter->propose(k, {1}, completion);
                      const Instant t1 = k.now();
                      if (!applied) co_return std::move(applied).error();
                      if (i > 0)
                        out.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
                    }
                    co_return out;
                  });
  (void)(*sim)->shutdown();
  if (!samples) return std::move(samples).error();
  if (!*samples) return std::move(*samples).error();
  return median(**samples);
}

}  // namespace

std::string route_name(RouteKind route) {
  std::string name(to_string(route));
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

Result<double> project_point(const Skb& machine, std::size_t kernels, RouteKind route,
                             const SimCosts& costs) {
  ReplicaOptions replica;
  replica.protocol = Protocol::one_phase;
  replica.route = route;
  return project_update(machine, kernels, costs, std::move(replica));
}

Result<double> project_ordered_point(const Skb& machine, std::size_t kernels, RouteKind route,
                                     const SimCosts& costs, Completion completion) {
  ReplicaOptions replica;
  replica.protocol = Protocol::ordered;
  replica.route = route;
  replica.sequencer = static_cast<KernelId>(kernels > 0 ? kernels - 1 : 0);
  return project_update(machine, kernels, costs, std::move(replica), completion);
}

Result<double> project_everywhere_point(const Skb& machine, std::size_t kernels, RouteKind route,
                                        const SimCosts& costs, Duration local_work) {
  ReplicaOptions replica;
  replica.protocol = Protocol::ordered;
  replica.route = route;
  replica.sequencer = 0;
  auto simulated =
      project_update(machine, kernels, costs, std::move(replica), Completion::everywhere);
  if (!simulated) return simulated;
  // Every kernel does its share right after it applied the update (on the commit wave), before
  // it answers that wave, all at about the same time: the path holds one share.
  return *simulated + std::chrono::duration<double, std::nano>(local_work).count();
}

}  // namespace mk::bench
