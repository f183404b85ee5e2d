// Errors as values: mk::Error and mk::Result<T>.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace mk {

/// The kind of an error; callers branch on this, people read Error::message.
enum class Errc {
  invalid_argument,   ///< API misuse or a bad config value; the message names the field.
  not_found,          ///< A named thing (core, kernel, file, handler, name) does not exist.
  already_exists,     ///< A unique thing was created twice.
  full,               ///< No room now; retrying later may succeed.
  too_large,          ///< A payload or value is over its documented maximum.
  closed,             ///< The other end went away.
  shutting_down,      ///< The system is stopping; the operation will not complete.
  no_handler,         ///< A message type has no registered handler on the receiving kernel.
  handler_failed,     ///< A handler threw or returned an error; the message carries its text.
  timed_out,          ///< A deadline passed first.
  conflict,           ///< Agreement aborted the operation because of a conflicting one.
  parse_error,        ///< Malformed input: a file, a message, a description.
  io_error,           ///< The operating system refused; the message carries errno's text.
  unavailable,        ///< A facility this machine does not offer.
  apply_failed,       ///< User code (a state machine's apply, check or keys, a Codec) threw.
  internal,           ///< A broken invariant inside mk: a bug worth reporting.
  permission_denied,  ///< The caller's capability lacks a right the operation needs.
  page_fault,         ///< An access touched a VSpace address not mapped with the rights it needed.
};

/// The last Errc: codes travel as numbers, and a receiver refuses one above it.
inline constexpr Errc kLastErrc = Errc::page_fault;

/// Short stable name of an error kind, such as "invalid_argument".
constexpr std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::not_found:
      return "not_found";
    case Errc::already_exists:
      return "already_exists";
    case Errc::full:
      return "full";
    case Errc::too_large:
      return "too_large";
    case Errc::closed:
      return "closed";
    case Errc::shutting_down:
      return "shutting_down";
    case Errc::no_handler:
      return "no_handler";
    case Errc::handler_failed:
      return "handler_failed";
    case Errc::timed_out:
      return "timed_out";
    case Errc::conflict:
      return "conflict";
    case Errc::parse_error:
      return "parse_error";
    case Errc::io_error:
      return "io_error";
    case Errc::unavailable:
      return "unavailable";
    case Errc::apply_failed:
      return "apply_failed";
    case Errc::internal:
      return "internal";
    case Errc::permission_denied:
      return "permission_denied";
    case Errc::page_fault:
      return "page_fault";
  }
  return "unknown";
}

/// An error: its kind and a message that names the bad value, file or field.
struct Error {
  Errc code;            ///< What kind of failure this is.
  std::string message;  ///< For people: what failed and why.

  /// "kind: message", for logs and tool output.
  std::string describe() const {
    std::string text(to_string(code));
    text += ": ";
    text += message;
    return text;
  }
};

/// Makes an Error; reads like `return mk::error(Errc::not_found, "core 9")`.
inline Error error(Errc code, std::string message) {
  return Error{code, std::move(message)};
}

/// A value of type T or an Error. Accessing the wrong alternative is a bug and asserts.
template <class T>
class [[nodiscard]] Result {
 public:
  /// A successful result.
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  /// A failed result.
  Result(Error err) : state_(std::in_place_index<1>, std::move(err)) {}

  /// True when this holds a value.
  bool ok() const noexcept { return state_.index() == 0; }
  /// Same as ok().
  explicit operator bool() const noexcept { return ok(); }

  /// The value; only when ok().
  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  /// The value; only when ok().
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  /// The value, moved out; only when ok().
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  /// The error; only when !ok().
  const Error& error() const& {
    assert(!ok());
    return std::get<1>(state_);
  }
  /// The error, moved out; only when !ok().
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(state_));
  }

  /// The value when ok(), else `fallback`.
  template <class U>
  T value_or(U&& fallback) const& {
    return ok() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
  }
  /// The value, moved out, when ok(), else `fallback`.
  template <class U>
  T value_or(U&& fallback) && {
    return ok() ? std::get<0>(std::move(state_)) : static_cast<T>(std::forward<U>(fallback));
  }

  /// Pointer-like access to the value; only when ok().
  T* operator->() { return &value(); }
  /// Pointer-like access to the value; only when ok().
  const T* operator->() const { return &value(); }
  /// The value; only when ok().
  T& operator*() & { return value(); }
  /// The value; only when ok().
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> state_;
};

/// Success or an Error, with nothing to return on success.
template <>
class [[nodiscard]] Result<void> {
 public:
  /// A successful result.
  Result() = default;
  /// A failed result.
  Result(Error err) : error_(std::move(err)) {}

  /// True on success.
  bool ok() const noexcept { return !error_.has_value(); }
  /// Same as ok().
  explicit operator bool() const noexcept { return ok(); }
  /// The error; only when !ok().
  const Error& error() const& {
    assert(!ok());
    return *error_;
  }
  /// The error, moved out; only when !ok().
  Error&& error() && {
    assert(!ok());
    return std::move(*error_);
  }

 private:
  // Empty on success: a success constructs and destroys no Error (no string), which a
  // Result<void> returned per message or per read would otherwise pay for.
  std::optional<Error> error_;
};

}  // namespace mk
