// Turning an hwloc topology (live, XML or synthetic) into SkbFacts.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "mk/result.h"
#include "skb/facts.h"

namespace mk::detail {

/// Facts of the live machine, restricted to the process's allowed cpuset and affinity.
Result<std::shared_ptr<SkbFacts>> load_live();
/// Facts of an hwloc XML export; errors name the file.
Result<std::shared_ptr<SkbFacts>> load_xml(const std::string& path);
/// Facts of an hwloc synthetic description; errors name the bad token.
Result<std::shared_ptr<SkbFacts>> load_synthetic(std::string_view description);

}  // namespace mk::detail
