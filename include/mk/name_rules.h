// What a name, a prefix and a value of the naming service may be.
#pragma once

#include <cstddef>
#include <string_view>

#include "mk/result.h"

namespace mk {

/// The longest name, in bytes. Names are 1 to kMaxNameLength bytes of kNameCharacters.
inline constexpr std::size_t kMaxNameLength = 63;

/// The longest value, in bytes. A value is 0 to kMaxValueSize arbitrary bytes (it may hold
/// binary data such as an encoded kernel id or endpoint).
inline constexpr std::size_t kMaxValueSize = 64;

/// The characters a name may use: ASCII letters, digits and `.`, `_`, `/`, `-`, so that names
/// can be hierarchical ("svc/fs/root") and printed as they are.
inline constexpr std::string_view kNameCharacters =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-";

/// True for a character of kNameCharacters.
constexpr bool is_name_character(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '/' || c == '-';
}

/// Success for a valid name; otherwise invalid_argument saying what is wrong: "name is empty",
/// "name is 70 bytes, over the limit of 63", or "name 'a b': character 0x20 at index 1 is not
/// one of [A-Za-z0-9._/-]".
Result<void> validate_name(std::string_view name);

/// Like validate_name for a watch prefix, except that the empty prefix (every name) is valid.
Result<void> validate_prefix(std::string_view prefix);

/// Success for a value of at most kMaxValueSize bytes; too_large naming both sizes otherwise.
Result<void> validate_value(std::string_view value);

}  // namespace mk
