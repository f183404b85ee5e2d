// Faults: stalls, crashes and delayed channels, each scheduled by the test; and per-channel
// order under jitter.
#include <gtest/gtest.h>

#include <vector>

#include "mk/seed_harness.h"
#include "sim_test_util.h"
#include "test_scale.h"

namespace mk_sim_test {
namespace {

/// Kernel 0's virtual time for one call to `to` that starts at `start` or later.
mk::Result<std::chrono::nanoseconds> call_time(mk::Simulation& sim, mk::KernelId to,
                                               mk::Instant start) {
  return sim.run(0, [to, start](mk::Kernel& k) -> mk::Task<std::chrono::nanoseconds> {
    co_await k.sleep_until(start);
    const mk::Instant begun = k.now();
    auto reply = co_await k.call(to, Bump{0});
    co_return reply.ok() ? k.now() - begun : std::chrono::nanoseconds(-1);
  });
}

TEST(Faults, AStalledKernelAnswersOnlyAfterItsStall) {
  auto sim = create(small_machine(2));
  ASSERT_TRUE(sim);
  handle_bump_everywhere(*sim);
  auto normal = call_time(*sim, 1, sim->now() + 1ms);
  ASSERT_TRUE(normal.ok());
  EXPECT_LT(*normal, 100us);
  const mk::Instant stall_at = sim->now() + 1ms;
  ASSERT_TRUE(sim->stall(1, stall_at, 5ms).ok());
  auto stalled = call_time(*sim, 1, stall_at + 10us);
  ASSERT_TRUE(stalled.ok());
  EXPECT_GE(*stalled, 5ms - 10us);  // Answered once the stall ended.
  auto after = call_time(*sim, 1, sim->now() + 1ms);
  ASSERT_TRUE(after.ok());
  EXPECT_LT(*after, 100us);  // Back to normal afterwards.
}

TEST(Faults, ACrashedKernelStopsForGoodWhileOthersContinue) {
  auto options = small_machine(4);
  options.ring_slots = 64;
  auto sim = create(options);
  ASSERT_TRUE(sim);
  handle_bump_everywhere(*sim);
  std::size_t delivered = 0;
  auto each = sim->system().for_each_kernel([&delivered](mk::Kernel& k) {
    (void)k.handle<Numbered>([&delivered](const Numbered&) { ++delivered; });
  });
  ASSERT_TRUE(each.ok());
  // Bind kernel 0's channels to everyone first.
  auto warm = sim->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    bool ok = true;
    for (mk::KernelId to = 1; to < 4; ++to)
      ok &= (co_await k.send(to, Numbered{0, 0})).ok();
    co_return ok;
  });
  ASSERT_TRUE(warm.ok() && *warm);
  ASSERT_TRUE(sim->run_until_idle(1s).ok());
  ASSERT_EQ(delivered, 3u);

  ASSERT_TRUE(sim->crash(2, sim->now() + 1us).ok());
  // The simulator reports the crash when it happens: waiting for it drives the simulation.
  ASSERT_TRUE(sim->system().wait_until_failed(2, 1s).ok());
  EXPECT_TRUE(sim->crashed(2));
  EXPECT_FALSE(sim->crashed(1));
  auto calls = sim->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<mk::Errc>> {
    std::vector<mk::Errc> outcomes;
    for (mk::KernelId to = 1; to < 4; ++to) {
      auto reply = co_await k.call(to, Bump{0}, 1ms);
      outcomes.push_back(reply.ok() ? mk::Errc::internal : reply.error().code);
    }
    co_return outcomes;
  });
  ASSERT_TRUE(calls.ok());
  // internal stands for "answered" here. The crash was reported to the others at once, so
  // the call to it fails with closed rather than waiting for its deadline.
  EXPECT_EQ(*calls,
            (std::vector<mk::Errc>{mk::Errc::internal, mk::Errc::closed, mk::Errc::internal}));
  EXPECT_TRUE(sim->system().has_failed(2));
  EXPECT_FALSE(sim->system().is_online(2));

  // For good: much later, sends to it still fail at once, and nothing reaches it.
  ASSERT_TRUE(sim->run_for(1s).ok());
  auto later = sim->run(0, [](mk::Kernel& k) -> mk::Task<mk::Errc> {
    auto sent = co_await k.send(2, Numbered{0, 1});
    co_return sent.ok() ? mk::Errc::internal : sent.error().code;
  });
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(*later, mk::Errc::closed);
  EXPECT_EQ(delivered, 3u);
  auto still = call_time(*sim, 3, sim->now());  // Others still answer.
  ASSERT_TRUE(still.ok());
  EXPECT_GT(*still, 0ns);
  EXPECT_TRUE(sim->shutdown().ok());  // Shutdown with a crashed kernel.
}

