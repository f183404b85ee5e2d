// mk-bench idle: what an idle system costs, and how fast a sleeping kernel wakes, beside a
// futex round trip between two threads on the same cores.
#include <fmt/format.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "mk/system.h"
#include "mk/wake_probe.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {

/// The message that wakes the sleeping kernel.
struct WakePing {
  static constexpr MessageType kType = 101;
  struct Reply {
    std::uint64_t value;
  };
  std::uint64_t value;
};

namespace {

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

void pin(CoreId core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

long futex(std::atomic<std::uint32_t>& word, int op, std::uint32_t value) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, value, nullptr, nullptr,
                 0);
}

/// Blocks until `word` holds `value`, sleeping in the futex; never spins.
void futex_wait_for(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  for (std::uint32_t seen = word.load(); seen != value; seen = word.load()) {
    futex(word, FUTEX_WAIT_PRIVATE, seen);
  }
}

/// Two threads on the kernels' cores hand a turn back and forth through one futex word, each
/// sleeping while it waits: two wakeups per round trip, as in a call between sleeping kernels.
void futex_rtt(CoreId first, CoreId second, std::size_t rounds, std::vector<double>& samples) {
  std::atomic<std::uint32_t> turn{0};
  std::thread peer([&] {
    pin(second);
    for (std::size_t i = 0; i < rounds; ++i) {
      futex_wait_for(turn, 1);
      turn.store(0);
      futex(turn, FUTEX_WAKE_PRIVATE, 1);
    }
  });
  // On a thread of its own too: pinning the caller would shrink what later boots see.
  std::thread pinger([&] {
    pin(first);
    for (std::size_t i = 0; i < rounds; ++i) {
      const auto t0 = Clock::now();
      turn.store(1);
      futex(turn, FUTEX_WAKE_PRIVATE, 1);
      futex_wait_for(turn, 0);
      samples.push_back(ns_between(t0, Clock::now()));
    }
  });
  pinger.join();
  peer.join();
}

/// Thread A wakes thread B, asleep in a futex, and spins until B answers; A then pauses so
/// that B is asleep again for the next round. One sleeping party per round trip, as in a call
/// to a sleeping kernel from a kernel that is still polling.
void futex_wake_rtt(CoreId first, CoreId second, std::size_t rounds, Clock::duration pause,
                    std::vector<double>& samples) {
  std::atomic<std::uint32_t> turn{0};
  std::thread peer([&] {
    pin(second);
    for (std::size_t i = 0; i < rounds; ++i) {
      futex_wait_for(turn, 1);
      turn.store(2);
    }
  });
  std::thread pinger([&] {
    pin(first);
    for (std::size_t i = 0; i < rounds; ++i) {
      std::this_thread::sleep_for(pause);
      const auto t0 = Clock::now();
      turn.store(1);
      futex(turn, FUTEX_WAKE_PRIVATE, 1);
      while (turn.load() != 2) {
      }
      samples.push_back(ns_between(t0, Clock::now()));
      turn.store(0);
    }
  });
  pinger.join();
  peer.join();
}

Config two_kernels(const Skb& skb) {
  const auto& usable = skb.usable_cores();
  Config config;
  if (usable.size() >= 2) {
    config.cores = {usable[0], usable[1]};
  } else {
    config.cores = {usable[0], usable[0]};
    config.kernels_per_core = 2;
  }
  return config;
}

/// The largest share of one CPU either kernel of an idle system used over `window`.
double idle_cpu_fraction(const Config& config, std::chrono::milliseconds window) {
  auto booted = System::boot(config);
  if (!booted) {
    fmt::print(stderr, "mk-bench idle: {}\n", booted.error().describe());
    return -1;
  }
  System& system = **booted;
  // Past the poll budget before measuring.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto cpu_now = [](Kernel&) -> Task<double> { co_return thread_cpu_ns(); };
  std::vector<double> cpu0;
  for (KernelId k = 0; k < system.size(); ++k)
    cpu0.push_back(system.run(k, cpu_now).value());
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(window);
  double worst = 0;
  for (KernelId k = 0; k < system.size(); ++k) {
    const double used = system.run(k, cpu_now).value() - cpu0[k];
    worst = std::max(worst, used / ns_between(t0, Clock::now()));
  }
  return worst;
}

