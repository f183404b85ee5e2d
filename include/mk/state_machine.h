// What a user's replicated state machine is, and how its values become message bytes.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "mk/result.h"

namespace mk {

/// Turns a value into message bytes and back. The primary template is defined for trivially
/// copyable types (their bytes as they are); other operation or state types specialise
/// mk::Codec<T> with
///
///     static void encode(const T& value, std::vector<std::byte>& out);  // appends to out
///     static Result<T> decode(std::span<const std::byte> bytes);        // parse_error if bad
///
/// decode must reject every malformed input with an error (it reads bytes from other kernels).
template <class T>
struct Codec;

/// The byte-for-byte codec of a trivially copyable type.
template <class T>
requires std::is_trivially_copyable_v<T>
struct Codec<T> {
  /// Appends the bytes of `value`.
  static void encode(const T& value, std::vector<std::byte>& out) {
    const auto bytes = std::as_bytes(std::span<const T, 1>(&value, 1));
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  /// The value whose bytes these are; parse_error when the length is not sizeof(T).
  static Result<T> decode(std::span<const std::byte> bytes) {
    if (bytes.size() != sizeof(T)) {
      return error(Errc::parse_error, "Codec: " + std::to_string(bytes.size()) +
                                          " bytes for a value of " + std::to_string(sizeof(T)));
    }
    std::array<std::byte, sizeof(T)> raw;
    std::memcpy(raw.data(), bytes.data(), sizeof(T));
    return std::bit_cast<T>(raw);
  }
};

/// A type with a Codec: it can travel in messages.
template <class T>
concept Encodable = requires(const T& value, std::vector<std::byte>& out,
                             std::span<const std::byte> bytes) {
  Codec<T>::encode(value, out);
  { Codec<T>::decode(bytes) } -> std::same_as<Result<T>>;
};

/// The user's deterministic state machine:
///
///     struct Counter {
///       struct Op { std::int64_t add; };  // trivially copyable, or with a Codec<Op>
///       using Result = std::int64_t;       // what apply returns to the proposer
///       std::int64_t value = 0;
///       Result apply(const Op& op) { return value += op.add; }  // deterministic: no I/O, no clock
///     };
///
/// It is copy-constructible, and it and its Op have a Codec (the initial state and a joining
/// kernel's copy travel as bytes). Optional for every protocol:
/// `mk::Result<void> check(const Op&) const` validates an operation before it is applied (at
/// prepare for two_phase, at apply for ordered, at the proposer for one_phase); an error
/// aborts it everywhere with that error and nothing is applied.
template <class SM>
concept StateMachine = requires {
  typename SM::Op;
  typename SM::Result;
}
&&std::copy_constructible<SM>&& std::move_constructible<typename SM::Result>&& Encodable<SM>&&
    Encodable<typename SM::Op>&& requires(SM& machine, const typename SM::Op& op) {
  { machine.apply(op) } -> std::convertible_to<typename SM::Result>;
};

/// A state machine usable with Protocol::two_phase: it says which keys an operation touches
/// (`void keys(const Op&, std::vector<std::uint64_t>& out) const`, appending). Operations with
/// disjoint keys must commute; two transactions sharing a key conflict.
template <class SM>
concept TwoPhaseStateMachine = StateMachine<SM> &&
    requires(const SM& machine, const typename SM::Op& op, std::vector<std::uint64_t>& out) {
  machine.keys(op, out);
};

/// A state machine with the optional `Result<void> check(const Op&) const`.
template <class SM>
concept CheckedStateMachine = StateMachine<SM> &&
    requires(const SM& machine, const typename SM::Op& op) {
  { machine.check(op) } -> std::same_as<mk::Result<void>>;
};

}  // namespace mk
