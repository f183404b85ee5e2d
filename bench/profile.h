// Machine profiles: an SKB facts file (docs/skb.md) that also names its topology and clock,
// so that a projection runs on a machine's asserted costs instead of this host's measurements.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mk/result.h"
#include "mk/route.h"
#include "mk/skb.h"

namespace mk::bench {

/// One published figure a projection on the profile is compared with.
struct ReferencePoint {
  std::size_t cores = 0;  ///< At this many cores.
  RouteKind route = RouteKind::unicast;
  double value = 0;  ///< In the reference's unit (cycles of the profile's clock).
};

/// A machine described by a profile: its topology loaded, the file's facts asserted on it.
struct MachineProfile {
  std::string path;            ///< The file read.
  std::string topology;        ///< Its "topology", in Skb::load syntax.
  double clock_ghz = 0;        ///< Its "clock_ghz", to print virtual time in cycles.
  std::optional<Skb> machine;  ///< The topology with the file's facts; set once loaded.
  /// From NAME.reference.json beside the profile, when there is one: where the figures come
  /// from, and the figures, in cycles.
  std::string reference_source;
  std::vector<ReferencePoint> reference;
};

/// Where a bare profile name is looked for, in order: the source tree's bench/profiles, then
/// the installed share/mk/profiles (both compiled in).
std::vector<std::string> profile_dirs();

/// Loads `name_or_path`: a name with a '/' or ending in ".json" is a path, read as given;
/// another is NAME.json in profile_dirs(). Errors name the file (or the directories searched)
/// and the bad field; a profile must give "topology" and "clock_ghz". NAME.reference.json
/// beside it, if present, must hold {"source", "unit": "cycles", "points": [{"cores", "route",
/// "value"}, ...]}; a bad one is an error too.
mk::Result<MachineProfile> load_profile(std::string_view name_or_path);

}  // namespace mk::bench
