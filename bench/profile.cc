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

// NAME.reference.json beside NAME.json, if there is one.
Result<void> load_reference(MachineProfile& profile) {
  std::filesystem::path path(profile.path);
  path.replace_extension(".reference.json");
  std::error_code ignored;
  if (!std::filesystem::is_regular_file(path, ignored)) return {};
  const std::string name = path.string();
  std::ifstream in(path);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return error(Errc::parse_error, fmt::format("--profile reference {}: {}", name, e.what()));
  }
  auto bad = [&](const std::string& what) {
    return error(Errc::invalid_argument, fmt::format("--profile reference {}: {}", name, what));
  };
  if (!doc.is_object() || !doc.contains("source") || !doc["source"].is_string()) {
    return bad("\"source\" must be a string");
  }
  if (!doc.contains("unit") || doc["unit"] != "cycles") return bad("\"unit\" must be \"cycles\"");
  if (!doc.contains("points") || !doc["points"].is_array()) {
    return bad("\"points\" must be an array");
  }
  profile.reference_source = doc["source"].get<std::string>();
  for (std::size_t i = 0; i < doc["points"].size(); ++i) {
    const nlohmann::json& point = doc["points"][i];
    const std::string at = fmt::format("points[{}]", i);
    if (!point.is_object() || !point.contains("cores") || !point["cores"].is_number_unsigned() ||
        !point.contains("route") || !point["route"].is_string() || !point.contains("value") ||
        !point["value"].is_number() || point["value"].get<double>() <= 0) {
      return bad(at + " must be {\"cores\": n, \"route\": name, \"value\": positive}");
    }
    auto route = parse_route_kind(point["route"].get<std::string>());
    if (!route) return bad(at + ": " + route.error().message);
    profile.reference.push_back(
        {point["cores"].get<std::size_t>(), *route, point["value"].get<double>()});
  }
  return {};
}

}  // namespace

std::vector<std::string> profile_dirs() {
  return {MK_BENCH_SOURCE_PROFILES, MK_BENCH_INSTALLED_PROFILES};
}

mk::Result<MachineProfile> load_profile(std::string_view name_or_path) {
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
  if (auto reference = load_reference(profile); !reference) return std::move(reference).error();
  return profile;
}

}  // namespace mk::bench
