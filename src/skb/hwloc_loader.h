// Turning an hwloc topology (live, XML or synthetic) into SkbFacts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "mk/result.h"
#include "skb/facts.h"

namespace mk::detail {

/// Facts of the live machine, restricted to the process's allowed cpuset and affinity.
Result<std::shared_ptr<SkbFacts>> load_live();
/// Facts of an hwloc XML export file (at most kMaxInputBytes); errors name the file.
Result<std::shared_ptr<SkbFacts>> load_xml_file(const std::string& path);
/// Facts of an hwloc XML export given as text; `name` stands for the file in errors. hwloc
/// first reads the text in mk-hwloc-probe, so that a crash inside it is an error here.
Result<std::shared_ptr<SkbFacts>> load_xml_text(std::string_view xml, std::string_view name);
/// How big the machine of a synthetic description is, known before hwloc builds it.
struct SyntheticSize {
  std::uint64_t pus = 1;         ///< PUs.
  std::uint64_t build_work = 0;  ///< Estimated steps for hwloc to build it (about 1e9/s).
};

/// Checks a synthetic description token by token and measures it; errors name the bad
/// token, or the limit it passes (131,072 PUs, or about a minute of hwloc's time).
Result<SyntheticSize> measure_synthetic(std::string_view description);

/// Facts of an hwloc synthetic description; errors as measure_synthetic's.
Result<std::shared_ptr<SkbFacts>> load_synthetic(std::string_view description);

}  // namespace mk::detail
