// Bad simulation options and fault requests are errors naming the field.
#include <gtest/gtest.h>

#include <string>

#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

/// The error `options` give, or a failed test.
mk::Error failure_of(mk::SimulationOptions options) {
  auto sim = mk::Simulation::create(std::move(options));
  EXPECT_FALSE(sim.ok());
  return sim.ok() ? mk::Error{mk::Errc::internal, "created"} : sim.error();
}

void expect_field(const mk::Error& failure, mk::Errc code, const std::string& field) {
  EXPECT_EQ(failure.code, code) << failure.describe();
  EXPECT_NE(failure.message.find(field), std::string::npos) << failure.describe();
}

TEST(SimulationOptions, BadOptionsNameTheirField) {
  auto options = small_machine(2);
  options.topology = topology_file("no-such-machine.xml");
  EXPECT_NE(failure_of(options).message.find("topology"), std::string::npos);
  options.topology = "pack:banana";
  EXPECT_NE(failure_of(options).message.find("topology"), std::string::npos);

  expect_field(failure_of(small_machine(0)), mk::Errc::invalid_argument, "kernels");

  options = small_machine(2);
  options.costs.send = -1ns;
  expect_field(failure_of(options), mk::Errc::invalid_argument, "costs.send");
  options = small_machine(2);
  options.costs.jitter = -5ns;
  expect_field(failure_of(options), mk::Errc::invalid_argument, "costs.jitter");
  options = small_machine(2);
  options.costs.turn = 0ns;
  expect_field(failure_of(options), mk::Errc::invalid_argument, "costs.turn");
  options = small_machine(2);
  options.run_limit = 0ns;
  expect_field(failure_of(options), mk::Errc::invalid_argument, "run_limit");
  options = small_machine(2);
  options.ring_slots = 100;
  expect_field(failure_of(options), mk::Errc::invalid_argument, "ring_slots");
  options = small_machine(2);
  options.poll_batch = 0;
  expect_field(failure_of(options), mk::Errc::invalid_argument, "poll_batch");

  options = small_machine(0);
  options.cores = {0, 99};  // The machine has 8 cores.
  expect_field(failure_of(options), mk::Errc::invalid_argument, "cores[1]");
  options.cores = {0, 1};
  options.kernels = 3;
  expect_field(failure_of(options), mk::Errc::invalid_argument, "kernels");

  options = small_machine(2);
  options.faults.end = 1ms;
  options.faults.crashes = 1;
  expect_field(failure_of(options), mk::Errc::invalid_argument, "faults.crashes");
  options.faults.may_crash = {5};
  expect_field(failure_of(options), mk::Errc::not_found, "faults.may_crash[0]");
  options = small_machine(2);
  options.faults.stalls = 1;
  expect_field(failure_of(options), mk::Errc::invalid_argument, "faults.end");
}

TEST(SimulationOptions, KernelsMayOutnumberCores) {
  auto options = small_machine(16);  // Two per core of the 8-core machine.
  auto sim = create(options);
  ASSERT_TRUE(sim);
  EXPECT_EQ(sim->system().size(), 16u);
  EXPECT_EQ(*sim->system().core_of(8), *sim->system().core_of(0));
}

TEST(SimulationOptions, BadFaultRequestsAreErrors) {
  auto sim = create(small_machine(2));
  ASSERT_TRUE(sim);
  ASSERT_TRUE(sim->run_for(1ms).ok());
  expect_field(sim->stall(5, sim->now(), 1us).error(), mk::Errc::not_found, "stall kernel");
  expect_field(sim->stall(0, mk::Simulation::at(0ns), 1us).error(), mk::Errc::invalid_argument,
               "stall at");
  expect_field(sim->stall(0, sim->now(), 0ns).error(), mk::Errc::invalid_argument,
               "stall duration");
  expect_field(sim->crash(2, sim->now()).error(), mk::Errc::not_found, "crash kernel");
  expect_field(sim->delay(0, 1, sim->now(), sim->now(), 1us).error(), mk::Errc::invalid_argument,
               "delay end");
  expect_field(sim->delay(0, 1, sim->now(), sim->now() + 1us, -1us).error(),
               mk::Errc::invalid_argument, "delay extra");
  EXPECT_EQ(sim->one_way_latency(0, 9).error().code, mk::Errc::not_found);
}

}  // namespace
}  // namespace mk_sim_test
