// What the projection runs in the simulator, shared by `project` (machines we do not have)
// and `agreement` (this machine, beside what it measures).
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "mk/clock.h"
#include "mk/proposal.h"
#include "mk/result.h"
#include "mk/route.h"
#include "mk/sim_options.h"
#include "mk/skb.h"

namespace mk::bench {

/// Every route kind, in the order results and tables list them.
inline constexpr std::array<RouteKind, 4> kRoutes = {
    RouteKind::unicast, RouteKind::broadcast, RouteKind::multicast, RouteKind::numa_multicast};

/// The route's name in a result name: to_string's, with '_' for '-'.
std::string route_name(RouteKind route);

/// The median virtual latency, in ns, of a one-phase update proposed by kernel 0 and
/// acknowledged by all `kernels` kernels (one per usable core of `machine` in order, wrapping)
/// over `route`, under `costs`; the error when the simulation failed.
Result<double> project_point(const Skb& machine, std::size_t kernels, RouteKind route,
                             const SimCosts& costs);

/// The same for an ordered update (Protocol::ordered, as the capability service's updates are):
/// proposed by kernel 0, numbered by kernel `kernels - 1` as sequencer, so that it pays the
/// trip to the sequencer as it would from most kernels, and complete as `completion` says.
Result<double> project_ordered_point(const Skb& machine, std::size_t kernels, RouteKind route,
                                     const SimCosts& costs,
                                     Completion completion = Completion::local);

/// An ordered update proposed by kernel 0, which is also the sequencer (as the VSpace's home
/// kernel, in mk-bench vm), completing once every kernel applied it (Completion::everywhere, as
/// VSpace's map, unmap and protect do), plus `local_work` once: each kernel's own share of it
/// (its munmap, for unmap), done by all at about the same time as they apply it.
Result<double> project_everywhere_point(const Skb& machine, std::size_t kernels, RouteKind route,
                                        const SimCosts& costs, Duration local_work);

}  // namespace mk::bench
