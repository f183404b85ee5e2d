// Trying untrusted input on hwloc in a short-lived process of its own, mk-hwloc-probe, so
// that a crash (or a leak) inside hwloc stays there and becomes an error here (docs/skb.md,
// "Untrusted input").
#pragma once

#include <string_view>

#include "mk/result.h"

namespace mk::detail {

/// What the probe asks of hwloc.
enum class ProbeInput {
  xml,        ///< Load an XML export, then free it.
  synthetic,  ///< Parse a synthetic description (building it is the caller's work).
};

/// What hwloc made of the input in the probe.
struct ProbeVerdict {
  bool accepted = false;  ///< hwloc took the input (and freed it) without dying.
  int error_number = 0;   ///< hwloc's errno when it refused the input.
};

/// Runs mk-hwloc-probe on `input`, on a stack no larger than what the calling thread has
/// left, so that what the probe survives the caller survives too. Errors, whose messages
/// begin with `subject`: parse_error when hwloc died in the probe or took more than a minute,
/// io_error when the probe could not be started.
Result<ProbeVerdict> probe_with_hwloc(ProbeInput kind, std::string_view input,
                                      std::string_view subject);

}  // namespace mk::detail
