#include "skb/json_errors.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mk::detail {

Result<nlohmann::json> parse_json(std::string_view text, std::string_view name) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is one past the offending character, counted from 1.
    const std::size_t offset = std::min<std::size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    std::size_t line = 1;
    std::size_t column = 1;
    for (std::size_t i = 0; i < offset; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    // nlohmann prefixes "[json.exception.parse_error.101] parse error at line 1, column 2: ".
    if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
    return error(Errc::parse_error,
                 fmt::format("{}:{}:{}: malformed JSON: {}", name, line, column, what));
  }
}

Result<std::string> read_text_file(const std::string& path, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return error(Errc::not_found, fmt::format("{} '{}': no such file", what, path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return error(Errc::io_error,
                 fmt::format("{} '{}': cannot read: {}", what, path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return error(Errc::io_error, fmt::format("{} '{}': read failed", what, path));
  return text.str();
}

}  // namespace mk::detail
