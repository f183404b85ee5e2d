// Topologies every SKB test runs on: the real machines' XML exports and synthetic ones.
#pragma once

#include <string>
#include <vector>

#include "mk/skb.h"

namespace mk::test {

/// One topology to load: a label for test output and the argument of Skb::load.
struct TopologyCase {
  std::string label;     ///< File name or synthetic description.
  std::string argument;  ///< What Skb::load takes.
};

/// Every XML file in MK_TOPOLOGIES_DIR, then several synthetic descriptions.
std::vector<TopologyCase> all_topologies();

/// Path of a file in MK_TOPOLOGIES_DIR.
std::string topology_file(const std::string& name);

/// Loads `argument`, failing the calling test (and returning nothing useful) on error.
Skb load_or_fail(const std::string& argument);

/// True when `skb.facts()` lists `subject` `property` = `value` from `source`.
bool has_fact(const Skb& skb, const std::string& subject, const std::string& property,
              const std::string& value, FactSource source);

/// A fresh empty directory under the system's temporary directory, removed with its contents
/// when this goes out of scope (also when an assertion ends the test early).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// The directory's path.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Writes `text` to `path`.
void write_file(const std::string& path, const std::string& text);

/// The text of a file, empty when it cannot be read.
std::string read_file(const std::string& path);

/// Path of a file of the fuzz corpora, tests/data/fuzz/<target>/<name>.
std::string fuzz_input(const std::string& target, const std::string& name);

/// What a command-line tool did.
struct ToolRun {
  int status = -1;  ///< Exit status; -1 when it died of a signal.
  std::string out;  ///< Its stdout.
  std::string err;  ///< Its stderr.
};

/// Runs `executable` with `arguments` (shell syntax) and collects its output.
ToolRun run_tool(const std::string& executable, const std::string& arguments);

/// `text` in single quotes, for a shell command line.
std::string quoted(const std::string& text);

}  // namespace mk::test
