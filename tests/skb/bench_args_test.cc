// mk-bench's argument errors: named, and found before any suite runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "skb/skb_test_support.h"

namespace mk {
namespace {

test::ToolRun bench(const std::string& arguments) {
  return test::run_tool(MK_BENCH_TOOL, arguments);
}

TEST(BenchArguments, AnUnknownSuiteIsNamedWithTheSuites) {
  const test::ToolRun result = bench("chanel --quick");
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("unknown suite or argument 'chanel'"), std::string::npos) << result.err;
  for (const char* suite : {"all", "channel", "rpc", "idle", "project"})
    EXPECT_NE(result.err.find(suite), std::string::npos) << suite << ": " << result.err;
}

TEST(BenchArguments, AnUnwritableJsonPathFailsBeforeAnySuiteRuns) {
  const test::TempDir temp;
  const std::string path = temp.path() + "/no/such/dir/results.json";
  const test::ToolRun result = bench("--json " + test::quoted(path) + " channel --quick");
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find(path), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("No such file or directory"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("running"), std::string::npos) << result.err;
  EXPECT_TRUE(result.out.empty()) << result.out;
}

// The check writes nothing: a run refused afterwards (here for its --topology) leaves an
// earlier results file as it was, and creates no file where there was none.
TEST(BenchArguments, CheckingTheJsonPathChangesNothing) {
  const test::TempDir temp;
  const std::string earlier = temp.path() + "/earlier.json";
  test::write_file(earlier, "{\"earlier\": true}\n");
  const std::string fresh = temp.path() + "/fresh.json";
  for (const std::string& path : {earlier, fresh}) {
    const test::ToolRun result =
        bench("--json " + test::quoted(path) + " --topology 'pack:2 bogus:1' project --quick");
    EXPECT_EQ(result.status, 2);
    EXPECT_NE(result.err.find("bogus:1"), std::string::npos) << result.err;
  }
  EXPECT_EQ(test::read_file(earlier), "{\"earlier\": true}\n");
  EXPECT_FALSE(std::filesystem::exists(fresh));
}

}  // namespace
}  // namespace mk
