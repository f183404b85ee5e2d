// Parsing JSON text into nlohmann::json with errors that name the file, line and column.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mk/result.h"

namespace mk::detail {

/// Parses `text`; a syntax error names `name` and the line and column where it was found.
Result<nlohmann::json> parse_json(std::string_view text, std::string_view name);

/// Reads a whole file; not_found or io_error name it.
Result<std::string> read_text_file(const std::string& path, std::string_view what);

}  // namespace mk::detail
