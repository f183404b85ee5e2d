// mk-bench agreement: the latency of one replicated update for each protocol and route kind,
// beside the round trip of one Kernel::call between the same kernels in the same run.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host_costs.h"
#include "layout.h"
#include "mk/replicated.h"
#include "mk/system.h"
#include "projection.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {

/// The baseline: a small call between the proposer and another kernel.
struct AgreementPing {
  static constexpr MessageType kType = 0xE010;
  struct Reply {
    std::uint64_t value;
  };
  std::uint64_t value;
};

/// The replicated object: a counter whose additions name a key, so that it also serves
/// two-phase commit (one proposer at a time never conflicts).
struct AgreementCounter {
  struct Op {
    std::uint64_t key;
    std::int64_t add;
  };
  using Result = std::int64_t;
  std::int64_t value = 0;

  Result apply(const Op& op) { return value += op.add; }
  void keys(const Op& op, std::vector<std::uint64_t>& out) const { out.push_back(op.key); }
};

namespace {

constexpr std::array<Protocol, 3> kProtocols = {Protocol::one_phase, Protocol::two_phase,
                                                Protocol::ordered};

/// Kernel counts to measure: 2, 4, 8, ... up to every usable core, and every usable core; in a
/// full run (or a sweep) on a small machine also 4 and 8 kernels sharing its cores.
std::vector<Layout> layouts(const std::vector<CoreId>& usable, bool quick) {
  std::vector<Layout> out;
  for (std::size_t n = 2; n < usable.size(); n *= 2)
    out.push_back(layout_for(usable, n));
  out.push_back(layout_for(usable, std::max<std::size_t>(usable.size(), 2)));
  if (!quick) {
    for (std::size_t n : {4, 8}) {
      if (n > usable.size()) out.push_back(layout_for(usable, n));
    }
  }
  return out;
}

/// The part of a result name that says which layout it is: empty for every usable core, one
/// kernel each (the names the README quotes).
std::string scope(const Layout& layout, std::size_t usable) {
  if (layout.shared_cores) return fmt::format("kernels_{}_on_{}_cores.", layout.kernels, usable);
  if (layout.kernels == usable) return "";
  return fmt::format("kernels_{}.", layout.kernels);
}

/// Latency samples one kernel task returns at most: few enough to cross back from a kernel
/// process (64 KiB encoded).
constexpr std::uint64_t kSamplesPerRun = 8'000;

/// `rounds` calls of AgreementPing from `k` to `to`: their round trips in ns.
Task<std::vector<float>> ping_rounds(Kernel& k, KernelId to, std::uint64_t rounds) {
  std::vector<float> samples;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    const auto t0 = k.now();
    auto reply = co_await k.call(to, AgreementPing{i});
    const auto t1 = k.now();
    if (!reply || reply->value != i) co_return samples;
    samples.push_back(static_cast<float>(ns_between(t0, t1)));
  }
  co_return samples;
}

/// `rounds` updates proposed one after another from `k`: their latencies in ns, or the first
/// error.
Task<mk::Result<std::vector<float>>> update_rounds(Kernel& k, Replicated<AgreementCounter> counter,
                                                   std::uint64_t rounds) {
  std::vector<float> samples;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    const auto t0 = k.now();
    auto applied = co_await counter.propose(k, {k.id(), 1});
    const auto t1 = k.now();
    if (!applied) co_return applied.error();
    samples.push_back(static_cast<float>(ns_between(t0, t1)));
  }
  co_return samples;
}

/// Round trips of AgreementPing from `from` to `to`, appended to `samples`.
void call_rtt(System& system, KernelId from, KernelId to, std::size_t rounds,
              std::vector<double>& samples) {
  for (std::size_t done = 0; done < rounds;) {
    const std::uint64_t now = std::min<std::uint64_t>(kSamplesPerRun, rounds - done);
    auto measured = system.run(
        from,
        [](Kernel& k, KernelId target, std::uint64_t count) {
          return ping_rounds(k, target, count);
        },
        to, now);
    if (!measured) {
      fmt::print(stderr, "mk-bench agreement: {}\n", measured.error().describe());
      return;
    }
    samples.insert(samples.end(), measured->begin(), measured->end());
    if (measured->size() != now) return;
    done += now;
  }
}

