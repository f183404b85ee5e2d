#include "skb/json_errors.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

namespace mk::detail {
namespace {

using nlohmann::json;

// Builds the document with nlohmann's own DOM builder, and stops at the depth limit or at the
// first error (a syntax error, or a number beyond double such as 1e400), keeping its place.
class LimitedSax : public nlohmann::json_sax<json> {
 public:
  explicit LimitedSax(json& result) : builder_(result, false) {}

  bool null() override { return builder_.null(); }
  bool boolean(bool value) override { return builder_.boolean(value); }
  bool number_integer(number_integer_t value) override { return builder_.number_integer(value); }
  bool number_unsigned(number_unsigned_t value) override { return builder_.number_unsigned(value); }
  bool number_float(number_float_t value, const string_t& text) override {
    return builder_.number_float(value, text);
  }
  bool string(string_t& value) override { return builder_.string(value); }
  bool binary(binary_t& value) override { return builder_.binary(value); }
  bool start_object(std::size_t elements) override {
    return deeper() && builder_.start_object(elements);
  }
  bool key(string_t& value) override { return builder_.key(value); }
  bool end_object() override {
    --depth_;
    return builder_.end_object();
  }
  bool start_array(std::size_t elements) override {
    return deeper() && builder_.start_array(elements);
  }
  bool end_array() override {
    --depth_;
    return builder_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    error_position_ = position;
    error_text_ = ex.what();
    return false;
  }

  bool too_deep() const { return too_deep_; }
  std::optional<std::size_t> error_position() const { return error_position_; }
  const std::string& error_text() const { return error_text_; }

 private:
  bool deeper() {
    if (++depth_ <= kMaxJsonDepth) return true;
    too_deep_ = true;
    return false;
  }

  // nlohmann's DOM builder, the one json::parse uses (detail namespace of nlohmann 3.10+).
  nlohmann::detail::json_sax_dom_parser<json> builder_;
  int depth_ = 0;
  bool too_deep_ = false;
  std::optional<std::size_t> error_position_;
  std::string error_text_;
};

// Line and column (from 1) of the character before `position`, which nlohmann counts from 1
// past the offending character.
std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t position) {
  const std::size_t offset = std::min<std::size_t>(position > 0 ? position - 1 : 0, text.size());
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
  return {line, column};
}

}  // namespace

Result<json> parse_json(std::string_view text, std::string_view name) {
  json result;
  LimitedSax sax(result);
  const bool parsed = json::sax_parse(text.begin(), text.end(), &sax);
  if (sax.too_deep()) {
    return error(Errc::parse_error, fmt::format("{}: JSON nested deeper than {} arrays and objects",
                                                name, kMaxJsonDepth));
  }
  if (!parsed || sax.error_position()) {
    const auto [line, column] = line_and_column(text, sax.error_position().value_or(text.size()));
    std::string what = sax.error_text();
    // nlohmann prefixes "[json.exception.parse_error.101] parse error at line 1, column 2: ".
    if (auto colon = what.find(": "); colon != std::string::npos) {
      what = what.substr(colon + 2);
    } else if (auto bracket = what.find("] "); bracket != std::string::npos) {
      what = what.substr(bracket + 2);
    }
    return error(Errc::parse_error,
                 fmt::format("{}:{}:{}: malformed JSON: {}", name, line, column, what));
  }
  return result;
}

std::string json_excerpt(const json& value) {
  return text_excerpt(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string text_excerpt(std::string_view text) {
  constexpr std::size_t kMax = 60;
  if (text.size() <= kMax) return std::string(text);
  return std::string(text.substr(0, kMax - 3)) + "...";
}

Result<std::string> read_text_file(const std::string& path, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return error(Errc::not_found, fmt::format("{} '{}': no such file", what, path));
  }
  if (std::filesystem::is_directory(path, ec)) {
    return error(Errc::invalid_argument, fmt::format("{} '{}': is a directory", what, path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return error(Errc::io_error,
                 fmt::format("{} '{}': cannot read: {}", what, path, std::strerror(errno)));
  }
  // One byte past the limit tells a file at the limit from a larger one (or an endless one
  // such as /dev/zero) without reading more.
  std::string text;
  char buffer[1 << 16];
  while (text.size() <= kMaxInputBytes && in.read(buffer, sizeof buffer).gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
  }
  if (text.size() > kMaxInputBytes) {
    return error(Errc::too_large, fmt::format("{} '{}': larger than the {} MiB limit", what, path,
                                              kMaxInputBytes >> 20));
  }
  if (in.bad()) return error(Errc::io_error, fmt::format("{} '{}': read failed", what, path));
  return text;
}

}  // namespace mk::detail
