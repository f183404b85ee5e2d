// mk-bench report and compare: every file written, PNGs real, the HTML's references present,
// spreads measured; the documented message without gnuplot; compare flagging exactly the
// changes beyond noise; clear errors for bad arguments and bad files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "skb/skb_test_support.h"

namespace mk {
namespace {

constexpr const char* kNoGnuplot =
    "mk-bench report: gnuplot not found (apt-get install gnuplot-nox): tables written, no plots";

// A cheap report: two short suites (figures 2 and 3) and figure 1, each suite run twice.
const std::string kTiny = "report --quick --suites shm-vs-msg,peers --runs 2 --out ";

bool gnuplot_on_path() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path == nullptr ? "" : path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && access((dir + "/gnuplot").c_str(), X_OK) == 0) return true;
  }
  return false;
}

bool exists(const std::string& path) {
  return std::filesystem::is_regular_file(path);
}

std::set<std::string> built_peers() {
  std::set<std::string> peers;
  std::istringstream list(MK_BENCH_PEERS_BUILT);
  for (std::string name; std::getline(list, name, ',');)
    peers.insert(name);
  return peers;
}

// Every file a page refers to by `pattern`'s first group.
std::vector<std::string> references(const std::string& page, const std::regex& pattern) {
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), pattern);
       it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1].str());
  return out;
}

void expect_tables(const std::string& dir) {
  ASSERT_TRUE(exists(dir + "/results.json"));
  ASSERT_TRUE(exists(dir + "/report.md"));
  ASSERT_TRUE(exists(dir + "/report.html"));
  const nlohmann::json json = nlohmann::json::parse(test::read_file(dir + "/results.json"));
  ASSERT_TRUE(json.at("results").is_array());
  std::map<std::string, nlohmann::json> results;
  for (const nlohmann::json& r : json.at("results"))
    results[r.at("name").get<std::string>()] = r;
  // Each suite's result carries the spread of its two runs; figure 1's round trip is one run.
  for (const char* name : {"peer.urpc.rtt_ns", "shm_vs_msg.shared.1.ns_per_update"}) {
    ASSERT_TRUE(results.contains(name)) << json.dump(2);
    const nlohmann::json& r = results[name];
    ASSERT_TRUE(r.at("spread").is_object()) << r.dump();
    EXPECT_EQ(r["spread"].at("runs"), 2) << r.dump();
    EXPECT_LE(r["spread"].at("min").get<double>(), r.at("value").get<double>()) << r.dump();
    EXPECT_GE(r["spread"].at("max").get<double>(), r.at("value").get<double>()) << r.dump();
  }
  EXPECT_TRUE(results.contains("machine.rtt_ns.0.1") || json.at("machine").size() > 0);
  const std::string md = test::read_file(dir + "/report.md");
  for (const char* title : {"Figure 1: the machine", "Figure 2: channels against peers",
                            "Figure 3: shared memory against messages"}) {
    EXPECT_NE(md.find(title), std::string::npos) << md;
  }
  // Suites left out leave their figures out.
  EXPECT_EQ(md.find("Figure 4"), std::string::npos);
  for (const std::string peer : {"dpdk_rte_ring", "ck_ring", "moodycamel"}) {
    const bool named = md.find(peer + " not built (") != std::string::npos;
    EXPECT_EQ(named, !built_peers().contains(peer)) << peer;
  }
}