/// Latencies of `rounds` updates proposed one after another from `proposer`, appended to
/// `samples`; the first error, if any.
std::optional<Error> update_latency(System& system, const Replicated<AgreementCounter>& counter,
                                    KernelId proposer, std::size_t rounds,
                                    std::vector<double>& samples) {
  for (std::size_t done = 0; done < rounds;) {
    const std::uint64_t now = std::min<std::uint64_t>(kSamplesPerRun, rounds - done);
    auto measured = system.run(
        proposer,
        [](Kernel& k, Replicated<AgreementCounter> c, std::uint64_t count) {
          return update_rounds(k, std::move(c), count);
        },
        counter, now);
    if (!measured) return measured.error();
    if (!*measured) return measured->error();
    samples.insert(samples.end(), (*measured)->begin(), (*measured)->end());
    done += now;
  }
  return std::nullopt;
}

struct Combination {
  Protocol protocol;
  RouteKind route;
  std::optional<Replicated<AgreementCounter>> counter;
  std::vector<double> samples;
  bool failed = false;
};

void measure_layout(const Layout& layout, Isolation isolation, std::size_t usable,
                    const Options& options, Report& report) {
  Config config = layout.config;
  config.isolation = isolation;
  config.setup = [](Kernel& k) {
    return k.handle<AgreementPing>(
        [](const AgreementPing& ping) { return AgreementPing::Reply{ping.value}; });
  };
  auto booted = System::boot(config);
  if (!booted) {
    fmt::print(stderr, "mk-bench agreement: {} kernels: {}\n", layout.kernels,
               booted.error().describe());
    return;
  }
  System& system = **booted;

  // The sequencer is kernel 0 and the proposer the last kernel, so that an ordered update pays
  // the trip to the sequencer as it would from most kernels.
  const KernelId proposer = static_cast<KernelId>(layout.kernels - 1);
  std::vector<Combination> combinations;
  for (Protocol protocol : kProtocols) {
    for (RouteKind route : kRoutes) {
      Combination c{protocol, route, std::nullopt, {}, false};
      ReplicaOptions replica;
      replica.protocol = protocol;
      replica.route = route;
      replica.sequencer = 0;
      auto made = Replicated<AgreementCounter>::create(system, {}, replica);
      if (made) {
        c.counter.emplace(std::move(*made));
      } else {
        fmt::print(stderr, "mk-bench agreement: {} over {}: {}\n", to_string(protocol),
                   to_string(route), made.error().describe());
        c.failed = true;
      }
      combinations.push_back(std::move(c));
    }
  }

  // Sleeping kernels make each update cost wakeups (some 100 us on a virtual machine): far
  // fewer rounds keep the run short.
  std::size_t rounds = options.quick ? 1'000 : 10'000;
  if (layout.shared_cores) rounds /= 50;
  const std::size_t repetitions = options.quick ? 2 : 5;
  const std::size_t warmup = rounds / 10;
  std::vector<double> rtt;
  // Repetitions interleave the combinations, so that noise from the rest of the machine hits
  // all alike.
  for (std::size_t r = 0; r < repetitions; ++r) {
    std::vector<double> ignored;
    call_rtt(system, proposer, 0, warmup, ignored);
    call_rtt(system, proposer, 0, rounds, rtt);
    for (auto& c : combinations) {
      if (c.failed) continue;
      std::vector<double> warm;
      auto failure = update_latency(system, *c.counter, proposer, warmup, warm);
      if (!failure) failure = update_latency(system, *c.counter, proposer, rounds, c.samples);
      if (failure) {
        fmt::print(stderr, "mk-bench agreement: {} over {} on {} kernels: {}\n",
                   to_string(c.protocol), to_string(c.route), layout.kernels, failure->describe());
        c.failed = true;
      }
    }
  }

  // Kernels as processes: the same names under process., each beside its thread-mode figure.
  const std::string mode = isolation == Isolation::processes ? "process." : "";
  const std::string where = scope(layout, usable);
  const std::string rtt_name = fmt::format("{}agreement.rpc.{}rtt_ns", mode, where);
  const std::string rtt_p99_name = fmt::format("{}agreement.rpc.{}rtt_p99_ns", mode, where);
  report.add({rtt_name, median(rtt), "ns", std::nullopt, std::nullopt});
  report.add({rtt_p99_name, quantile(rtt, 0.99), "ns", std::nullopt, std::nullopt});
  for (auto& c : combinations) {
    if (c.failed || c.samples.empty()) continue;
    const std::string stem =
        fmt::format("agreement.{}.{}.{}", to_string(c.protocol), route_name(c.route), where);
    const std::optional<std::string> baseline =
        isolation == Isolation::processes ? std::optional(stem + "latency_ns") : rtt_name;
    report.add({mode + stem + "latency_ns", median(c.samples), "ns", baseline, std::nullopt});
    report.add({mode + stem + "latency_p99_ns", quantile(c.samples, 0.99), "ns",
                isolation == Isolation::processes ? std::optional(stem + "latency_p99_ns")
                                                  : std::optional(rtt_p99_name),
                std::nullopt});
  }
}

