// Figure 1's machine: what the SKB knows of this host and its measured core-to-core round trips.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mk/core_id.h"
#include "mk/result.h"
#include "report.h"

namespace mk::bench {

/// The SKB's view of the live machine, as rows of a table.
struct MachineFacts {
  std::vector<std::pair<std::string, std::string>>
      rows;                   ///< (what, value), such as ("NUMA nodes", "2").
  std::vector<CoreId> cores;  ///< Usable cores, the heat map's axes.
};

/// The live machine's facts, and the round trip between every pair of usable cores measured
/// now over urpc channels (as `mk-skb measure` does, without its cache) added to `report` as
/// "machine.rtt_ns.A.B" (A < B), medians in ns. Progress goes to stderr.
mk::Result<MachineFacts> measure_machine(bool quick, Report& report);

/// Name of the result holding the round trip between cores `a` and `b`, either order.
std::string machine_rtt_name(CoreId a, CoreId b);

}  // namespace mk::bench
