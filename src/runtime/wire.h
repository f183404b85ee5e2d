// The runtime's envelope: the first kEnvelopeSize bytes of every message it sends.
#pragma once

#include <cstdint>
#include <optional>

#include "mk/message_codec.h"
#include "mk/result.h"

namespace mk::runtime {

/// What a message is to the runtime.
enum class WireKind : std::uint8_t {
  one_way = 1,  ///< send(): no reply expected.
  request = 2,  ///< call(): the receiver answers with a reply carrying the same call id.
  reply = 3,    ///< The answer to a request: a payload, or an error code and its text.
  /// A one-way message whose payload waits in the sender's broadcast buffers: the body is a
  /// SharedRef (runtime/broadcast_arena.h) naming it.
  shared_ref = 4,
};

/// Precedes the typed payload. The channel header already carries the message type, so the
/// envelope holds only what the runtime adds.
struct Envelope {
  std::uint32_t call_id = 0;  ///< Nonzero for requests and replies.
  WireKind kind = WireKind::one_way;
  std::uint8_t status = 0;  ///< Replies: 0 for success, else 1 + the Errc.
  std::uint16_t reserved = 0;
};
static_assert(sizeof(Envelope) == kEnvelopeSize);

/// What precedes a reply's payload when the callee writes it into the line its request came in
/// (transport::UrpcReceiver::answer) instead of sending it through its channel to the caller.
struct InLineAnswer {
  /// How many messages the callee had put into its channel to the caller before this answer
  /// (modulo 2^32): the caller delivers the answer after exactly that many, so that the
  /// callee's messages still arrive in the order it sent them.
  std::uint32_t order = 0;
  Envelope envelope;  ///< A reply's envelope.
};
static_assert(sizeof(InLineAnswer) == 4 + kEnvelopeSize);

/// The status byte for a failed reply.
inline std::uint8_t status_of(Errc code) noexcept {
  return static_cast<std::uint8_t>(code) + 1;
}

/// The Errc a nonzero status byte stands for, or nullopt for a value no sender writes.
inline std::optional<Errc> errc_of(std::uint8_t status) noexcept {
  if (status == 0 || status > status_of(kLastErrc)) return std::nullopt;
  return static_cast<Errc>(status - 1);
}

}  // namespace mk::runtime