TEST(BenchReport, WritesEveryFileAndEveryPngItRefersTo) {
  if (!gnuplot_on_path()) GTEST_SKIP() << "gnuplot is not installed (scripts/setup.sh installs it)";
  const test::TempDir temp;
  const std::string dir = temp.path() + "/report";
  const test::ToolRun run = test::run_tool(MK_BENCH_TOOL, kTiny + test::quoted(dir));
  ASSERT_EQ(run.status, 0) << run.err;
  expect_tables(dir);
  EXPECT_EQ(run.err.find("gnuplot not found"), std::string::npos) << run.err;
  // Progress names the suite, the run and the time left.
  EXPECT_NE(run.err.find("suite peers run 2 of 2"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("left)"), std::string::npos) << run.err;

  const std::string html = test::read_file(dir + "/report.html");
  const auto images = references(html, std::regex("<img src=\"([^\"]+)\""));
  ASSERT_EQ(images.size(), 3u) << html;  // figures 1, 2 and 3
  for (const std::string& image : images) {
    SCOPED_TRACE(image);
    const std::string png = test::read_file(dir + "/" + image);
    ASSERT_GT(png.size(), 2000u);
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  }
  const std::string md = test::read_file(dir + "/report.md");
  const auto md_images = references(md, std::regex(R"(!\[[^\]]*\]\(([^)]+)\))"));
  EXPECT_EQ(std::set<std::string>(md_images.begin(), md_images.end()),
            std::set<std::string>(images.begin(), images.end()));
}

TEST(BenchReport, WithoutGnuplotSaysSoAndStillWritesTheTables) {
  const test::TempDir temp;
  const std::string dir = temp.path() + "/report";
  // A PATH without gnuplot: mk-bench must not need it for anything else.
  const test::ToolRun run =
      test::run_tool("/usr/bin/env", "PATH=/nonexistent " + test::quoted(MK_BENCH_TOOL) + " " +
                                         kTiny + test::quoted(dir));
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.err.find(kNoGnuplot), std::string::npos) << run.err;
  expect_tables(dir);
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    EXPECT_NE(entry.path().extension(), ".png") << entry.path();
  EXPECT_EQ(test::read_file(dir + "/report.html").find("<img"), std::string::npos);
  EXPECT_NE(test::read_file(dir + "/report.md").find("gnuplot not found"), std::string::npos);
}

std::string write(const test::TempDir& temp, const std::string& name, const std::string& text) {
  const std::string path = temp.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// The line compare printed for `name`, or empty.
std::string line_of(const std::string& out, const std::string& name) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return line;
  }
  return {};
}

TEST(BenchCompare, FlagsExactlyTheChangesBeyondTheNoiseOfEitherFile) {
  const test::TempDir temp;
  // Ranges (max - min): a and b 10 in the old file; a 10 and b 4 in the new one. Without a
  // spread a result's noise is 10% of its value.
  const std::string old_path = write(temp, "old.json", R"({"bench": "all", "results": [
    {"name": "a.ns", "value": 100, "unit": "ns", "spread": {"min": 95, "max": 105, "runs": 3}},
    {"name": "b.ns", "value": 100, "unit": "ns", "spread": {"min": 95, "max": 105, "runs": 3}},
    {"name": "c.ns", "value": 100, "unit": "ns", "baseline": null, "ratio": null},
    {"name": "d.ns", "value": 100, "unit": "ns", "spread": null},
    {"name": "e.ops", "value": 1000, "unit": "op/s", "spread": {"min": 1000, "max": 1000, "runs": 3}},
    {"name": "gone", "value": 1, "unit": "x"}]})");
  const std::string new_path = write(temp, "new.json", R"({"bench": "all", "results": [
    {"name": "a.ns", "value": 109, "unit": "ns", "spread": {"min": 100, "max": 110, "runs": 3}},
    {"name": "b.ns", "value": 111, "unit": "ns", "spread": {"min": 109, "max": 113, "runs": 3}},
    {"name": "c.ns", "value": 109, "unit": "ns"},
    {"name": "d.ns", "value": 88, "unit": "ns"},
    {"name": "e.ops", "value": 1001, "unit": "op/s", "spread": {"min": 1001, "max": 1001, "runs": 3}},
    {"name": "added", "value": 1, "unit": "x"}]})");
  const test::ToolRun run = test::run_tool(
      MK_BENCH_TOOL, "compare " + test::quoted(old_path) + " " + test::quoted(new_path));
  ASSERT_EQ(run.status, 0) << run.err;
  const std::map<std::string, bool> beyond = {
      {"a.ns", false}, {"b.ns", true}, {"c.ns", false}, {"d.ns", true}, {"e.ops", true}};
  for (const auto& [name, flagged] : beyond) {
    const std::string line = line_of(run.out, name);
    ASSERT_FALSE(line.empty()) << name << "\n" << run.out;
    EXPECT_EQ(line.find("BEYOND NOISE") != std::string::npos, flagged) << line;
  }
  EXPECT_NE(line_of(run.out, "added").find("new only"), std::string::npos) << run.out;
  EXPECT_NE(line_of(run.out, "gone").find("old only"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("3 of 5 results in both files changed beyond noise"), std::string::npos)
      << run.out;
}

