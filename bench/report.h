// The results of a bench run: each figure beside its baseline from the same run.
#pragma once

#include <cstddef>
#include <cstdio>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mk::bench {

/// A target a result should meet, as a ratio to its baseline.
struct Target {
  /// Which side of `ratio` passes; `within`: from 1 / ratio to ratio (ratio >= 1).
  enum class Kind { at_most, at_least, within } kind;
  double ratio;  ///< The bound on value / baseline value.
};

/// How a result varied over repeated runs of its suite: measured, never assumed.
struct Spread {
  double min = 0.0;      ///< The lowest value any run gave.
  double max = 0.0;      ///< The highest value any run gave.
  std::size_t runs = 0;  ///< Runs of the suite that gave a value.
};

/// One measured figure.
struct Result {
  std::string name;                     ///< Such as "urpc.rtt_ns".
  double value;                         ///< The figure.
  std::string unit;                     ///< Such as "ns", "msg/s", "fraction".
  std::optional<std::string> baseline;  ///< Name of the result it is compared with.
  std::optional<Target> target;         ///< The ratio it should reach, when there is one.
  /// Over repeated runs (`mk-bench report`), `value` being their median; none for one run.
  std::optional<Spread> spread = std::nullopt;
};

/// Collects results of one or more suites; prints them as a table or JSON.
class Report {
 public:
  /// A report for the suite named `bench` ("channel", "rpc", ... or "all").
  explicit Report(std::string bench) : bench_(std::move(bench)) {}

  /// Adds a result; its baseline, if any, must be added before or after, in the same report.
  void add(Result result) {
    if (on_add_) on_add_(result);
    results_.push_back(std::move(result));
  }

  /// Calls `f` with each result as it is added (mk-bench report's progress, point by point).
  void on_add(std::function<void(const Result&)> f) { on_add_ = std::move(f); }

  /// value / baseline's value, or nullopt when there is no baseline (or it is 0 or missing).
  std::optional<double> ratio(const Result& result) const;

  /// True when every result with a target meets it.
  bool targets_met() const;

  /// A readable table: name, value, unit, baseline, ratio, target.
  void print_table(std::FILE* out) const;

  /// {"bench": ..., "results": [{"name", "value", "unit", "baseline", "ratio", "spread"}, ...]},
  /// spread {"min", "max", "runs"} or null.
  nlohmann::json to_json() const;

  /// Every result so far.
  const std::vector<Result>& results() const { return results_; }

 private:
  const Result* find(const std::string& name) const;

  std::string bench_;
  std::vector<Result> results_;
  std::function<void(const Result&)> on_add_;
};

}  // namespace mk::bench
