// How much work a test does: full in optimised builds, less under sanitizers.
#pragma once

#include <cstddef>

namespace mk::test {

#if defined(MK_SANITIZED)
/// Sanitized builds run 5-15x slower; they check the same behaviour on fewer iterations.
inline constexpr std::size_t kScale = 1;
#else
/// Optimised builds run the full counts.
inline constexpr std::size_t kScale = 10;
#endif

/// `full` iterations in optimised builds, a tenth under sanitizers.
constexpr std::size_t scaled(std::size_t full) {
  return full * kScale / 10;
}

}  // namespace mk::test
