// Typed messages: what a payload type must be and how it becomes bytes.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "mk/channel.h"
#include "mk/codec.h"
#include "mk/result.h"

namespace mk {

/// Bytes of runtime envelope (call id, kind, status) in front of every payload.
inline constexpr std::size_t kEnvelopeSize = 8;

/// The largest typed payload a send or call carries: the channel's kMaxPayload minus the
/// envelope. Payloads longer than one slot travel as multi-slot messages.
inline constexpr std::size_t kMaxMessageBody = kMaxPayload - kEnvelopeSize;

namespace detail {

/// "an exception: <what()>" for an error message.
std::string describe_exception(std::exception_ptr failure);

/// True when T travels as its own bytes: mk's byte-for-byte Codec (not one a user specialised
/// for a trivially copyable type), so messages of T need no encoding step.
template <class T>
concept Bytewise = requires {
  Codec<T>::kBytewise;
};

}  // namespace detail

/// A value a message can carry: anything with a mk::Codec (mk/codec.h; trivially copyable
/// types have one), which is how values cross between kernels (docs/architecture.md,
/// principle 2). One sent in a message is at most kMaxMessageBody bytes encoded: a longer one
/// fails with too_large, and a trivially copyable type larger than that is refused at compile
/// time.
template <class T>
concept Payload = Encodable<T> &&(!detail::Bytewise<T> || sizeof(T) <= kMaxMessageBody);

/// A payload with a message type tag, for send and for handler registration:
/// `struct Tick { static constexpr mk::MessageType kType = 7; int n; };`. Types from
/// kFirstReservedMessageType on are mk's own (mk/channel.h).
template <class T>
concept Message = Payload<T> && requires {
  { T::kType } -> std::convertible_to<MessageType>;
};

/// A message that expects a reply of type `T::Reply`, for call.
template <class T>
concept Request = Message<T> && Payload<typename T::Reply>;

namespace detail {

/// The bytes of one message's payload: the value's own bytes when it is Bytewise (no copy;
/// valid as long as the value), else its Codec's encoding, or the error that stopped it.
template <Payload T>
class EncodedPayload {
 public:
  /// Encodes `value` (or, Bytewise, only refers to it).
  explicit EncodedPayload(const T& value) {
    if constexpr (Bytewise<T>) {
      bytes_ = std::as_bytes(std::span<const T, 1>(&value, 1));
    } else {
      try {
        Codec<T>::encode(value, owned_);
      } catch (...) {
        error_ = error(Errc::invalid_argument, "encoding a message payload threw " +
                                                   describe_exception(std::current_exception()));
        return;
      }
      if (owned_.size() > kMaxMessageBody) {
        error_ = error(Errc::too_large, "a message payload of " + std::to_string(owned_.size()) +
                                            " bytes encoded; at most " +
                                            std::to_string(kMaxMessageBody) + " fit");
        return;
      }
      bytes_ = owned_;
    }
  }
  EncodedPayload(const EncodedPayload&) = delete;
  EncodedPayload& operator=(const EncodedPayload&) = delete;

  /// The bytes to send; empty after an error.
  std::span<const std::byte> bytes() const noexcept { return bytes_; }
  /// Why the value could not be encoded, if it could not.
  std::optional<Error>& failure() noexcept { return error_; }

 private:
  std::vector<std::byte> owned_;
  std::span<const std::byte> bytes_;
  std::optional<Error> error_;
};

/// A payload from bytes; parse_error, naming the type tag, when they are not one.
template <Payload T>
Result<T> decode_payload(std::span<const std::byte> bytes, MessageType type) {
  if constexpr (Bytewise<T>) {
    if (bytes.size() != sizeof(T)) {
      return error(Errc::parse_error, "message type " + std::to_string(type) + ": payload of " +
                                          std::to_string(bytes.size()) + " bytes, expected " +
                                          std::to_string(sizeof(T)));
    }
    std::array<std::byte, sizeof(T)> raw;
    std::memcpy(raw.data(), bytes.data(), sizeof(T));
    return std::bit_cast<T>(raw);
  } else {
    Result<T> decoded = error(Errc::parse_error, "");
    try {
      decoded = Codec<T>::decode(bytes);
    } catch (...) {
      return error(Errc::parse_error, "message type " + std::to_string(type) + ": decoding threw " +
                                          describe_exception(std::current_exception()));
    }
    if (!decoded) {
      return error(Errc::parse_error,
                   "message type " + std::to_string(type) + ": " + decoded.error().message);
    }
    return decoded;
  }
}

}  // namespace detail

}  // namespace mk
