// What every SKB fuzz target checks on a machine it managed to load: each query answers or
// returns an error, and every answer keeps its documented invariants.
#pragma once

#include <string_view>

#include "mk/skb.h"

namespace mk::fuzz {

/// Aborts, which the fuzzer reports as a crash, with `what` on stderr unless `condition`.
void require(bool condition, std::string_view what);

/// An error a loader returned for bad input: it must have a message naming `name`.
void check_error(const Error& err, std::string_view name);

/// Runs the SKB's queries on `skb` and requires their invariants; on machines of at most 64
/// usable cores also that central_core() equals its definition, computed pair by pair. Then
/// prints the machine as every mk-skb command does.
void check_queries(const Skb& skb);

}  // namespace mk::fuzz
