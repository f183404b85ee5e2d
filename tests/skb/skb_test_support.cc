#include "skb/skb_test_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mk::test {

std::vector<TopologyCase> all_topologies() {
  std::vector<TopologyCase> cases;
  for (const auto& entry : std::filesystem::directory_iterator(MK_TOPOLOGIES_DIR)) {
    if (entry.path().extension() == ".xml") {
      cases.push_back({entry.path().filename().string(), entry.path().string()});
    }
  }
  std::sort(cases.begin(), cases.end(),
            [](const TopologyCase& a, const TopologyCase& b) { return a.label < b.label; });
  for (const char* synthetic :
       {"pack:8 numa:1 core:4 pu:1", "pack:2 numa:4 l3:4 core:8 pu:2", "pack:2 numa:2 core:2 pu:2",
        "numa:2 pack:2 l2:2 core:2 pu:1", "core:4 pu:1", "pack:1 core:1 pu:1"}) {
    cases.push_back({synthetic, synthetic});
  }
  return cases;
}

std::string topology_file(const std::string& name) {
  return std::string(MK_TOPOLOGIES_DIR) + "/" + name;
}

bool has_fact(const Skb& skb, const std::string& subject, const std::string& property,
              const std::string& value, FactSource source) {
  const auto facts = skb.facts();
  return std::any_of(facts.begin(), facts.end(), [&](const Fact& fact) {
    return fact.subject == subject && fact.property == property && fact.value == value &&
           fact.source == source;
  });
}

Skb load_or_fail(const std::string& argument) {
  auto skb = Skb::load(argument);
  if (!skb) {
    ADD_FAILURE() << argument << ": " << skb.error().describe();
    return Skb::from_synthetic("pack:1 core:1 pu:1").value();
  }
  return std::move(skb).value();
}

TempDir::TempDir()
    : path_((std::filesystem::temp_directory_path() / "mk-skb-test-XXXXXX").string()) {
  if (mkdtemp(path_.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string fuzz_input(const std::string& target, const std::string& name) {
  return std::string(MK_FUZZ_CORPUS_DIR) + "/" + target + "/" + name;
}

ToolRun run_tool(const std::string& executable, const std::string& arguments) {
  const TempDir temp;
  const std::string& dir = temp.path();
  const std::string command = executable + " " + arguments + " >" + dir + "/out 2>" + dir + "/err";
  ToolRun result;
  const int raw = std::system(command.c_str());
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  result.out = read_file(dir + "/out");
  result.err = read_file(dir + "/err");
  return result;
}

std::string quoted(const std::string& text) {
  return "'" + text + "'";
}

}  // namespace mk::test
