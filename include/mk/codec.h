// mk::Codec: how a value becomes message bytes and back, for whatever crosses between kernels
// (or between a program and its kernel processes) as more than a fixed-size payload.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mk/result.h"

namespace mk {

/// Turns a value into message bytes and back. The primary template is defined for trivially
/// copyable types (their bytes as they are); mk defines it for std::string, std::vector,
/// std::optional and mk::Result of encodable types; other types specialise mk::Codec<T> with
///
///     static void encode(const T& value, std::vector<std::byte>& out);  // appends to out
///     static Result<T> decode(std::span<const std::byte> bytes);        // parse_error if bad
///
/// decode gets exactly the bytes encode appended, and must reject every malformed input with
/// an error: the bytes come from another kernel.
template <class T>
struct Codec;

namespace detail {

/// Appends `bytes` to `out`. (Not vector::insert: after a push_back, GCC 12 at -O2 warns
/// falsely about insert's copy, in every program that encodes an optional or a Result.)
inline void append_bytes(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const std::size_t at = out.size();
  out.resize(at + bytes.size());
  std::memcpy(out.data() + at, bytes.data(), bytes.size());
}

}  // namespace detail

/// The byte-for-byte codec of a trivially copyable type.
template <class T>
requires std::is_trivially_copyable_v<T>
struct Codec<T> {
  /// Marks this codec as the type's own bytes, so messages carry them without encoding.
  static constexpr bool kBytewise = true;
  /// Appends the bytes of `value`.
  static void encode(const T& value, std::vector<std::byte>& out) {
    const auto bytes = std::as_bytes(std::span<const T, 1>(&value, 1));
    detail::append_bytes(out, bytes);
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

namespace detail {

/// Appends `value` behind its length, so that several values can follow one another.
template <Encodable T>
void encode_framed(const T& value, std::vector<std::byte>& out) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(std::uint32_t));
  Codec<T>::encode(value, out);
  const auto length = static_cast<std::uint32_t>(out.size() - at - sizeof(std::uint32_t));
  std::memcpy(out.data() + at, &length, sizeof length);
}

/// Reads a value encode_framed wrote at `at`, advancing `at` past it.
template <Encodable T>
Result<T> decode_framed(std::span<const std::byte> bytes, std::size_t& at) {
  std::uint32_t length = 0;
  if (bytes.size() - at < sizeof length) {
    return error(Errc::parse_error, "Codec: a value's length is cut off");
  }
  std::memcpy(&length, bytes.data() + at, sizeof length);
  at += sizeof length;
  if (bytes.size() - at < length) {
    return error(Errc::parse_error, "Codec: a value of " + std::to_string(length) +
                                        " bytes, but only " + std::to_string(bytes.size() - at) +
                                        " remain");
  }
  auto value = Codec<T>::decode(bytes.subspan(at, length));
  at += length;
  return value;
}

/// The encoding of several values, one after another (System::run's arguments).
template <Encodable... Ts>
std::vector<std::byte> encode_all(const Ts&... values) {
  std::vector<std::byte> out;
  (encode_framed(values, out), ...);
  return out;
}

/// The values encode_framed wrote from `at` on, in order, advancing `at` past them.
template <Encodable First, Encodable... Rest>
Result<std::tuple<First, Rest...>> decode_from(std::span<const std::byte> bytes, std::size_t& at) {
  auto first = decode_framed<First>(bytes, at);
  if (!first) return std::move(first).error();
  if constexpr (sizeof...(Rest) == 0) {
    return std::tuple<First>(std::move(first).value());
  } else {
    auto rest = decode_from<Rest...>(bytes, at);
    if (!rest) return std::move(rest).error();
    return std::tuple_cat(std::tuple<First>(std::move(first).value()), std::move(rest).value());
  }
}

/// The values encode_all wrote; parse_error for anything else, trailing bytes included.
template <Encodable... Ts>
Result<std::tuple<Ts...>> decode_all(std::span<const std::byte> bytes) {
  std::size_t at = 0;
  if constexpr (sizeof...(Ts) > 0) {
    auto decoded = decode_from<Ts...>(bytes, at);
    if (!decoded) return std::move(decoded).error();
    if (at != bytes.size()) {
      return error(Errc::parse_error, "Codec: " + std::to_string(bytes.size() - at) +
                                          " bytes left after the last value");
    }
    return std::move(decoded).value();
  } else {
    if (!bytes.empty()) {
      return error(Errc::parse_error,
                   "Codec: " + std::to_string(bytes.size()) + " bytes where no value was expected");
    }
    return std::tuple<>();
  }
}

}  // namespace detail

/// Appends `values` one after another, each behind its length: the body of a Codec for a
/// struct, `encode_fields(out, s.name, s.count)`.
template <Encodable... Ts>
void encode_fields(std::vector<std::byte>& out, const Ts&... values) {
  (detail::encode_framed(values, out), ...);
}

/// The values encode_fields wrote, in order, as a tuple: `decode_fields<std::string,
/// std::uint32_t>(bytes)`. parse_error for bytes that are not exactly such values, a cut-off
/// or trailing byte included.
template <Encodable... Ts>
Result<std::tuple<Ts...>> decode_fields(std::span<const std::byte> bytes) {
  return detail::decode_all<Ts...>(bytes);
}

/// Text: its bytes.
template <>
struct Codec<std::string> {
  /// Appends the characters.
  static void encode(const std::string& value, std::vector<std::byte>& out) {
    const auto bytes = std::as_bytes(std::span(value.data(), value.size()));
    detail::append_bytes(out, bytes);
  }
  /// The text of these bytes; never fails.
  static Result<std::string> decode(std::span<const std::byte> bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
};

/// A vector: its elements, each framed by its length (or, trivially copyable, side by side).
template <Encodable T>
struct Codec<std::vector<T>> {
  /// Appends the elements.
  static void encode(const std::vector<T>& values, std::vector<std::byte>& out) {
    if constexpr (std::is_trivially_copyable_v<T>) {
      const auto bytes = std::as_bytes(std::span(values.data(), values.size()));
      detail::append_bytes(out, bytes);
    } else {
      for (const T& value : values)
        detail::encode_framed(value, out);
    }
  }
  /// The elements; parse_error for a length that does not fit.
  static Result<std::vector<T>> decode(std::span<const std::byte> bytes) {
    std::vector<T> values;
    if constexpr (std::is_trivially_copyable_v<T>) {
      if (bytes.size() % sizeof(T) != 0) {
        return error(Errc::parse_error, "Codec: " + std::to_string(bytes.size()) +
                                            " bytes are no whole number of elements of " +
                                            std::to_string(sizeof(T)));
      }
      values.resize(bytes.size() / sizeof(T));
      if (!bytes.empty()) std::memcpy(values.data(), bytes.data(), bytes.size());
    } else {
      std::size_t at = 0;
      while (at < bytes.size()) {
        auto value = detail::decode_framed<T>(bytes, at);
        if (!value) return std::move(value).error();
        values.push_back(std::move(value).value());
      }
    }
    return values;
  }
};

/// A vector of bools (packed by the standard library, so not side by side in memory): a byte
/// per element, 0 or 1.
template <>
struct Codec<std::vector<bool>> {
  /// Appends one byte per element.
  static void encode(const std::vector<bool>& values, std::vector<std::byte>& out) {
    for (bool value : values)
      out.push_back(std::byte{value ? std::uint8_t{1} : std::uint8_t{0}});
  }
  /// The elements; parse_error for a byte other than 0 or 1.
  static Result<std::vector<bool>> decode(std::span<const std::byte> bytes) {
    std::vector<bool> values;
    values.reserve(bytes.size());
    for (std::byte byte : bytes) {
      if (byte > std::byte{1}) {
        return error(Errc::parse_error, "Codec: a vector<bool> element byte is not 0 or 1");
      }
      values.push_back(byte == std::byte{1});
    }
    return values;
  }
};

/// An optional: a presence byte, then the value.
template <Encodable T>
requires(!std::is_trivially_copyable_v<std::optional<T>>) struct Codec<std::optional<T>> {
  /// Appends the presence byte and the value.
  static void encode(const std::optional<T>& value, std::vector<std::byte>& out) {
    out.push_back(std::byte{value ? std::uint8_t{1} : std::uint8_t{0}});
    if (value) Codec<T>::encode(*value, out);
  }
  /// The optional; parse_error for a bad presence byte or value.
  static Result<std::optional<T>> decode(std::span<const std::byte> bytes) {
    if (bytes.empty() || bytes[0] > std::byte{1}) {
      return error(Errc::parse_error, "Codec: an optional without its presence byte");
    }
    if (bytes[0] == std::byte{0}) {
      if (bytes.size() != 1) return error(Errc::parse_error, "Codec: an empty optional with bytes");
      return std::optional<T>();
    }
    auto value = Codec<T>::decode(bytes.subspan(1));
    if (!value) return std::move(value).error();
    return std::optional<T>(std::move(value).value());
  }
};

namespace detail {

/// An Error as a kind byte and its text.
inline void encode_error(const Error& failure, std::vector<std::byte>& out) {
  out.push_back(static_cast<std::byte>(failure.code));
  Codec<std::string>::encode(failure.message, out);
}

/// The Error encode_error wrote; nullopt for bytes that are not one (an unknown kind).
inline std::optional<Error> decode_error(std::span<const std::byte> bytes) {
  if (bytes.empty() || static_cast<int>(bytes[0]) > static_cast<int>(kLastErrc)) {
    return std::nullopt;
  }
  return error(static_cast<Errc>(bytes[0]),
               std::string(reinterpret_cast<const char*>(bytes.data() + 1), bytes.size() - 1));
}

/// The parse_error for bytes that should have held an Error.
inline Error bad_error_encoding() {
  return error(Errc::parse_error, "Codec: an error of unknown kind");
}

}  // namespace detail

/// A Result: a byte saying which, then the value or the error (its kind and text).
template <Encodable T>
struct Codec<Result<T>> {
  /// Appends the result.
  static void encode(const Result<T>& result, std::vector<std::byte>& out) {
    out.push_back(std::byte{result.ok() ? std::uint8_t{1} : std::uint8_t{0}});
    if (result.ok()) {
      Codec<T>::encode(result.value(), out);
    } else {
      detail::encode_error(result.error(), out);
    }
  }
  /// The result; parse_error when the bytes are not one.
  static Result<Result<T>> decode(std::span<const std::byte> bytes) {
    if (bytes.empty() || bytes[0] > std::byte{1}) {
      return error(Errc::parse_error, "Codec: a Result without its tag");
    }
    if (bytes[0] == std::byte{1}) {
      auto value = Codec<T>::decode(bytes.subspan(1));
      if (!value) return std::move(value).error();
      return Result<T>(std::move(value).value());
    }
    auto failure = detail::decode_error(bytes.subspan(1));
    if (!failure) return detail::bad_error_encoding();
    return Result<T>(std::move(*failure));
  }
};

/// A Result<void>: empty on success, else the error.
template <>
struct Codec<Result<void>> {
  /// Appends the result.
  static void encode(const Result<void>& result, std::vector<std::byte>& out) {
    if (!result.ok()) detail::encode_error(result.error(), out);
  }
  /// The result; parse_error for an error of unknown kind.
  static Result<Result<void>> decode(std::span<const std::byte> bytes) {
    if (bytes.empty()) return Result<void>();
    auto failure = detail::decode_error(bytes);
    if (!failure) return detail::bad_error_encoding();
    return Result<void>(std::move(*failure));
  }
};

}  // namespace mk
