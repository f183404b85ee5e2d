// The Simulation's driving calls: run, run_for, run_until_idle, System::run under it, limits.
#include "mk/simulation.h"

#include <gtest/gtest.h>

#include <vector>

#include "mk/domain.h"
#include "sim_test_util.h"

namespace mk_sim_test {
namespace {

TEST(Simulation, RunsATaskOnVirtualTime) {
  auto sim = create(small_machine(2));
  ASSERT_TRUE(sim);
  handle_bump_everywhere(*sim);
  const mk::Instant before = sim->now();
  auto result = sim->run(
      0,
      [](mk::Kernel& k) -> mk::Task<std::uint64_t> {
        const mk::Instant start = k.now();
        co_await k.sleep_for(1h);  // An hour of virtual time; no real waiting.
        if (k.now() - start < 1h) co_return 0;
        auto reply = co_await k.call(1, Bump{41});
        co_return reply.ok() ? reply->value : 0;
      },
      2h);
  ASSERT_TRUE(result.ok()) << result.error().describe();
  EXPECT_EQ(*result, 42u);
  EXPECT_GE(sim->now() - before, 1h);
  EXPECT_TRUE(sim->shutdown().ok());
  EXPECT_TRUE(sim->shutdown().ok());  // Idempotent.
}

TEST(Simulation, SystemCallsThatWaitDriveTheSimulation) {
  auto sim = create(small_machine(4));
  ASSERT_TRUE(sim);
  std::vector<mk::KernelId> setup;  // The simulation runs on this thread only.
  auto each = sim->system().for_each_kernel([&setup](mk::Kernel& k) { setup.push_back(k.id()); });
  ASSERT_TRUE(each.ok()) << each.error().describe();
  EXPECT_EQ(setup, (std::vector<mk::KernelId>{0, 1, 2, 3}));
  auto domain = sim->system().create_domain("app", {1, 3});
  ASSERT_TRUE(domain.ok()) << domain.error().describe();
  auto id = sim->system().run(3, [](mk::Kernel& k) -> mk::Task<mk::KernelId> { co_return k.id(); });
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 3u);
}

TEST(Simulation, AWaitThatCanNeverEndIsTimedOutNotHung) {
  auto sim = create(small_machine(2));
  ASSERT_TRUE(sim);
  // Kernel 1's handler waits for kernel 0 to fail, which never happens, and the call has no
  // timeout: the simulation runs dry.
  auto registered = sim->system().for_each_kernel([](mk::Kernel& k) {
    (void)k.handle<Bump>(
        [](const Bump& bump, const mk::MessageContext& context) -> mk::Task<Value> {
          (void)co_await context.kernel.until_failed(context.from);
          co_return Value{bump.value};
        });
  });
  ASSERT_TRUE(registered.ok());
  auto dry = sim->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    auto reply = co_await k.call(1, Bump{1});
    co_return reply.ok();
  });
  ASSERT_FALSE(dry.ok());
  EXPECT_EQ(dry.error().code, mk::Errc::timed_out);
  EXPECT_NE(dry.error().message.find("nothing is left"), std::string::npos);
  // A task that would run past the limit stops there.
  auto late = sim->run(
      0, [](mk::Kernel& k) -> mk::Task<void> { co_await k.sleep_for(1h); }, 1s);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, mk::Errc::timed_out);
  EXPECT_NE(late.error().message.find("limit"), std::string::npos);
  EXPECT_TRUE(sim->shutdown().ok());
}

