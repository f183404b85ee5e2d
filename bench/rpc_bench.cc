// mk-bench rpc: the round trip of Kernel::call beside the raw urpc round trip it rides on,
// both measured here, and calls per second with many calls outstanding.
#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "mk/channel.h"
#include "mk/message_codec.h"
#include "mk/system.h"
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

void pin(CoreId core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/// The floor of a call: one message there and one back over two urpc channels between two
/// threads pinned to the kernels' cores, carrying the same bytes the call carries (envelope
/// and payload), both sides polling.
void urpc_rtt(CoreId first, CoreId second, std::size_t rounds, std::vector<double>& samples) {
  auto there = make_channel(ChannelKind::urpc);
  auto back = make_channel(ChannelKind::urpc);
  if (!there || !back) {
    fmt::print(stderr, "mk-bench rpc: {}\n", (!there ? there.error() : back.error()).describe());
    return;
  }
  std::vector<std::byte> payload(kEnvelopeSize + sizeof(RpcPing), std::byte{0x5a});
  std::thread echo([&] {
    pin(second);
    auto& rx = *there->receiver;
    auto& tx = *back->sender;
    auto bounce = [&tx](const MessageView& m) {
      while (tx.try_send(m.type, m.payload) != SendStatus::ok) {
      }
    };
    for (std::size_t i = 0; i < rounds;)
      i += rx.poll(bounce, 1);
  });
  // On a thread of its own too: pinning the caller would shrink what later boots see.
  std::thread pinger([&] {
    pin(first);
    auto& tx = *there->sender;
    auto& rx = *back->receiver;
    auto ignore = [](const MessageView&) {};
    for (std::size_t i = 0; i < rounds; ++i) {
      const auto t0 = Clock::now();
      while (tx.try_send(RpcPing::kType, payload) != SendStatus::ok) {
      }
      while (rx.poll(ignore, 1) == 0) {
      }
      samples.push_back(ns_between(t0, Clock::now()));
    }
  });
  pinger.join();
  echo.join();
}

/// The same round trip as a Kernel::call from a task on one kernel to a handler on another.
void call_rtt(System& system, std::size_t rounds, std::vector<double>& samples) {
  auto measured = system.run(0, [rounds, &samples](Kernel& k) -> Task<void> {
    for (std::size_t i = 0; i < rounds; ++i) {
      const auto t0 = Clock::now();
      auto reply = co_await k.call(1, RpcPing{i});
      const auto t1 = Clock::now();
      if (!reply || reply->value != i + 1) {
        fmt::print(stderr, "mk-bench rpc: call {} failed\n", i);
        co_return;
      }
      samples.push_back(ns_between(t0, t1));
    }
  });
  if (!measured) fmt::print(stderr, "mk-bench rpc: {}\n", measured.error().describe());
}

/// Calls per second from `tasks` tasks on kernel 0, each with one call outstanding.
double calls_per_second(System& system, std::size_t tasks, std::size_t calls_per_task) {
  auto elapsed = system.run(0, [tasks, calls_per_task](Kernel& k) -> Task<double> {
    std::size_t done = 0;
    std::size_t good = 0;
    const auto t0 = Clock::now();
    for (std::size_t t = 0; t < tasks; ++t) {
      k.spawn([&done, &good, calls_per_task](Kernel& kernel) -> Task<void> {
        for (std::size_t i = 0; i < calls_per_task; ++i) {
          auto reply = co_await kernel.call(1, RpcPing{i});
          if (!reply || reply->value != i + 1) break;
          ++good;
        }
        ++done;
      });
    }
    while (done < tasks)
      co_await k.yield();
    const double elapsed_ns = ns_between(t0, Clock::now());
    // A failed call would make the rate meaningless: report nothing rather than a wrong figure.
    co_return good == tasks* calls_per_task ? elapsed_ns : -1.0;
  });
  if (!elapsed || *elapsed <= 0) {
    fmt::print(stderr, "mk-bench rpc: calls failed while measuring calls per second\n");
    return 0;
  }
  return static_cast<double>(tasks * calls_per_task) / (*elapsed / 1e9);
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
  const std::size_t tasks = 64;
  const std::size_t calls_per_task = options.quick ? 2'000 : 20'000;

  std::vector<double> raw_ns, call_ns, rates;
  for (std::size_t r = 0; r < repetitions; ++r) {
    // The raw channel runs while no kernel does, so the two never share a core.
    std::vector<double> raw;
    urpc_rtt(config.cores[0], config.cores[1], rounds + rounds / 10, raw);
    raw_ns.insert(raw_ns.end(), raw.begin() + static_cast<long>(rounds / 10), raw.end());

    auto booted = System::boot(config);
    if (!booted) {
      fmt::print(stderr, "mk-bench rpc: {}\n", booted.error().describe());
      return;
    }
    System& system = **booted;
    auto handlers = system.for_each_kernel([](Kernel& k) {
      (void)k.handle<RpcPing>([](const RpcPing& ping) { return RpcPing::Reply{ping.value + 1}; });
    });
    if (!handlers) return;
    std::vector<double> calls;
    call_rtt(system, rounds + rounds / 10, calls);
    if (calls.size() > rounds / 10) {
      call_ns.insert(call_ns.end(), calls.begin() + static_cast<long>(rounds / 10), calls.end());
    }
    rates.push_back(calls_per_second(system, tasks, calls_per_task));
  }
  const Target rtt_target{Target::Kind::at_most, 1.3};
  report.add({"rpc.urpc.rtt_ns", median(raw_ns), "ns", std::nullopt, std::nullopt});
  report.add({"rpc.urpc.rtt_p99_ns", quantile(raw_ns, 0.99), "ns", std::nullopt, std::nullopt});
  report.add({"rpc.rtt_ns", median(call_ns), "ns", "rpc.urpc.rtt_ns", rtt_target});
  report.add(
      {"rpc.rtt_p99_ns", quantile(call_ns, 0.99), "ns", "rpc.urpc.rtt_p99_ns", std::nullopt});
  report.add({"rpc.calls_per_s", median(rates), "call/s", std::nullopt, std::nullopt});
}

}  // namespace mk::bench
