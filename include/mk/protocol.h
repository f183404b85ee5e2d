// mk::Protocol: which agreement protocol keeps a replicated object's replicas consistent.
#pragma once

#include <cstdint>
#include <string_view>

#include "mk/result.h"

namespace mk {

/// The agreement protocol of a replicated object (docs/replica.md compares them).
enum class Protocol : std::uint8_t {
  one_phase,  ///< Multicast, apply, acknowledge: for updates that commute and cannot conflict.
  two_phase,  ///< Prepare (check and reserve keys), vote, commit or abort: for conflicting ones.
  ordered,    ///< A sequencer assigns a total order: linearizable updates of any state machine.
};

/// Short stable name: "one_phase", "two_phase" or "ordered".
std::string_view to_string(Protocol protocol) noexcept;

/// Parses a name as printed by to_string(Protocol); the error names the bad value.
Result<Protocol> parse_protocol(std::string_view name);

}  // namespace mk