TEST(Simulation, RunForAndRunUntilIdle) {
  auto sim = create(small_machine(2));
  ASSERT_TRUE(sim);
  int ticks = 0;
  ASSERT_TRUE(sim->spawn(1,
                         [&ticks](mk::Kernel& k) -> mk::Task<void> {
                           for (int i = 0; i < 10; ++i) {
                             co_await k.sleep_for(1ms);
                             ++ticks;
                           }
                         })
                  .ok());
  const mk::Instant start = sim->now();
  ASSERT_TRUE(sim->run_for(3500us).ok());
  EXPECT_EQ(ticks, 3);
  EXPECT_EQ(sim->now() - start, 3500us);
  auto busy = sim->run_until_idle(2ms);
  ASSERT_FALSE(busy.ok());  // Ticks remain after 2 more ms.
  EXPECT_EQ(busy.error().code, mk::Errc::timed_out);
  ASSERT_TRUE(sim->run_until_idle(1s).ok());
  EXPECT_EQ(ticks, 10);
  EXPECT_FALSE(sim->run_for(-1ns).ok());
}

TEST(Simulation, TraceListsEventsWhenAsked) {
  auto options = small_machine(2);
  options.trace = true;
  auto sim = create(options);
  ASSERT_TRUE(sim);
  handle_bump_everywhere(*sim);
  auto reply = sim->run(
      0, [](mk::Kernel& k) -> mk::Task<bool> { co_return (co_await k.call(1, Bump{1})).ok(); });
  ASSERT_TRUE(reply.ok() && *reply);
  const auto& lines = sim->trace();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.size(), sim->trace_events());
  bool sent = false;
  bool received = false;
  for (const auto& line : lines) {
    sent |= line.find("k0 send to k1 type 20") != std::string::npos;
    received |= line.find("k1 receive from k0 type 20") != std::string::npos;
  }
  EXPECT_TRUE(sent);
  EXPECT_TRUE(received);
}

TEST(Simulation, StatsCountTheSimulatedWork) {
  auto sim = create(small_machine(2));
  ASSERT_TRUE(sim);
  handle_bump_everywhere(*sim);
  auto reply = sim->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    for (int i = 0; i < 5; ++i) {
      if (!(co_await k.call(1, Bump{1})).ok()) co_return false;
    }
    co_return true;
  });
  ASSERT_TRUE(reply.ok() && *reply);
  auto stats = sim->system().stats(1);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->messages_received, 5u);
  EXPECT_GE(stats->sleeps, 5u);  // It slept between requests.
}

}  // namespace
}  // namespace mk_sim_test

namespace mk_sim_test {
namespace {

TEST(Simulation, ASlowReceiverHoldsItsSenderBack) {
  auto options = small_machine(2);
  options.ring_slots = 64;
  options.costs.receive = 1us;  // The receiver is far slower than the sender.
  auto sim = create(options);
  ASSERT_TRUE(sim);
  std::vector<std::uint32_t> seen;
  auto added = sim->system().run(1, [&seen](mk::Kernel& k) -> mk::Task<bool> {
    co_return k.handle<Numbered>([&seen](const Numbered& n) { seen.push_back(n.number); }).ok();
  });
  ASSERT_TRUE(added.ok() && *added);
  constexpr std::uint32_t kMessages = 1000;
  auto elapsed = sim->run(0, [](mk::Kernel& k) -> mk::Task<std::chrono::nanoseconds> {
    const mk::Instant start = k.now();
    for (std::uint32_t i = 0; i < kMessages; ++i) {
      if (!(co_await k.send(1, Numbered{0, i})).ok()) co_return std::chrono::nanoseconds(-1);
    }
    co_return k.now() - start;
  });
  ASSERT_TRUE(elapsed.ok());
  // The sender could put only a ring's worth ahead of the receiver, which takes 1 us each.
  EXPECT_GE(*elapsed, (kMessages - 64) * 1us);
  ASSERT_TRUE(sim->run_until_idle(1s).ok());
  ASSERT_EQ(seen.size(), kMessages);
  for (std::uint32_t i = 0; i < kMessages; ++i)
    EXPECT_EQ(seen[i], i);
  EXPECT_GT(sim->system().stats(0)->sleeps, 0u);  // It slept waiting for room.
}

}  // namespace
}  // namespace mk_sim_test
