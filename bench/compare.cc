#include "compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace mk::bench {
namespace {

mk::Error bad(const std::string& path, const std::string& what) {
  return mk::error(Errc::parse_error, fmt::format("{}: {}", path, what));
}

/// A finite number at `key` of `item`, or nothing.
std::optional<double> number_at(const nlohmann::json& item, const char* key) {
  auto it = item.find(key);
  if (it == item.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

double noise_of(const Result& r) {
  if (r.spread) return r.spread->max - r.spread->min;
  return kDefaultNoise * std::abs(r.value);
}

std::string number(double v) {
  return std::abs(v) < 10.0 ? fmt::format("{:.4f}", v) : fmt::format("{:.1f}", v);
}

}  // namespace

mk::Result<std::vector<Result>> read_results(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return mk::error(Errc::io_error,
                     fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return mk::error(Errc::io_error,
                     fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  const nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded()) return bad(path, "not JSON");
  if (!json.is_object() || !json.contains("results") || !json["results"].is_array()) {
    return bad(path, "no \"results\" array (not a file mk-bench --json or mk-bench report wrote)");
  }
  std::vector<Result> out;
  std::set<std::string> seen;
  const nlohmann::json& results = json["results"];
  for (std::size_t i = 0; i < results.size(); ++i) {
    const nlohmann::json& item = results[i];
    if (!item.is_object() || !item.contains("name") || !item["name"].is_string()) {
      return bad(path, fmt::format("results[{}]: no \"name\" string", i));
    }
    const std::string name = item["name"].get<std::string>();
    const auto value = number_at(item, "value");
    if (!value) return bad(path, fmt::format("results[{}] ({}): no finite \"value\"", i, name));
    if (!seen.insert(name).second) return bad(path, fmt::format("results[{}]: {} twice", i, name));
    Result r{name, *value, "", std::nullopt, std::nullopt};
    if (auto unit = item.find("unit"); unit != item.end() && unit->is_string()) r.unit = *unit;
    if (auto spread = item.find("spread"); spread != item.end() && !spread->is_null()) {
      if (!spread->is_object()) {
        return bad(path, fmt::format("results[{}] ({}): \"spread\" is not an object", i, name));
      }
      const auto lo = number_at(*spread, "min");
      const auto hi = number_at(*spread, "max");
      if (!lo.has_value() || !hi.has_value() || lo.value() > hi.value()) {
        return bad(path, fmt::format("results[{}] ({}): \"spread\" needs numbers \"min\" <= "
                                     "\"max\"",
                                     i, name));
      }
      const auto runs = number_at(*spread, "runs");
      r.spread =
          Spread{lo.value(), hi.value(), runs ? static_cast<std::size_t>(std::max(0.0, *runs)) : 0};
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Change> compare(const std::vector<Result>& before, const std::vector<Result>& after) {
  std::map<std::string, const Result*> old;
  for (const Result& r : before)
    old.emplace(r.name, &r);
  std::set<std::string> matched;
  std::vector<Change> out;
  for (const Result& r : after) {
    Change c{r.name, r.unit, std::nullopt, r.value, noise_of(r), false};
    if (auto it = old.find(r.name); it != old.end()) {
      c.before = it->second->value;
      c.noise = std::max(c.noise, noise_of(*it->second));
      c.beyond_noise = std::abs(r.value - *c.before) > c.noise;
      matched.insert(r.name);
    }
    out.push_back(std::move(c));
  }
  for (const Result& r : before) {
    if (!matched.contains(r.name))
      out.push_back({r.name, r.unit, r.value, std::nullopt, noise_of(r), false});
  }
  return out;
}

void print_changes(const std::vector<Change>& changes, std::FILE* out) {
  std::size_t width = 40;
  for (const Change& c : changes)
    width = std::max(width, c.name.size());
  fmt::print(out, "{:<{}} {:>14} {:>14} {:<9} {:>9} {:>9}  {}\n", "result", width, "old", "new",
             "unit", "change", "noise", "");
  std::size_t beyond = 0, both = 0;
  for (const Change& c : changes) {
    const std::string before = c.before ? number(*c.before) : "-";
    const std::string after = c.after ? number(*c.after) : "-";
    std::string change = "-", noise = "-", mark;
    if (c.before && c.after) {
      ++both;
      if (*c.before != 0.0) {
        change = fmt::format("{:+.1f}%", 100 * (*c.after - *c.before) / std::abs(*c.before));
        noise = fmt::format("{:.1f}%", 100 * c.noise / std::abs(*c.before));
      }
      if (c.beyond_noise) {
        ++beyond;
        mark = "BEYOND NOISE";
      }
    } else {
      mark = c.after ? "new only" : "old only";
    }
    fmt::print(out, "{:<{}} {:>14} {:>14} {:<9} {:>9} {:>9}  {}\n", c.name, width, before, after,
               c.unit, change, noise, mark);
  }
  fmt::print(out, "{} of {} results in both files changed beyond noise\n", beyond, both);
}

int run_compare(const std::string& old_path, const std::string& new_path) {
  auto before = read_results(old_path);
  auto after = before ? read_results(new_path) : mk::Result<std::vector<Result>>(before.error());
  if (!after) {
    fmt::print(stderr, "mk-bench compare: {}\n", after.error().message);
    return 2;
  }
  print_changes(compare(*before, *after), stdout);
  return 0;
}

}  // namespace mk::bench
