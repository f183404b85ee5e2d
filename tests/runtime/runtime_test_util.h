// Helpers shared by the runtime tests.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "mk/config.h"
#include "mk/skb.h"
#include "mk/system.h"

namespace mk::test {

/// A config for `kernels` kernels on the usable cores, sharing cores when there are fewer
/// cores than kernels (as on the 2-core build host).
inline Config config_for(std::size_t kernels) {
  auto skb = Skb::discover();
  EXPECT_TRUE(skb.ok());
  const auto& usable = skb->usable_cores();
  Config config;
  for (std::size_t i = 0; i < kernels; ++i)
    config.cores.push_back(usable[i % usable.size()]);
  config.kernels_per_core = (kernels + usable.size() - 1) / usable.size();
  return config;
}

/// Boots or fails the test.
inline std::unique_ptr<System> boot(Config config) {
  auto system = System::boot(std::move(config));
  EXPECT_TRUE(system.ok()) << (system.ok() ? "" : system.error().describe());
  return system.ok() ? std::move(*system) : nullptr;
}

/// Waits (sleeping, never spinning) until `done()` holds.
template <class F>
void wait_until(F done) {
  while (!done())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace mk::test
