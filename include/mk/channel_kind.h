// mk::ChannelKind: the names of the transport's channel kinds. The SKB records facts about them
// (an asserted kind, a measured round trip per kind) without depending on the transport, so
// this header holds the names alone and includes nothing of the transport.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mk/result.h"

namespace mk {

/// Which implementation carries a channel's messages. All share the ChannelSender and
/// ChannelReceiver interface (mk/channel.h), so the runtime picks a kind per pair of kernels at
/// run time.
enum class ChannelKind : std::uint8_t {
  urpc,      ///< Cache-line slot ring on the receiver's NUMA node; the default between cores.
  lockfree,  ///< Boost.Lockfree spsc_queue of slots; the portable baseline.
  local,     ///< Both ends on one kernel (one thread): no atomics.
};

/// Every channel kind, in declaration order.
inline constexpr ChannelKind kChannelKinds[] = {ChannelKind::urpc, ChannelKind::lockfree,
                                                ChannelKind::local};

/// Short stable name of a channel kind: "urpc", "lockfree" or "local".
constexpr std::string_view to_string(ChannelKind kind) noexcept {
  switch (kind) {
    case ChannelKind::urpc:
      return "urpc";
    case ChannelKind::lockfree:
      return "lockfree";
    case ChannelKind::local:
      return "local";
  }
  return "unknown";
}

/// Parses "urpc", "lockfree" or "local"; invalid_argument naming the text otherwise.
inline Result<ChannelKind> parse_channel_kind(std::string_view name) {
  for (ChannelKind kind : kChannelKinds) {
    if (name == to_string(kind)) return kind;
  }
  return error(Errc::invalid_argument,
               "channel kind '" + std::string(name) + "': expected urpc, lockfree or local");
}

}  // namespace mk
