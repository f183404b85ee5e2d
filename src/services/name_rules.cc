// Validation of names, prefixes and values: the messages name the bad part.
#include "mk/name_rules.h"

#include <cstdio>
#include <string>

namespace mk {

namespace {

/// Shows at most the first 80 bytes of a bad name, with non-printing bytes escaped, so that
/// an error message stays one readable line.
std::string quoted(std::string_view text) {
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'') {
      out += static_cast<char>(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    }
  }
  if (text.size() > 80) out += "...";
  return out + "'";
}

Result<void> validate_characters(std::string_view what, std::string_view text) {
  if (text.size() > kMaxNameLength) {
    return error(Errc::invalid_argument, std::string(what) + " is " + std::to_string(text.size()) +
                                             " bytes, over the limit of " +
                                             std::to_string(kMaxNameLength));
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (is_name_character(text[i])) continue;
    char code[8];
    std::snprintf(code, sizeof code, "0x%02x", static_cast<unsigned char>(text[i]));
    return error(Errc::invalid_argument, std::string(what) + " " + quoted(text) + ": character " +
                                             code + " at index " + std::to_string(i) +
                                             " is not one of [A-Za-z0-9._/-]");
  }
  return {};
}

}  // namespace

Result<void> validate_name(std::string_view name) {
  if (name.empty()) return error(Errc::invalid_argument, "name is empty");
  return validate_characters("name", name);
}

Result<void> validate_prefix(std::string_view prefix) {
  return validate_characters("prefix", prefix);
}

Result<void> validate_value(std::string_view value) {
  if (value.size() > kMaxValueSize) {
    return error(Errc::too_large, "value is " + std::to_string(value.size()) +
                                      " bytes, over the limit of " + std::to_string(kMaxValueSize));
  }
  return {};
}

}  // namespace mk