/// How far the projection of this machine may be from its measurement, either way.
constexpr double kSameModelTolerance = 1.5;

/// The same-model check: the simulator's cache-line model (the one a profile's projection
/// uses) on this machine, fed this machine's measured latencies and charging the kernels the
/// host CPU time their turns take, projects the one-phase update
/// that measure_layout measured with one kernel on every usable core; each projection goes
/// beside its measurement.
void project_this_machine(const Skb& skb, const Options& options, Report& report) {
  const auto& usable = skb.usable_cores();
  if (usable.size() < 2) return;
  auto host = measure_host_costs(skb, options.quick);
  if (!host) return;
  Skb machine = skb;
  // Pairs the SKB has measured keep their figures; the others take the round trip just
  // measured between the first two cores, scaled by distance.
  SimCosts costs = sim_costs_from(*host);
  costs.lines.enabled = true;
  // The runtime's own work per update (coroutines, encoding, applying) is this host's, as
  // much part of what is measured as the lines are: the kernels' turns cost what they take.
  costs.host_cpu_time = true;
  if (!machine.latency(usable[0], usable[1])) {
    const std::string facts =
        fmt::format(R"({{"latencies": [{{"between": [{}, {}], "median_ns": {:.0f}}}]}})", usable[0],
                    usable[1], host->rtt_ns);
    if (auto asserted = machine.assert_facts_json(facts, "the measured round trip"); !asserted) {
      fmt::print(stderr, "mk-bench agreement: projection: {}\n", asserted.error().describe());
      return;
    }
  }
  for (RouteKind route : kRoutes) {
    auto projected = project_point(machine, usable.size(), route, costs);
    if (!projected) {
      fmt::print(stderr, "mk-bench agreement: projection over {}: {}\n", to_string(route),
                 projected.error().describe());
      continue;
    }
    const std::string stem = fmt::format("agreement.one_phase.{}.", route_name(route));
    report.add({stem + "projected_ns", *projected, "ns", stem + "latency_ns",
                Target{Target::Kind::within, kSameModelTolerance}});
  }
}

}  // namespace

void run_agreement(const Options& options, Report& report) {
  auto skb = Skb::discover();
  if (!skb) {
    fmt::print(stderr, "mk-bench agreement: {}\n", skb.error().describe());
    return;
  }
  const auto& usable = skb->usable_cores();
  fmt::print(stderr,
             "mk-bench agreement: one update proposed at a time from the last kernel (sequencer:\n"
             "  kernel 0), latency until its proposal completes; baseline: a Kernel::call from\n"
             "  the same kernel to kernel 0. Names without kernels_N are for one kernel on every\n"
             "  usable core; kernels_N_on_C_cores shares C cores (kernels sleep instead of poll);\n"
             "  process.* are the same with every kernel a process of its own\n");
  const auto all = layouts(usable, options.quick && !options.sweep);
  for (const Layout& layout : all) {
    measure_layout(layout, Isolation::threads, usable.size(), options, report);
  }
  project_this_machine(*skb, options, report);
  // Processes on the main layout only (one kernel on every usable core): the protocols are the
  // same code; what differs is the address spaces, which more layouts would not show better.
  measure_layout(all.back().shared_cores ? all.front() : all.back(), Isolation::processes,
                 usable.size(), options, report);
}

}  // namespace mk::bench
