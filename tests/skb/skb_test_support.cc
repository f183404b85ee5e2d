#include "skb/skb_test_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

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

}  // namespace mk::test