TEST(Faults, AMidTurnCrashLosesTheRestOfThatTurnsMessages) {
  auto options = small_machine(6);
  auto sim = create(options);
  ASSERT_TRUE(sim);
  std::vector<mk::KernelId> got;
  auto each = sim->system().for_each_kernel([&got](mk::Kernel& k) {
    (void)k.handle<Numbered>([&got, id = k.id()](const Numbered&) { got.push_back(id); });
  });
  ASSERT_TRUE(each.ok());
  // Bind kernel 0's channels first: a first message goes through the monitors.
  auto warm = sim->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    bool ok = true;
    for (mk::KernelId to = 1; to < 6; ++to)
      ok &= (co_await k.send(to, Numbered{0, 0})).ok();
    co_return ok;
  });
  ASSERT_TRUE(warm.ok() && *warm);
  ASSERT_TRUE(sim->run_until_idle(1s).ok());
  got.clear();

  // Kernel 0 sends to 1, 2, ... 5 in one turn; it dies right after its second send.
  ASSERT_TRUE(sim->crash_mid_turn(0, sim->now(), 2).ok());
  EXPECT_FALSE(sim->crashed(0));  // Not before the turn that meets it.
  ASSERT_TRUE(sim->spawn(0,
                         [](mk::Kernel& k) -> mk::Task<void> {
                           for (mk::KernelId to = 1; to < 6; ++to)
                             (void)co_await k.send(to, Numbered{0, to});
                         })
                  .ok());
  ASSERT_TRUE(sim->system().wait_until_failed(0, 1s).ok());
  ASSERT_TRUE(sim->run_until_idle(1s).ok());
  EXPECT_TRUE(sim->crashed(0));
  EXPECT_EQ(got, (std::vector<mk::KernelId>{1, 2}));
  EXPECT_TRUE(sim->shutdown().ok());
}

TEST(Faults, ACrashHappensEvenWhenTheKernelWasWokenBeforeIt) {
  auto sim = create(small_machine(2));
  ASSERT_TRUE(sim);
  handle_bump_everywhere(*sim);
  ASSERT_TRUE(sim->crash(1, sim->now() + 100us).ok());
  // Kernel 1 is woken (and reschedules) before its crash, then sleeps with no timer at all.
  auto early = call_time(*sim, 1, sim->now() + 10us);
  ASSERT_TRUE(early.ok());
  EXPECT_GT(*early, 0ns);
  ASSERT_TRUE(sim->run_until_idle(1s).ok());
  EXPECT_TRUE(sim->crashed(1));
  EXPECT_TRUE(sim->system().has_failed(1));
}

TEST(Faults, ADelayedChannelHoldsItsMessagesInOrder) {
  auto sim = create(small_machine(2));
  ASSERT_TRUE(sim);
  std::vector<std::pair<std::uint32_t, mk::Instant>> seen;
  auto added = sim->system().run(0, [&seen](mk::Kernel& k) -> mk::Task<bool> {
    co_return k
        .handle<Numbered>([&seen, &k](const Numbered& n) { seen.emplace_back(n.number, k.now()); })
        .ok();
  });
  ASSERT_TRUE(added.ok() && *added);
  const mk::Instant start = sim->now() + 1ms;
  // Messages sent in the first 2 us of the burst are 1 ms late.
  ASSERT_TRUE(sim->delay(1, 0, start, start + 2us, 1ms).ok());
  auto sent = sim->run(1, [start](mk::Kernel& k) -> mk::Task<bool> {
    (void)co_await k.send(0, Numbered{1, 1000});  // Binds before the burst.
    co_await k.sleep_until(start);
    for (std::uint32_t i = 0; i < 100; ++i) {
      if (!(co_await k.send(0, Numbered{1, i})).ok()) co_return false;
    }
    co_return true;
  });
  ASSERT_TRUE(sent.ok() && *sent);
  ASSERT_TRUE(sim->run_until_idle(1s).ok());
  ASSERT_EQ(seen.size(), 101u);
  EXPECT_EQ(seen[0].first, 1000u);
  for (std::uint32_t i = 0; i < 100; ++i) {
    EXPECT_EQ(seen[i + 1].first, i);
    // Those behind the delayed ones wait for them too.
    EXPECT_GE(seen[i + 1].second, start + 1ms);
  }
}

