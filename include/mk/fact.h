// mk::Fact and mk::FactSource: one thing the SKB knows, and where it learnt it.
#pragma once

#include <string>
#include <string_view>

#include "mk/result.h"

namespace mk {

/// Where a fact comes from. Later sources override earlier ones: an asserted fact beats a
/// measured one, which beats a discovered or derived one.
enum class FactSource : unsigned char {
  discovered,  ///< Read from hwloc (the live machine, an XML export or a synthetic string).
  derived,     ///< Computed by the SKB from discovered facts (a distance from the tree).
  measured,    ///< Measured on this machine (message round-trip latency), possibly cached.
  asserted,    ///< Given by the user in a facts file.
};

/// Short stable name of a fact source: "discovered", "derived", "measured" or "asserted".
std::string_view to_string(FactSource source) noexcept;

/// One fact in printable form, for listing: `subject` has `property` = `value`.
struct Fact {
  std::string subject;   ///< What the fact is about: "machine", "pu 3", "numa 1", "pu 0-pu 5".
  std::string property;  ///< Which property: "numa_node", "latency_min_ns", "distance".
  std::string value;     ///< The value as text: "1", "true", "urpc".
  FactSource source;     ///< Where the value comes from.
};

}  // namespace mk
