// How a suite places its kernels on this machine's usable cores: one per core when there are
// enough, otherwise sharing them (shared by `agreement` and `caps`).
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "mk/config.h"
#include "mk/core_id.h"

namespace mk::bench {

/// A System of `kernels` kernels: on distinct cores when the machine has enough, otherwise
/// `kernels` kernels sharing the usable cores round-robin (they then never poll).
struct Layout {
  std::size_t kernels = 0;    ///< Kernels booted.
  bool shared_cores = false;  ///< True when kernels outnumber the usable cores.
  Config config;              ///< Cores, kernels per core and poll budget to boot with.
};

/// The layout of `kernels` kernels on `usable` (not empty).
inline Layout layout_for(const std::vector<CoreId>& usable, std::size_t kernels) {
  Layout layout;
  layout.kernels = kernels;
  layout.shared_cores = kernels > usable.size();
  for (std::size_t i = 0; i < kernels; ++i)
    layout.config.cores.push_back(usable[i % usable.size()]);
  if (layout.shared_cores) {
    layout.config.kernels_per_core = (kernels + usable.size() - 1) / usable.size();
    layout.config.poll_budget = std::chrono::nanoseconds::zero();
  }
  return layout;
}

}  // namespace mk::bench
