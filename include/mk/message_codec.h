// Typed messages: what a payload type must be and how it becomes bytes.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "mk/channel.h"
#include "mk/result.h"

namespace mk {

/// Bytes of runtime envelope (call id, kind, status) in front of every payload.
inline constexpr std::size_t kEnvelopeSize = 8;

/// The largest typed payload a send or call carries: the channel's kMaxPayload minus the
/// envelope. Payloads longer than one slot travel as multi-slot messages.
inline constexpr std::size_t kMaxMessageBody = kMaxPayload - kEnvelopeSize;

/// A value that can cross between kernels: copied byte for byte, so it holds no pointers into
/// a kernel's heap (docs/architecture.md, principle 2).
template <class T>
concept Payload = std::is_trivially_copyable_v<T> && sizeof(T) <= kMaxMessageBody;

/// A payload with a message type tag, for send and for handler registration:
/// `struct Tick { static constexpr mk::MessageType kType = 7; int n; };`
template <class T>
concept Message = Payload<T> && requires {
  { T::kType } -> std::convertible_to<MessageType>;
};

/// A message that expects a reply of type `T::Reply`, for call.
template <class T>
concept Request = Message<T> && Payload<typename T::Reply>;

/// The bytes of a payload, valid as long as `value`.
template <Payload T>
std::span<const std::byte> encode(const T& value) noexcept {
  return std::as_bytes(std::span<const T, 1>(&value, 1));
}

/// A payload from bytes; parse_error, naming the type tag and sizes, when the length differs.
template <Payload T>
Result<T> decode(std::span<const std::byte> bytes, MessageType type) {
  if (bytes.size() != sizeof(T)) {
    return error(Errc::parse_error, "message type " + std::to_string(type) + ": payload of " +
                                        std::to_string(bytes.size()) + " bytes, expected " +
                                        std::to_string(sizeof(T)));
  }
  std::array<std::byte, sizeof(T)> raw;
  std::memcpy(raw.data(), bytes.data(), sizeof(T));
  return std::bit_cast<T>(raw);
}

}  // namespace mk
