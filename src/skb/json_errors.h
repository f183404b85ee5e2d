// Reading untrusted text files, and parsing JSON into nlohmann::json with errors that name the
// file, line and column.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mk/result.h"

namespace mk::detail {

/// The largest file mk reads (facts files, latency caches, topology XML): 64 MiB, far above
/// any real one, so that `--facts /dev/zero` is an error instead of all the memory there is.
inline constexpr std::size_t kMaxInputBytes = std::size_t{64} << 20;

/// The deepest nesting of arrays and objects parse_json accepts. mk's files nest 4 deep;
/// the limit keeps every recursive walk of a parsed document (printing one, for instance)
/// far from the end of the stack.
inline constexpr int kMaxJsonDepth = 64;

/// Parses `text`; an error names `name` and the line and column where it was found, or the
/// depth limit.
Result<nlohmann::json> parse_json(std::string_view text, std::string_view name);

/// A value as JSON text for an error message: at most 60 characters.
std::string json_excerpt(const nlohmann::json& value);

/// `text` for an error message: at most 60 characters.
std::string text_excerpt(std::string_view text);

/// Reads a whole file of at most kMaxInputBytes; not_found, io_error or too_large name it.
Result<std::string> read_text_file(const std::string& path, std::string_view what);

}  // namespace mk::detail
