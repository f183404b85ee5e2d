// How mk-skb prints the SKB: the readable machine, facts as JSON, routes, core lists.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "mk/result.h"
#include "mk/route.h"
#include "mk/skb.h"

namespace mk::tool {

/// The machine as mk sees it, one NUMA node, package and core per line, like lstopo.
std::string show_text(const Skb& skb);

/// Counts of the usable machine, every core, and every fact with its source.
nlohmann::json facts_json(const Skb& skb);

/// Every fact as an aligned table.
std::string facts_text(const Skb& skb);

/// A route as an indented tree, children in send order.
std::string route_text(const Skb& skb, const Route& route);

/// A route as JSON: kind, root, and every node with its parent and ordered sends.
nlohmann::json route_json(const Route& route);

/// "all" (every usable core) or a list such as "0-3,8,10"; errors name the bad item.
Result<std::vector<CoreId>> parse_core_list(std::string_view text, const Skb& skb);

/// JSON text for output. Names read from files (an hwloc cpukind, a path) may hold invalid
/// UTF-8, which is replaced rather than thrown on.
std::string json_text(const nlohmann::json& doc, int indent = -1);

/// "0-3,8,10" for a sorted list of cores.
std::string format_core_list(const std::vector<CoreId>& cores);

}  // namespace mk::tool
