// Machine profiles: an SKB facts file (docs/skb.md) that also names its topology and clock,
// so that a projection runs on a machine's asserted costs instead of this host's measurements.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mk/result.h"
#include "mk/skb.h"

namespace mk::bench {

/// A machine described by a profile: its topology loaded, the file's facts asserted on it.
struct MachineProfile {
  std::string path;            ///< The file read.
  std::string topology;        ///< Its "topology", in Skb::load syntax.
  double clock_ghz = 0;        ///< Its "clock_ghz", to print virtual time in cycles.
  std::optional<Skb> machine;  ///< The topology with the file's facts; set once loaded.
};

/// Where a bare profile name is looked for, in order: the source tree's bench/profiles, then
/// the installed share/mk/profiles (both compiled in).
std::vector<std::string> profile_dirs();

/// Loads `name_or_path`: a name with a '/' or ending in ".json" is a path, read as given;
/// another is NAME.json in profile_dirs(). Errors name the file (or the directories searched)
/// and the bad field; a profile must give "topology" and "clock_ghz".
Result<MachineProfile> load_profile(std::string_view name_or_path);

}  // namespace mk::bench