/// Registers the echo handler on every kernel of `system`.
bool add_echo(System& system) {
  return system
      .for_each_kernel([](Kernel& k) {
        (void)k.handle<WakePing>([](const WakePing& ping) { return WakePing::Reply{ping.value}; });
      })
      .ok();
}

/// Calls from kernel 0 to kernel 1 while kernel 1 sleeps: kernel 0 pauses longer than the
/// poll budget between calls, and polls (within its budget) for the reply. Returns how many
/// times kernel 1 slept, to check that it really was asleep for each call.
std::uint64_t call_sleeping_rtt(Config config, std::size_t rounds, Clock::duration pause,
                                std::vector<double>& samples) {
  auto booted = System::boot(config);
  if (!booted || !add_echo(**booted)) {
    fmt::print(stderr, "mk-bench idle: boot failed\n");
    return 0;
  }
  System& system = **booted;
  auto measured = system.run(0, [rounds, pause, &samples](Kernel& k) -> Task<void> {
    for (std::size_t i = 0; i < rounds; ++i) {
      co_await k.sleep_for(pause);
      const auto t0 = Clock::now();
      auto reply = co_await k.call(1, WakePing{i});
      const auto t1 = Clock::now();
      if (!reply) co_return;
      samples.push_back(ns_between(t0, t1));
    }
  });
  if (!measured) fmt::print(stderr, "mk-bench idle: {}\n", measured.error().describe());
  return system.stats(1)->sleeps;
}

/// Round trips of back-to-back calls between two kernels that sleep as soon as they are idle
/// (poll budget 0): both sleep and pay the sleep barrier in every round trip.
void call_both_asleep_rtt(Config config, std::size_t rounds, std::vector<double>& samples) {
  config.poll_budget = std::chrono::nanoseconds::zero();
  auto booted = System::boot(config);
  if (!booted || !add_echo(**booted)) {
    fmt::print(stderr, "mk-bench idle: boot failed\n");
    return;
  }
  auto measured = (*booted)->run(0, [rounds, &samples](Kernel& k) -> Task<void> {
    for (std::size_t i = 0; i < rounds; ++i) {
      const auto t0 = Clock::now();
      auto reply = co_await k.call(1, WakePing{i});
      const auto t1 = Clock::now();
      if (!reply) co_return;
      samples.push_back(ns_between(t0, t1));
    }
  });
  if (!measured) fmt::print(stderr, "mk-bench idle: {}\n", measured.error().describe());
}

/// Each wake mechanism's cost measured now (the SKB's probe: notification to the sleeper
/// running), and the mechanism a System boots with here, with the cost the SKB holds for it.
void add_wake_costs(const Options& options, const Skb& skb, const Config& config, Report& report) {
  WakeProbeOptions probe;
  probe.wakes = options.quick ? 200 : 1000;
  auto costs = measure_wake_costs(skb, probe);
  if (!costs) {
    fmt::print(stderr, "mk-bench idle: {}\n", costs.error().describe());
    return;
  }
  for (const WakeCost& cost : *costs) {
    report.add({fmt::format("idle.wake.{}_ns", to_string(cost.mechanism)),
                static_cast<double>(cost.median.count()), "ns", std::nullopt, std::nullopt});
  }
  auto booted = System::boot(config);
  if (!booted) {
    fmt::print(stderr, "mk-bench idle: {}\n", booted.error().describe());
    return;
  }
  const WakeMechanism chosen = (*booted)->wake_mechanism();
  fmt::print("mk-bench idle: kernels wake by {} (the SKB's choice; poll budget {} ns)\n",
             to_string(chosen), (*booted)->poll_budget().count());
  auto held = (*booted)->skb().wake_cost(chosen);
  report.add({"idle.wake.chosen_ns", held ? static_cast<double>(held->median.count()) : -1.0, "ns",
              std::nullopt, std::nullopt});
  report.add({"idle.wake.chosen_index", static_cast<double>(static_cast<int>(chosen)),
              "0=eventfd,1=futex,2=msg_ring", std::nullopt, std::nullopt});
}

}  // namespace

