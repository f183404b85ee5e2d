// mk-bench rpc: the round trip of Kernel::call beside the raw urpc round trip it rides on,
// both measured here, and calls per second with many calls outstanding.
#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "bench_counter.h"
#include "core_pair.h"
#include "floors.h"
#include "mk/answer_path.h"
#include "mk/channel.h"
#include "mk/message_codec.h"
#include "mk/replicated.h"
#include "mk/system.h"
#include "mk/urpc.h"
#include "one_way.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {

/// The call measured: a small request and reply, one slot each way.
struct RpcPing {
  static constexpr MessageType kType = 100;
  struct Reply {
    std::uint64_t value;
  };
  std::uint64_t value;
};

namespace {

/// The floor of a call: one message there and one back over two urpc channels between two
/// threads pinned to the kernels' cores, carrying the same bytes the call carries (envelope
/// and payload), both sides polling. With `path` in_line the answer goes back in the
/// request's line instead (UrpcReceiver::answer), as an answer in line does.
void urpc_rtt(CoreId first, CoreId second, std::size_t rounds, std::vector<double>& samples,
              AnswerPath path = AnswerPath::channel) {
  auto there = make_urpc_channel();
  auto back = make_urpc_channel();
  if (!there || !back) {
    fmt::print(stderr, "mk-bench rpc: {}\n", (!there ? there.error() : back.error()).describe());
    return;
  }
  std::vector<std::byte> payload(kEnvelopeSize + sizeof(RpcPing), std::byte{0x5a});
  std::thread echo([&] {
    pin(static_cast<int>(second));
    auto& rx = *there->receiver;
    auto& tx = *back->sender;
    // The answer overwrites the request's bytes, so it is written from a copy, as the
    // runtime's callee copies a request out before answering it.
    std::array<std::byte, kEnvelopeSize + sizeof(RpcPing)> copy{};
    auto bounce = [&tx, &rx, &copy](const MessageView& m) {
      const auto request = m.payload.first(std::min(copy.size(), m.payload.size()));
      std::copy(request.begin(), request.end(), copy.begin());
      const auto echoed = std::span(copy).first(request.size());
      if (rx.answer(m.type, echoed, {})) return;
      while (tx.try_send(m.type, echoed) != SendStatus::ok) {
      }
    };
    for (std::size_t i = 0; i < rounds;)
      i += rx.poll_each(bounce, 1);
  });
  // On a thread of its own too: pinning the caller would shrink what later boots see.
  std::thread pinger([&] {
    pin(static_cast<int>(first));
    auto& tx = *there->sender;
    auto& rx = *back->receiver;
    auto ignore = [](const MessageView&) {};
    MessageView answer;
    for (std::size_t i = 0; i < rounds; ++i) {
      const auto t0 = Clock::now();
      if (path == AnswerPath::in_line) {
        while (tx.send_for_answer(RpcPing::kType, payload, {}) != SendStatus::ok) {
        }
        while (tx.poll_answer(answer) == UrpcSender::AnswerState::pending) {
        }
      } else {
        while (tx.try_send(RpcPing::kType, payload) != SendStatus::ok) {
        }
        while (rx.poll_each(ignore, 1) == 0) {
        }
      }
      samples.push_back(ns_between(t0, Clock::now()));
    }
  });
  pinger.join();
  echo.join();
}

/// Latency samples one kernel task returns at most: few enough to cross back from a kernel
/// process (64 KiB encoded).
constexpr std::uint64_t kSamplesPerRun = 8'000;

/// `rounds` calls from kernel `k` to kernel `to`, one at a time: their round trips in ns.
Task<std::vector<float>> ping_rounds(Kernel& k, KernelId to, std::uint64_t rounds) {
  std::vector<float> samples;
  samples.reserve(rounds);
  for (std::uint64_t i = 0; i < rounds; ++i) {
    const auto t0 = Clock::now();
    auto reply = co_await k.call(to, RpcPing{i});
    const auto t1 = Clock::now();
    if (!reply || reply->value != i + 1) {
      fmt::print(stderr, "mk-bench rpc: call {} failed\n", i);
      co_return samples;
    }
    samples.push_back(static_cast<float>(ns_between(t0, t1)));
  }
  co_return samples;
}

/// The same round trip as a Kernel::call from a task on kernel 0 to a handler on kernel `to`
/// (1: across cores; 0: kernel 0 itself, through its local channel).
void call_rtt(System& system, KernelId to, std::size_t rounds, std::vector<double>& samples) {
  for (std::size_t done = 0; done < rounds;) {
    const std::uint64_t now = std::min<std::uint64_t>(kSamplesPerRun, rounds - done);
    auto measured = system.run(
        0, [](Kernel& k, KernelId to, std::uint64_t count) { return ping_rounds(k, to, count); },
        to, now);
    if (!measured || measured->size() != now) {
      if (!measured) fmt::print(stderr, "mk-bench rpc: {}\n", measured.error().describe());
      return;
    }
    samples.insert(samples.end(), measured->begin(), measured->end());
    done += now;
  }
}

/// `calls` calls from kernel `k` to kernel 1, one at a time; counts those answered right in
/// `good` and its own end in `done`.
Task<void> call_loop(Kernel& k, std::uint64_t calls, std::size_t& good, std::size_t& done) {
  for (std::uint64_t i = 0; i < calls; ++i) {
    auto reply = co_await k.call(1, RpcPing{i});
    if (!reply || reply->value != i + 1) break;
    ++good;
  }
  ++done;
}

/// `tasks` tasks on kernel `k`, each making `calls_per_task` calls to kernel 1 one at a time:
/// the ns they took together, or -1 if a call failed.
Task<double> call_storm(Kernel& k, std::uint64_t tasks, std::uint64_t calls_per_task) {
  std::size_t done = 0;
  std::size_t good = 0;
  const auto t0 = Clock::now();
  for (std::size_t t = 1; t < tasks; ++t) {
    k.spawn([&done, &good, calls_per_task](Kernel& kernel) {
      return call_loop(kernel, calls_per_task, good, done);
    });
  }
  // The measuring task is the last of them, rather than a task that only waits: one that
  // yields until the others end would run in every turn and tax every call.
  co_await call_loop(k, calls_per_task, good, done);
  while (done < tasks)
    co_await k.yield();
  const double elapsed_ns = ns_between(t0, Clock::now());
  // A failed call would make the rate meaningless: report nothing rather than a wrong figure.
  co_return good == tasks* calls_per_task ? elapsed_ns : -1.0;
}

/// Millions of calls per second from `tasks` tasks on kernel 0, each with one call outstanding.
double million_calls_per_second(System& system, std::uint64_t tasks, std::uint64_t calls_per_task) {
  auto elapsed = system.run(
      0, [](Kernel& k, std::uint64_t t, std::uint64_t c) { return call_storm(k, t, c); }, tasks,
      calls_per_task);
  if (!elapsed || *elapsed <= 0) {
    fmt::print(stderr, "mk-bench rpc: calls failed while measuring calls per second\n");
    return 0;
  }
  return static_cast<double>(tasks * calls_per_task) / (*elapsed / 1e3);
}

/// On kernel `k`: waits until `victim` has failed, then until `k`'s replica of `watched` has
/// installed a view without it; the steady clock's reading then, in ns.
Task<std::int64_t> await_view_without(Kernel& k, Replicated<BenchCounter> watched,
                                      KernelId victim) {
  (void)co_await k.until_failed(victim);
  for (;;) {
    const auto members = watched.members(k);
    if (std::find(members.begin(), members.end(), victim) == members.end()) break;
    co_await k.yield();
  }
  co_return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

/// Kernels as processes, three of them sharing one replicated object: from the SIGKILL of one
/// to a survivor's view without it (the failure detected and the view changed), in ns; 0 if
/// something failed.
double failover_ns(Config config) {
  config.isolation = Isolation::processes;
  config.cores.push_back(config.cores.front());
  config.kernels_per_core = 2;
  config.poll_budget = std::chrono::nanoseconds::zero();
  auto booted = System::boot(config);
  if (!booted) {
    fmt::print(stderr, "mk-bench rpc: failover: {}\n", booted.error().describe());
    return 0;
  }
  System& system = **booted;
  const KernelId victim = 2;
  auto watched = Replicated<BenchCounter>::create(system, {}, {});
  auto pid = system.pid_of(victim);
  if (!watched || !pid) {
    fmt::print(stderr, "mk-bench rpc: failover: {}\n",
               (!watched ? watched.error() : pid.error()).describe());
    return 0;
  }
  mk::Result<std::int64_t> seen = error(Errc::internal, "not run");
  // The watch waits on kernel 0 while this thread kills the victim.
  std::thread watcher([&] {
    seen = system.run(
        0,
        [](Kernel& k, Replicated<BenchCounter> object, KernelId gone) {
          return await_view_without(k, std::move(object), gone);
        },
        *watched, victim);
  });
  // Long enough for the watch to be waiting (its kernel sleeps in until_failed).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto killed =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  ::kill(*pid, SIGKILL);
  watcher.join();
  if (!seen) {
    fmt::print(stderr, "mk-bench rpc: failover: {}\n", seen.error().describe());
    return 0;
  }
  return static_cast<double>(*seen - killed);
}

/// What one isolation mode measured.
struct ModeFigures {
  std::vector<double> call_ns;
  std::vector<double> self_call_ns;  ///< Kernel 0 calling itself.
  std::vector<double> rates;
  /// Where answers between the two kernels' cores travel, and why (the SKB's choice).
  AnswerPath answer_path = AnswerPath::channel;
  FactSource answer_source = FactSource::derived;
};

/// `rounds` round trips of calls from kernel 0 to kernel `to` after a tenth as many untimed,
/// added to `into`.
void timed_calls(System& system, KernelId to, std::size_t rounds, std::vector<double>& into) {
  std::vector<double> calls;
  call_rtt(system, to, rounds + rounds / 10, calls);
  if (calls.size() > rounds / 10) {
    into.insert(into.end(), calls.begin() + static_cast<long>(rounds / 10), calls.end());
  }
}

/// Makes `k` answer RpcPing: the handler of every call the suite times.
mk::Result<void> answer_pings(Kernel& k) {
  return k.handle<RpcPing>([](const RpcPing& ping) { return RpcPing::Reply{ping.value + 1}; });
}

/// Boots two kernels isolated as `isolation` says and measures a round of calls and rates.
bool measure_calls(Config config, Isolation isolation, std::size_t rounds, std::uint64_t tasks,
                   std::uint64_t calls_per_task, ModeFigures& figures) {
  config.isolation = isolation;
  config.setup = answer_pings;
  auto booted = System::boot(config);
  if (!booted) {
    fmt::print(stderr, "mk-bench rpc: {}\n", booted.error().describe());
    return false;
  }
  System& system = **booted;
  figures.answer_path = system.skb().answer_path(config.cores[0], config.cores[1]);
  figures.answer_source = system.skb().answer_path_source(config.cores[0], config.cores[1]);
  for (KernelId to : {KernelId{1}, KernelId{0}}) {
    timed_calls(system, to, rounds, to == 1 ? figures.call_ns : figures.self_call_ns);
  }
  figures.rates.push_back(million_calls_per_second(system, tasks, calls_per_task));
  return true;
}

/// Round trips of calls from kernel 0 to kernel 1, one at a time, with their answers on
/// `path` whatever the SKB would choose; the first tenth left out.
void forced_path_rtt(Config config, AnswerPath path, std::size_t rounds,
                     std::vector<double>& samples) {
  config.answer_path = path;
  config.setup = answer_pings;
  auto booted = System::boot(config);
  if (!booted) {
    fmt::print(stderr, "mk-bench rpc: {}\n", booted.error().describe());
    return;
  }
  timed_calls(**booted, 1, rounds, samples);
}

}  // namespace

void run_rpc(const Options& options, Report& report) {
  auto skb = Skb::discover();
  if (!skb) {
    fmt::print(stderr, "mk-bench rpc: {}\n", skb.error().describe());
    return;
  }
  const auto& usable = skb->usable_cores();
  Config config;
  if (usable.size() >= 2) {
    config.cores = {usable[0], usable[1]};
  } else {
    fmt::print(stderr, "mk-bench rpc: one usable core; both kernels share it\n");
    config.cores = {usable[0], usable[0]};
    config.kernels_per_core = 2;
  }
  const std::size_t repetitions = options.quick ? 3 : 7;
  const std::size_t rounds = options.quick ? 20'000 : 200'000;
  const std::uint64_t tasks = 64;
  const std::uint64_t calls_per_task = options.quick ? 2'000 : 20'000;
  const std::uint64_t stream = options.quick ? 2'000'000 : 10'000'000;
  // The pipelined calls' baseline is mk-bench channel's urpc.throughput_mps: one-slot messages.
  auto slot_payload = single_slot_payload();
  if (!slot_payload) {
    fmt::print(stderr, "mk-bench rpc: {}\n", slot_payload.error().describe());
    return;
  }

  const CorePair pair{static_cast<int>(config.cores[0]), static_cast<int>(config.cores[1])};
  const TickClock clock;
  std::vector<double> raw_ns, floor_ns, ring_floor_ns, raw_mps, failover, raw_in_line_ns;
  std::array<std::vector<double>, kAnswerPaths.size()> forced_ns;
  ModeFigures threads, processes;
  for (std::size_t r = 0; r < repetitions; ++r) {
    // The floors and the raw channel run while no kernel does, so they never share a core.
    floor_rtt(pair, clock, rounds / 10, rounds, floor_ns);
    ring_floor_rtt(pair, clock, rounds / 10, rounds, kLongRingLines, ring_floor_ns);
    std::vector<double> raw;
    urpc_rtt(config.cores[0], config.cores[1], rounds + rounds / 10, raw);
    raw_ns.insert(raw_ns.end(), raw.begin() + static_cast<long>(rounds / 10), raw.end());
    raw.clear();
    urpc_rtt(config.cores[0], config.cores[1], rounds + rounds / 10, raw, AnswerPath::in_line);
    raw_in_line_ns.insert(raw_in_line_ns.end(), raw.begin() + static_cast<long>(rounds / 10),
                          raw.end());
    // Two threads spinning on one shared core would measure the scheduler, not the channel.
    if (pair.first != pair.second) {
      raw_mps.push_back(one_way_mps(ChannelKind::urpc, *slot_payload, pair, stream, 1));
    }
    // The two modes alternate, so that noise from the rest of the machine hits both alike.
    if (!measure_calls(config, Isolation::threads, rounds, tasks, calls_per_task, threads) ||
        !measure_calls(config, Isolation::processes, rounds, tasks, calls_per_task, processes)) {
      return;
    }
    for (AnswerPath path : kAnswerPaths) {
      forced_path_rtt(config, path, rounds, forced_ns[static_cast<std::size_t>(path)]);
    }
    if (const double ns = failover_ns(config); ns > 0) failover.push_back(ns);
  }
  fmt::print("mk-bench rpc: calls between cores {} and {} are answered {} (the SKB's choice, {})\n",
             config.cores[0], config.cores[1],
             threads.answer_path == AnswerPath::in_line ? "in their request's line"
                                                        : "through the channel back",
             to_string(threads.answer_source));
  const Target rtt_target{Target::Kind::at_most, 1.15};
  // The cheaper of the two ways to move a line back and forth between these cores: one line
  // bounced, or a ring of lines each written by one side (docs/transport.md, "Two floors").
  report.add({"rpc.floor.rtt_ns", std::min(median(floor_ns), median(ring_floor_ns)), "ns",
              std::nullopt, std::nullopt});
  report.add({"rpc.urpc.rtt_ns", median(raw_ns), "ns", "rpc.floor.rtt_ns", std::nullopt});
  report.add({"rpc.urpc.rtt_p99_ns", quantile(raw_ns, 0.99), "ns", std::nullopt, std::nullopt});
  // The same exchange with the answer written into the request's line (docs/transport.md,
  // "Answers in the request's line"): what the SKB weighs when it picks the answer path.
  report.add(
      {"rpc.urpc.in_line.rtt_ns", median(raw_in_line_ns), "ns", "rpc.urpc.rtt_ns", std::nullopt});
  report.add({"rpc.rtt_ns", median(threads.call_ns), "ns", "rpc.urpc.rtt_ns", rtt_target});
  report.add({"rpc.rtt_p99_ns", quantile(threads.call_ns, 0.99), "ns", "rpc.urpc.rtt_p99_ns",
              std::nullopt});
  // Calls with each answer path forced, in the same repetitions: whether the SKB's choice
  // (rpc.rtt_ns) was the better one here.
  report.add({"rpc.answer.channel.rtt_ns",
              median(forced_ns[static_cast<std::size_t>(AnswerPath::channel)]), "ns",
              "rpc.urpc.rtt_ns", std::nullopt});
  report.add({"rpc.answer.in_line.rtt_ns",
              median(forced_ns[static_cast<std::size_t>(AnswerPath::in_line)]), "ns",
              "rpc.urpc.rtt_ns", std::nullopt});
  // What a call adds to the channel's round trip: the runtime's own cost per call.
  report.add({"rpc.overhead_ns", median(threads.call_ns) - median(raw_ns), "ns", std::nullopt,
              std::nullopt});
  // The runtime's own part of that overhead, measured apart from the interconnect: a call
  // from kernel 0 to itself moves no line between cores, so it is the call path's software
  // (both kernels' halves, one after the other, over the local channel), and the vCPUs'
  // placement barely moves it.
  report.add({"rpc.self.rtt_ns", median(threads.self_call_ns), "ns", std::nullopt, std::nullopt});
  // Calls with 64 outstanding beside the channel's one-way stream between the same cores, in
  // the same repetitions: a call moves a message each way, so 0.5 is the channel's own bound.
  if (raw_mps.empty()) {
    report.add({"rpc.calls_mps", median(threads.rates), "Mcall/s", std::nullopt, std::nullopt});
  } else {
    report.add({"rpc.urpc.throughput_mps", median(raw_mps), "Mmsg/s", std::nullopt, std::nullopt});
    report.add({"rpc.calls_mps", median(threads.rates), "Mcall/s", "rpc.urpc.throughput_mps",
                Target{Target::Kind::at_least, 0.5}});
  }
  // Kernels as processes: the same ring, other address spaces.
  report.add({"process.rpc.rtt_ns", median(processes.call_ns), "ns", "rpc.rtt_ns",
              Target{Target::Kind::at_most, 1.2}});
  report.add({"process.rpc.rtt_p99_ns", quantile(processes.call_ns, 0.99), "ns", "rpc.rtt_p99_ns",
              std::nullopt});
  report.add(
      {"process.rpc.calls_mps", median(processes.rates), "Mcall/s", "rpc.calls_mps", std::nullopt});
  if (!failover.empty()) {
    report.add({"failover.detect_ns", median(failover), "ns", "idle.wake_rtt_ns", std::nullopt});
    // Its baseline is the idle suite's; measured here when that suite does not run.
    const auto& running = options.running;
    if (std::find(running.begin(), running.end(), "idle") == running.end()) {
      add_wake_rtt(options, report);
    }
  }
}

}  // namespace mk::bench
