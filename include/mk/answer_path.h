// mk::AnswerPath and mk::AnswerCost: which way a call's answer travels between two cores, and
// what a round trip costs each way. The SKB records them without depending on the transport.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "mk/latency.h"

namespace mk {

/// Where the answer to a call from one kernel to another travels (docs/runtime.md, "Answers
/// in the request's line").
enum class AnswerPath : std::uint8_t {
  /// Through the callee's channel to the caller, like any message.
  channel,
  /// Into the cache line its request came in: one line crosses twice per call instead of one
  /// line each way. Calls alone in flight on a urpc channel only; the others take the channel.
  in_line,
};

/// Both paths, in the order of the enumeration.
inline constexpr std::array<AnswerPath, 2> kAnswerPaths = {AnswerPath::channel,
                                                           AnswerPath::in_line};

/// "channel" or "in_line".
constexpr std::string_view to_string(AnswerPath path) noexcept {
  return path == AnswerPath::in_line ? "in_line" : "channel";
}

/// The path named `name` (as to_string gives it), if any.
constexpr std::optional<AnswerPath> answer_path_named(std::string_view name) noexcept {
  for (AnswerPath path : kAnswerPaths) {
    if (name == to_string(path)) return path;
  }
  return std::nullopt;
}

/// What a call-like round trip between two cores costs with its answer on `path`: a message
/// over a urpc channel and its answer back, both sides polling. The SKB keeps one per path and
/// pair and picks the path (Skb::answer_path). Symmetric: one value serves both directions.
struct AnswerCost {
  AnswerPath path = AnswerPath::channel;  ///< Where the answers went.
  CoreLatency round_trip;                 ///< Between round_trip.a and round_trip.b.
};

}  // namespace mk