void add_wake_rtt(const Options& options, Report& report) {
  auto skb = Skb::discover();
  if (!skb) {
    fmt::print(stderr, "mk-bench idle: {}\n", skb.error().describe());
    return;
  }
  const Config config = two_kernels(*skb);
  const std::size_t repetitions = options.quick ? 2 : 5;
  const std::size_t rounds = options.quick ? 1'000 : 5'000;
  // For the sleeping-callee round trip the caller must outpoll the reply: a budget well above
  // a wakeup, and pauses well above the budget so that the callee is asleep at every call.
  Config polling = config;
  if (config.kernels_per_core == 1) polling.poll_budget = std::chrono::microseconds(200);
  const auto pause = std::chrono::microseconds(600);
  std::vector<double> futex_ns, wake_ns;
  std::uint64_t callee_sleeps = 0;
  for (std::size_t r = 0; r < repetitions; ++r) {
    std::vector<double> futex_samples, wake_samples;
    futex_wake_rtt(config.cores[0], config.cores[1], rounds, pause, futex_samples);
    callee_sleeps += call_sleeping_rtt(polling, rounds, pause, wake_samples);
    futex_ns.insert(futex_ns.end(), futex_samples.begin(), futex_samples.end());
    wake_ns.insert(wake_ns.end(), wake_samples.begin(), wake_samples.end());
  }
  if (callee_sleeps < repetitions * rounds) {
    fmt::print(stderr,
               "mk-bench idle: the callee slept {} times in {} calls; some calls found it awake\n",
               callee_sleeps, repetitions * rounds);
  }
  report.add({"futex.rtt_ns", median(futex_ns), "ns", std::nullopt, std::nullopt});
  report.add({"idle.wake_rtt_ns", median(wake_ns), "ns", "futex.rtt_ns",
              Target{Target::Kind::at_most, 1.2}});
  report.add({"futex.rtt_p99_ns", quantile(futex_ns, 0.99), "ns", std::nullopt, std::nullopt});
  report.add(
      {"idle.wake_rtt_p99_ns", quantile(wake_ns, 0.99), "ns", "futex.rtt_p99_ns", std::nullopt});
}

void run_idle(const Options& options, Report& report) {
  auto skb = Skb::discover();
  if (!skb) {
    fmt::print(stderr, "mk-bench idle: {}\n", skb.error().describe());
    return;
  }
  const Config config = two_kernels(*skb);
  const auto window = std::chrono::milliseconds(options.quick ? 1000 : 3000);
  const std::size_t repetitions = options.quick ? 2 : 5;
  const std::size_t rounds = options.quick ? 1'000 : 5'000;

  report.add({"idle.one_cpu", 1.0, "fraction", std::nullopt, std::nullopt});
  report.add({"idle.cpu_fraction", idle_cpu_fraction(config, window), "fraction", "idle.one_cpu",
              Target{Target::Kind::at_most, 0.01}});
  add_wake_costs(options, *skb, config, report);
  add_wake_rtt(options, report);
  std::vector<double> futex_both_ns, wake_both_ns;
  for (std::size_t r = 0; r < repetitions; ++r) {
    std::vector<double> futex_both, wake_both;
    futex_rtt(config.cores[0], config.cores[1], rounds, futex_both);
    call_both_asleep_rtt(config, rounds, wake_both);
    futex_both_ns.insert(futex_both_ns.end(), futex_both.begin(), futex_both.end());
    wake_both_ns.insert(wake_both_ns.end(), wake_both.begin(), wake_both.end());
  }
  report.add({"futex.both_asleep.rtt_ns", median(futex_both_ns), "ns", std::nullopt, std::nullopt});
  report.add({"idle.both_asleep.rtt_ns", median(wake_both_ns), "ns", "futex.both_asleep.rtt_ns",
              std::nullopt});
}

}  // namespace mk::bench
