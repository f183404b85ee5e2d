#include "report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace mk::bench {

const Result* Report::find(const std::string& name) const {
  for (const auto& r : results_) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::optional<double> Report::ratio(const Result& result) const {
  if (!result.baseline) return std::nullopt;
  const Result* base = find(*result.baseline);
  if (base == nullptr || base->value == 0.0) return std::nullopt;
  return result.value / base->value;
}

static bool meets(const Target& target, double ratio) {
  switch (target.kind) {
    case Target::Kind::at_most:
      return ratio <= target.ratio;
    case Target::Kind::at_least:
      return ratio >= target.ratio;
    case Target::Kind::within:
      return ratio <= target.ratio && ratio >= 1 / target.ratio;
  }
  return false;
}

static const char* bound(Target::Kind kind) {
  switch (kind) {
    case Target::Kind::at_most:
      return "<=";
    case Target::Kind::at_least:
      return ">=";
    case Target::Kind::within:
      return "within";
  }
  return "?";
}

bool Report::targets_met() const {
  for (const auto& r : results_) {
    if (!r.target) continue;
    auto q = ratio(r);
    if (!q || !meets(*r.target, *q)) return false;
  }
  return true;
}

void Report::print_table(std::FILE* out) const {
  // Wide enough for the longest name, so that columns stay aligned.
  std::size_t width = 40;
  for (const auto& r : results_) {
    width = std::max({width, r.name.size(), r.baseline.value_or("").size()});
  }
  fmt::print(out, "{:<{}} {:>14} {:<9} {:<{}} {:>8}  {}\n", "result", width, "value", "unit",
             "baseline", width, "ratio", "target");
  for (const auto& r : results_) {
    auto q = ratio(r);
    std::string target;
    if (r.target) {
      target = fmt::format("{} {:.2f}", bound(r.target->kind), r.target->ratio);
      target += q && meets(*r.target, *q) ? "  met" : "  MISSED";
    }
    // Fractions and ratios need digits that nanoseconds and rates do not.
    const std::string value =
        std::abs(r.value) < 10.0 ? fmt::format("{:.4f}", r.value) : fmt::format("{:.1f}", r.value);
    fmt::print(out, "{:<{}} {:>14} {:<9} {:<{}} {:>8}  {}\n", r.name, width, value, r.unit,
               r.baseline.value_or("-"), width, q ? fmt::format("{:.3f}", *q) : "-", target);
  }
}

nlohmann::json Report::to_json() const {
  auto results = nlohmann::json::array();
  for (const auto& r : results_) {
    auto q = ratio(r);
    results.push_back({{"name", r.name},
                       {"value", r.value},
                       {"unit", r.unit},
                       {"baseline", r.baseline ? nlohmann::json(*r.baseline) : nullptr},
                       {"ratio", q ? nlohmann::json(*q) : nullptr},
                       {"spread", r.spread ? nlohmann::json{{"min", r.spread->min},
                                                            {"max", r.spread->max},
                                                            {"runs", r.spread->runs}}
                                           : nlohmann::json(nullptr)}});
  }
  return {{"bench", bench_}, {"results", results}};
}

}  // namespace mk::bench
