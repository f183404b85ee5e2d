#include "profile.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mk::bench {
namespace {

bool is_path(std::string_view name) {
  return name.find('/') != std::string_view::npos || name.ends_with(".json");
}

Result<std::string> resolve(std::string_view name_or_path) {
  if (name_or_path.empty()) return error(Errc::invalid_argument, "--profile: empty name");
  if (is_path(name_or_path)) return std::string(name_or_path);
  for (const std::string& dir : profile_dirs()) {
    const std::string candidate = dir + "/" + std::string(name_or_path) + ".json";
    std::error_code ignored;
    if (std::filesystem::is_regular_file(candidate, ignored)) return candidate;
  }
  return error(Errc::not_found, fmt::format("--profile {}: no {}.json in {}", name_or_path,
                                            name_or_path, fmt::join(profile_dirs(), " or ")));
}

}  // namespace

std::vector<std::string> profile_dirs() {
  return {MK_BENCH_SOURCE_PROFILES, MK_BENCH_INSTALLED_PROFILES};
}

Result<MachineProfile> load_profile(std::string_view name_or_path) {
  auto path = resolve(name_or_path);
  if (!path) return std::move(path).error();
  std::ifstream in(*path);
  if (!in) return error(Errc::not_found, fmt::format("--profile {}: cannot read it", *path));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    return error(Errc::parse_error, fmt::format("--profile {}: {}", *path, e.what()));
  }
  // The facts are the SKB's to check, with its messages; this takes the two fields a profile
  // must have besides.
  auto field = [&](const char* name) -> const nlohmann::json* {
    return doc.is_object() && doc.contains(name) ? &doc[name] : nullptr;
  };
  const nlohmann::json* topology = field("topology");
  if (topology == nullptr || !topology->is_string()) {
    return error(Errc::invalid_argument,
                 fmt::format("--profile {}: a profile must give \"topology\" (a string in "
                             "Skb::load syntax)",
                             *path));
  }
  const nlohmann::json* clock = field("clock_ghz");
  if (clock == nullptr || !clock->is_number()) {
    return error(Errc::invalid_argument,
                 fmt::format("--profile {}: a profile must give \"clock_ghz\"", *path));
  }
  MachineProfile profile;
  profile.path = *path;
  profile.topology = topology->get<std::string>();
  profile.clock_ghz = clock->get<double>();
  auto machine = Skb::load(profile.topology);
  if (!machine) {
    return error(machine.error().code, fmt::format("--profile {}: topology \"{}\": {}", *path,
                                                   profile.topology, machine.error().message));
  }
  if (auto facts = machine->assert_facts_json(text.str(), *path); !facts) {
    return error(facts.error().code, "--profile " + facts.error().message);
  }
  profile.machine = std::move(*machine);
  return profile;
}

}  // namespace mk::bench
