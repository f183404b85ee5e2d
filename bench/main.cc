// mk-bench: runs bench suites and prints each figure beside its baseline from the same run.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compare.h"
#include "mk/skb.h"
#include "profile.h"
#include "report.h"
#include "report_command.h"
#include "suite.h"

namespace {

// Why `path` cannot be written, or empty when it can. Creates nothing and truncates nothing,
// so a run that fails later loses no earlier results.
std::string unwritable(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd >= 0) {
    close(fd);
    unlink(path.c_str());
    return {};
  }
  if (errno == EEXIST) fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return {};
  }
  return std::strerror(errno);
}

std::string suite_names() {
  std::vector<std::string_view> names{"all"};
  for (const auto& suite : mk::bench::suites())
    names.push_back(suite.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mk-bench: mk's bench suites, each figure beside its baseline from the same run"};
  app.require_subcommand(1);
  app.fallthrough();  // options may follow the suite name: `mk-bench channel --quick`
  mk::bench::Options options;
  std::string json_path;
  app.add_flag("--quick", options.quick, "fewer iterations (seconds per suite)");
  app.add_option("--json", json_path, "also write the results as JSON to this file");
  app.add_option("--topology", options.topology,
                 "project: the machine to simulate, an hwloc XML file or a synthetic description "
                 "(default \"pack:8 numa:1 core:4 pu:1\")");

  app.add_option("--profile", options.profile,
                 "project: a machine profile (bench/profiles/NAME.json, or a path) whose asserted "
                 "latencies replace this host's measured costs, such as amd-8x4; caps: the "
                 "machine its revoke projection runs on (default amd-8x4)");

  auto* all = app.add_subcommand("all", "every suite, in order");
  for (const auto& suite : mk::bench::suites()) {
    app.add_subcommand(std::string(suite.name), std::string(suite.summary));
  }
  mk::bench::ReportRequest report_request;
  auto* report_cmd = app.add_subcommand(
      "report", "run suites several times; write results.json, report.md, report.html, plots");
  report_cmd->add_option("--out", report_request.out, "directory to write the report to")
      ->required();
  report_cmd->add_option("--suites", report_request.suites,
                         "suites to run, a,b,... (default: all)");
  report_cmd->add_option("--runs", report_request.runs, "runs of each suite, for its spread")
      ->capture_default_str();
  std::vector<std::string> compared;
  auto* compare_cmd = app.add_subcommand("compare", "each result's change from OLD to NEW JSON");
  compare_cmd->add_option("files", compared, "OLD.json NEW.json")->expected(2)->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports a misspelt suite as a missing one; name what was typed instead.
    if (const std::vector<std::string> rest = app.remaining(); !rest.empty()) {
      fmt::print(stderr, "mk-bench: unknown suite or argument '{}' (suites: {})\n", rest.front(),
                 suite_names());
    } else {
      fmt::print(stderr, "mk-bench: {} (suites: {})\n", e.what(), suite_names());
    }
    return 2;
  }

  // Checked before any suite runs, rather than after minutes of measuring.
  if (!json_path.empty()) {
    if (const std::string why = unwritable(json_path); !why.empty()) {
      fmt::print(stderr, "mk-bench: --json {}: cannot write: {}\n", json_path, why);
      return 2;
    }
  }

  if (!options.profile.empty()) {
    if (!options.topology.empty()) {
      fmt::print(stderr, "mk-bench: --profile and --topology both name the machine; give one\n");
      return 2;
    }
    if (auto profile = mk::bench::load_profile(options.profile); !profile) {
      fmt::print(stderr, "mk-bench: {}\n", profile.error().describe());
      return 2;
    }
  }

  if (!options.topology.empty()) {
    // A bad machine is refused before any suite runs, rather than leaving a hole in the report.
    if (auto machine = mk::Skb::load(options.topology); !machine) {
      fmt::print(stderr, "mk-bench: --topology {}: {}\n", options.topology,
                 machine.error().describe());
      return 2;
    }
  }

  auto* chosen = app.get_subcommands().front();
  if (chosen == compare_cmd) return mk::bench::run_compare(compared[0], compared[1]);
  if (chosen == report_cmd) return mk::bench::run_report(report_request, options);
  mk::bench::Report report(chosen == all ? "all" : chosen->get_name());
  for (const auto& suite : mk::bench::suites()) {
    if (chosen == all || chosen->get_name() == suite.name) options.running.push_back(suite.name);
  }
  for (const auto& suite : mk::bench::suites()) {
    if (chosen != all && chosen->get_name() != suite.name) continue;
    fmt::print(stderr, "mk-bench: running {}{}\n", suite.name, options.quick ? " (quick)" : "");
    suite.run(options, report);
  }
  report.print_table(stdout);

  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << report.to_json().dump(2) << '\n';
    out.close();
    if (!out) {
      fmt::print(stderr, "mk-bench: --json {}: cannot write: {}\n", json_path,
                 std::strerror(errno));
      return 2;
    }
  }
  return 0;
}
