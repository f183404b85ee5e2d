// mk-bench: runs bench suites and prints each figure beside its baseline from the same run.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "mk/skb.h"
#include "report.h"
#include "suite.h"

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

  auto* all = app.add_subcommand("all", "every suite, in order");
  for (const auto& suite : mk::bench::suites()) {
    app.add_subcommand(std::string(suite.name), std::string(suite.summary));
  }
  CLI11_PARSE(app, argc, argv);

  if (!options.topology.empty()) {
    // A bad machine is refused before any suite runs, rather than leaving a hole in the report.
    if (auto machine = mk::Skb::load(options.topology); !machine) {
      fmt::print(stderr, "mk-bench: --topology {}: {}\n", options.topology,
                 machine.error().describe());
      return 2;
    }
  }

  auto* chosen = app.get_subcommands().front();
  mk::bench::Report report(chosen == all ? "all" : chosen->get_name());
  for (const auto& suite : mk::bench::suites()) {
    if (chosen != all && chosen->get_name() != suite.name) continue;
    fmt::print(stderr, "mk-bench: running {}{}\n", suite.name, options.quick ? " (quick)" : "");
    suite.run(options, report);
  }
  report.print_table(stdout);

  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << report.to_json().dump(2) << '\n';
    if (!out) {
      fmt::print(stderr, "mk-bench: cannot write {}\n", json_path);
      return 2;
    }
  }
  return 0;
}