TEST(Faults, EachChannelKeepsItsOrderUnderJitter) {
  mk::SimulationOptions base = small_machine(3);
  base.costs.jitter = 10us;  // Far more than the latency and the send cost.
  mk::SeedOptions seeds;
  seeds.seeds = mk::test::scaled(20);
  seeds.test_name = current_test_name();
  auto report = mk::run_seeds(seeds, base, [](mk::Simulation& sim) -> mk::Result<void> {
    std::vector<std::vector<std::uint32_t>> by_sender(3);
    auto added = sim.system().run(0, [&by_sender](mk::Kernel& k) -> mk::Task<bool> {
      co_return k
          .handle<Numbered>(
              [&by_sender](const Numbered& n) { by_sender[n.sender].push_back(n.number); })
          .ok();
    });
    if (!added.ok()) return added.error();
    for (mk::KernelId sender = 1; sender < 3; ++sender) {
      auto spawned = sim.spawn(sender, [](mk::Kernel& k) -> mk::Task<void> {
        for (std::uint32_t i = 0; i < 200; ++i)
          (void)co_await k.send(0, Numbered{k.id(), i});
      });
      if (!spawned.ok()) return spawned;
    }
    if (auto idle = sim.run_until_idle(1s); !idle.ok()) return idle;
    for (mk::KernelId sender = 1; sender < 3; ++sender) {
      if (by_sender[sender].size() != 200) {
        return mk::error(mk::Errc::internal, "lost messages from kernel " + std::to_string(sender));
      }
      for (std::uint32_t i = 0; i < 200; ++i) {
        if (by_sender[sender][i] != i) {
          return mk::error(mk::Errc::internal, "kernel " + std::to_string(sender) + ": message " +
                                                   std::to_string(i) + " out of order");
        }
      }
    }
    return {};
  });
  EXPECT_TRUE(report.ok()) << report.describe();
  // MK_SIM_SEEDS or MK_SIM_SEED (the replay command) may change how many run.
  EXPECT_EQ(report.seeds_run, report.seeds_planned);
}

TEST(Faults, RandomFaultPlansComeFromTheSeed) {
  auto run = [](std::uint64_t seed) {
    auto options = small_machine(4, seed);
    options.faults.begin = 10us;  // After the handlers are registered.
    options.faults.end = 1ms;
    options.faults.stalls = 5;
    options.faults.delays = 5;
    options.faults.crashes = 1;
    options.faults.may_crash = {3};
    auto sim = create(options);
    EXPECT_TRUE(sim);
    handle_bump_everywhere(*sim);
    // Calls to kernels 1 and 2 all through the faults' millisecond, then one to kernel 3.
    auto answers = sim->run(0, [](mk::Kernel& k) -> mk::Task<std::pair<int, mk::Errc>> {
      int answered = 0;
      int asked = 0;
      while (k.now() < mk::Simulation::at(1200us)) {
        for (mk::KernelId to = 1; to < 3; ++to) {
          ++asked;
          answered += (co_await k.call(to, Bump{0}, 200us)).ok() ? 1 : 0;
        }
      }
      auto last = co_await k.call(3, Bump{0}, 200us);
      co_return std::pair{answered - asked, last.ok() ? mk::Errc::internal : last.error().code};
    });
    EXPECT_TRUE(answers.ok());
    EXPECT_TRUE(sim->crashed(3));
    return std::pair{sim->trace_hash(),
                     answers.ok() ? *answers : std::pair{-1, mk::Errc::internal}};
  };
  const auto first = run(9);
  EXPECT_EQ(first, run(9));
  EXPECT_NE(first.first, run(10).first);
  EXPECT_EQ(first.second.first, 0);  // Stalls end and delays pass within the calls' timeouts.
  // Kernel 3 crashed in the first ms, and the others were told.
  EXPECT_EQ(first.second.second, mk::Errc::closed);
}

}  // namespace
}  // namespace mk_sim_test
