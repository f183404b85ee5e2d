// Helpers and messages shared by the simulator tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "mk/message_codec.h"
#include "mk/simulation.h"
#include "runtime/messages.h"

namespace mk_sim_test {

using namespace std::chrono_literals;
using mk_test::Numbered;

/// Path of a topology in tests/data/topologies.
inline std::string topology_file(const char* name) {
  return std::string(MK_TOPOLOGIES_DIR) + "/" + name;
}

/// The full GoogleTest name of the running test, for replay commands.
inline std::string current_test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

/// `kernels` kernels on a synthetic two-socket machine, with `seed`.
inline mk::SimulationOptions small_machine(std::size_t kernels, std::uint64_t seed = 1) {
  mk::SimulationOptions options;
  options.topology = "pack:2 numa:1 core:4 pu:1";
  options.kernels = kernels;
  options.seed = seed;
  return options;
}

/// Creates or fails the test.
inline std::unique_ptr<mk::Simulation> create(mk::SimulationOptions options) {
  auto simulation = mk::Simulation::create(std::move(options));
  EXPECT_TRUE(simulation.ok()) << (simulation.ok() ? "" : simulation.error().describe());
  return simulation.ok() ? std::move(*simulation) : nullptr;
}

struct Value {
  std::uint64_t value;
};

/// Answered with `value` plus the responder's id.
struct Bump {
  static constexpr mk::MessageType kType = 20;
  using Reply = Value;
  std::uint64_t value;
};

/// Passed around the ring of kernels `hops` times; see equivalence_test.cc.
struct Pass {
  static constexpr mk::MessageType kType = 22;
  using Reply = Value;
  std::uint64_t hops;
  std::uint64_t value;
};

/// Adds `value` to the receiver's total and answers with the new total.
struct Add {
  static constexpr mk::MessageType kType = 23;
  using Reply = Value;
  std::uint64_t value;
};

/// Registers Bump on every kernel of the simulation.
inline void handle_bump_everywhere(mk::Simulation& simulation) {
  auto done = simulation.system().for_each_kernel([](mk::Kernel& k) {
    auto added = k.handle<Bump>([id = k.id()](const Bump& b) { return Value{b.value + id}; });
    EXPECT_TRUE(added.ok());
  });
  ASSERT_TRUE(done.ok()) << done.error().describe();
}

/// The first usable core of `skb`, and the other cores nearest to and farthest from it by
/// SKB distance (the first found of each).
struct NearAndFar {
  mk::CoreId first = 0;
  mk::CoreId near = 0;
  mk::CoreId far = 0;
};
inline NearAndFar near_and_far(const mk::Skb& skb) {
  const auto& cores = skb.usable_cores();
  NearAndFar found{cores[0], cores[1], cores[1]};
  for (mk::CoreId core : cores) {
    if (core == found.first) continue;
    if (*skb.distance(found.first, core) < *skb.distance(found.first, found.near)) {
      found.near = core;
    }
    if (*skb.distance(found.first, core) > *skb.distance(found.first, found.far)) found.far = core;
  }
  return found;
}

}  // namespace mk_sim_test