TEST(BenchCompare, ReadsWhatReportWrote) {
  const test::TempDir temp;
  const std::string dir = temp.path() + "/report";
  const test::ToolRun report = test::run_tool(
      "/usr/bin/env", "PATH=/nonexistent " + test::quoted(MK_BENCH_TOOL) +
                          " report --quick --suites project --runs 2 --out " + test::quoted(dir));
  ASSERT_EQ(report.status, 0) << report.err;
  const std::string json = dir + "/results.json";
  const test::ToolRun run =
      test::run_tool(MK_BENCH_TOOL, "compare " + test::quoted(json) + " " + test::quoted(json));
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("\n0 of "), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("BEYOND NOISE"), std::string::npos) << run.out;
}

TEST(BenchReport, BadArgumentsAndBadFilesAreClearErrors) {
  const test::TempDir temp;
  const std::string good = write(temp, "good.json", R"({"results": [{"name": "a", "value": 1}]})");
  const std::string dir = test::quoted(temp.path() + "/out");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"report --quick", "--out is required"},
      {"report --quick --suites chanel --out " + dir, "unknown suite 'chanel'"},
      {"report --quick --suites peers, --out " + dir, "unknown suite ''"},
      {"report --quick --runs 0 --out " + dir, "--runs must be at least 1"},
      {"report --quick --out " + test::quoted(good + "/sub"), "cannot write there"},
      {"compare " + test::quoted(good), "required"},
      {"compare " + test::quoted(temp.path() + "/none.json") + " " + test::quoted(good),
       "none.json: cannot read"},
      {"compare " + test::quoted(good) + " " + test::quoted(write(temp, "text.json", "results: 1")),
       "text.json: not JSON"},
      {"compare " + test::quoted(good) + " " + test::quoted(write(temp, "shape.json", "[1, 2]")),
       "shape.json: no \"results\" array"},
      {"compare " + test::quoted(good) + " " +
           test::quoted(write(temp, "value.json", R"({"results": [{"name": "a"}]})")),
       "value.json: results[0] (a): no finite \"value\""},
      {"compare " + test::quoted(good) + " " +
           test::quoted(write(temp, "spread.json",
                              R"({"results": [{"name": "a", "value": 1,
                                   "spread": {"min": 2, "max": 1}}]})")),
       "spread.json: results[0] (a): \"spread\" needs numbers"},
      {"compare " + test::quoted(good) + " " +
           test::quoted(write(temp, "twice.json",
                              R"({"results": [{"name": "a", "value": 1},
                                              {"name": "a", "value": 2}]})")),
       "twice.json: results[1]: a twice"},
  };
  for (const auto& [arguments, message] : cases) {
    SCOPED_TRACE(arguments);
    const test::ToolRun run = test::run_tool(MK_BENCH_TOOL, arguments);
    EXPECT_EQ(run.status, 2) << run.err;
    EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
  }
  // Nothing was measured or written for a refused report.
  EXPECT_FALSE(std::filesystem::exists(temp.path() + "/out/results.json"));
}

}  // namespace
}  // namespace mk
