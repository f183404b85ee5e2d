#include "report_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "figures.h"
#include "machine_view.h"
#include "plot.h"
#include "report_pages.h"
#include "runs.h"

namespace mk::bench {
namespace {

constexpr const char* kNoGnuplot =
    "mk-bench report: gnuplot not found (apt-get install gnuplot-nox): tables written, no plots";

/// Seconds one quick run of a suite took on a 2-core virtual machine; a full run is taken to
/// cost kFullFactor times as much. Only the first estimate of the time left uses them: each
/// suite's own first run replaces its figure, and scales the others'.
const std::map<std::string_view, double> kQuickSeconds = {
    {"channel", 7.5},   {"peers", 1.0},   {"rpc", 3.6},     {"idle", 4.3}, {"shm-vs-msg", 0.6},
    {"agreement", 1.0}, {"replica", 0.5}, {"project", 0.1}, {"caps", 0.2}};
constexpr double kFullFactor = 5.0;
constexpr double kUnknownSeconds = 5.0;

std::string clock_time(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

/// The suites `list` names, in suites() order; an error naming an unknown or empty name.
mk::Result<std::vector<const Suite*>> chosen_suites(const std::string& list) {
  std::vector<const Suite*> out;
  if (list.empty()) {
    for (const Suite& suite : suites())
      out.push_back(&suite);
    return out;
  }
  std::vector<std::string> names;
  std::istringstream in(list);
  for (std::string name; std::getline(in, name, ',');)
    names.push_back(name);
  if (list.back() == ',') names.emplace_back();
  std::string known;
  for (const Suite& suite : suites())
    known += (known.empty() ? "" : ", ") + std::string(suite.name);
  for (const std::string& name : names) {
    const auto found = std::find_if(suites().begin(), suites().end(),
                                    [&](const Suite& s) { return s.name == name; });
    if (found == suites().end()) {
      return mk::error(Errc::invalid_argument,
                       fmt::format("--suites: unknown suite '{}' (suites: {})", name, known));
    }
  }
  for (const Suite& suite : suites()) {
    if (std::find(names.begin(), names.end(), suite.name) != names.end()) out.push_back(&suite);
  }
  return out;
}

mk::Result<void> write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    return mk::error(Errc::io_error,
                     fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
  }
  return {};
}

/// The time left: each remaining run costs what its suite's first run cost, or its prior
/// estimate scaled as the suites measured so far compared with theirs.
double seconds_left(const std::vector<const Suite*>& order, std::size_t next,
                    const std::map<std::string_view, double>& first_run, bool quick) {
  const auto prior = [&](std::string_view name) {
    auto it = kQuickSeconds.find(name);
    return (it == kQuickSeconds.end() ? kUnknownSeconds : it->second) * (quick ? 1.0 : kFullFactor);
  };
  double measured = 0.0, expected = 0.0;
  for (const auto& [name, seconds] : first_run) {
    measured += seconds;
    expected += prior(name);
  }
  const double scale = expected > 0.0 ? measured / expected : 1.0;
  double left = 0.0;
  for (std::size_t i = next; i < order.size(); ++i) {
    auto it = first_run.find(order[i]->name);
    left += it != first_run.end() ? it->second : prior(order[i]->name) * scale;
  }
  return left;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
  return text;
}

}  // namespace

int run_report(const ReportRequest& request, Options options) {
  auto chosen = chosen_suites(request.suites);
  if (!chosen) {
    fmt::print(stderr, "mk-bench report: {}\n", chosen.error().message);
    return 2;
  }
  if (request.runs == 0) {
    fmt::print(stderr, "mk-bench report: --runs must be at least 1\n");
    return 2;
  }
  // Checked before any suite runs, rather than after minutes of measuring.
  const std::filesystem::path dir(request.out);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir) || access(dir.c_str(), W_OK) != 0) {
    fmt::print(stderr, "mk-bench report: --out {}: cannot write there: {}\n", request.out,
               ec ? ec.message() : std::strerror(errno ? errno : ENOTDIR));
    return 2;
  }
  const bool have_gnuplot = on_path("gnuplot");
  if (!have_gnuplot) {
    fmt::print(stderr,
               "mk-bench report: gnuplot not found: measuring anyway; the report will "
               "have tables and no plots\n");
  }

  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  options.sweep = true;
  for (const Suite* suite : *chosen)
    options.running.push_back(suite->name);

  Report machine_results("machine");
  fmt::print(stderr, "mk-bench report: machine: the SKB's view and core-to-core round trips\n");
  auto machine = measure_machine(options.quick, machine_results);
  if (!machine) {
    fmt::print(stderr, "mk-bench report: machine: {}\n", machine.error().describe());
    machine = MachineFacts{};
  }

  // Runs interleave the suites (all once, then all again), so that a disturbance of the
  // machine shows as one suite's spread instead of shifting one suite's every run.
  std::vector<const Suite*> order;
  for (std::size_t run = 0; run < request.runs; ++run)
    order.insert(order.end(), chosen->begin(), chosen->end());
  std::vector<Report> runs(request.runs, Report("report"));
  std::map<std::string_view, double> first_run;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Suite& suite = *order[i];
    const std::size_t run = i / chosen->size();
    fmt::print(stderr,
               "mk-bench report: suite {} run {} of {} ({} of {} runs done, {} elapsed, about {} "
               "left)\n",
               suite.name, run + 1, request.runs, i, order.size(), clock_time(elapsed()),
               clock_time(seconds_left(order, i, first_run, options.quick)));
    const double before = elapsed();
    // Point by point: each result as its suite measures it.
    runs[run].on_add([&, name = suite.name](const Result& point) {
      fmt::print(stderr, "mk-bench report:   {} run {}: {} = {:.4g} {} ({} elapsed)\n", name,
                 run + 1, point.name, point.value, point.unit, clock_time(elapsed()));
    });
    suite.run(options, runs[run]);
    runs[run].on_add({});
    first_run.try_emplace(suite.name, elapsed() - before);
  }

  std::string names;
  for (const Suite* suite : *chosen)
    names += (names.empty() ? "" : ",") + std::string(suite->name);
  Report report("report");
  for (const Result& r : machine_results.results())
    report.add(r);
  const Report merged = merge_runs("report", runs);
  for (const Result& r : merged.results())
    report.add(r);

  std::vector<Figure> figures;
  for (Figure& f : make_figures(report, *machine)) {
    const bool ran = f.suites.empty() || std::any_of(f.suites.begin(), f.suites.end(), [&](auto s) {
                       return std::find(options.running.begin(), options.running.end(), s) !=
                              options.running.end();
                     });
    if (ran) figures.push_back(std::move(f));
  }

  ReportRun about{names, options.quick, request.runs, 0.0, utc_now(), {}, {}};
  bool plots_missing = !have_gnuplot;
  for (const Figure& f : figures) {
    bool drawn = false;
    if (!plots_missing && !f.plot.empty()) {
      const std::string script = fmt::format(
          "set terminal pngcairo noenhanced size 1200,560 font \"sans,10\"\nset output \"{}.png\"\n"
          "set grid\n{}",
          f.file, f.plot);
      const auto gp = dir / (f.file + ".gp");
      const auto log = dir / (f.file + ".gnuplot.log");
      if (auto written = write_file(gp, script); !written) {
        fmt::print(stderr, "mk-bench report: {}\n", written.error().message);
      } else if (auto drew = run_gnuplot(gp.string(), log.string()); drew) {
        drawn = true;
        std::filesystem::remove(log, ec);
      } else if (drew.error().code == Errc::unavailable) {
        plots_missing = true;
      } else {
        fmt::print(stderr, "mk-bench report: {}\n", drew.error().message);
      }
    }
    about.drawn.push_back(drawn);
  }
  if (plots_missing) about.plots_missing = "gnuplot not found (apt-get install gnuplot-nox)";
  about.seconds = elapsed();

  nlohmann::json json = report.to_json();
  json["suites"] = names;
  json["quick"] = options.quick;
  json["runs"] = request.runs;
  json["machine"] = nlohmann::json::object();
  for (const auto& [what, value] : machine->rows)
    json["machine"][what] = value;
  int status = 0;
  for (const auto& [file, text] :
       {std::pair<const char*, std::string>{"results.json", json.dump(2) + "\n"},
        {"report.md", report_markdown(report, figures, about)},
        {"report.html", report_html(report, figures, about)}}) {
    if (auto written = write_file(dir / file, text); !written) {
      fmt::print(stderr, "mk-bench report: {}\n", written.error().message);
      status = 2;
    }
  }
  if (plots_missing) fmt::print(stderr, "{}\n", kNoGnuplot);
  fmt::print(stderr, "mk-bench report: {} figures, {} results in {} ({} elapsed)\n", figures.size(),
             report.results().size(), request.out, clock_time(about.seconds));
  return status;
}

}  // namespace mk::bench
