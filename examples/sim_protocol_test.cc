// sim_protocol_test: your own protocol, tested in the simulator over many seeds with a crash.
//
//   $ ./sim_protocol_test [seeds] [--async-replication]
//   $ MK_SIM_SEED=17 ./sim_protocol_test            # replays seed 17 alone
//
// The protocol is a primary-backup counter written with nothing but mk's messages and tasks.
// Kernels 1, 2 and 3 each keep a copy of the counter; the primary is the lowest of them not
// known to have failed. A client on kernel 0 asks the primary to increment; the primary
// increments its copy, has every live backup store the new value, and only then acknowledges.
// When the primary dies, the next kernel takes over with the value it was sent.
//
// Each seed (default 200) runs the client's increments in a simulated 4-core machine with one
// of the replicas crashing at a random instant, plus random stalls and slow links, and checks
// the protocol's invariants: the client finishes (failover works), each acknowledged value is
// above the one before, and no acknowledged increment is lost (every surviving copy is at least
// the last value acknowledged). The first failing seed is printed with the command that
// replays it, and the program exits 1. `--async-replication` runs a broken variant, which
// acknowledges before the backups have the value: it loses acknowledged increments when the
// primary crashes, and the test catches it.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mk/kernel.h"
#include "mk/log.h"
#include "mk/result.h"
#include "mk/seed_harness.h"
#include "mk/sim_options.h"
#include "mk/simulation.h"
#include "mk/skb.h"
#include "mk/task.h"

using namespace std::chrono_literals;

namespace counter {

constexpr mk::KernelId kClient = 0;
constexpr std::array<mk::KernelId, 3> kReplicas{1, 2, 3};
/// Increments the client makes in each seed.
constexpr std::uint64_t kIncrements = 100;
/// How long a primary waits for a backup, and the client for the primary. A stalled kernel
/// makes them time out; the client then tries again.
constexpr mk::Duration kReplicateTimeout = 20us;
constexpr mk::Duration kIncrementTimeout = 60us;

/// The acknowledgement of an increment: the counter's new value.
struct Ack {
  std::uint64_t value;
};

/// Client -> primary: add one. Answered once every live backup stores the result.
struct Increment {
  static constexpr mk::MessageType kType = 1;
  using Reply = Ack;
  std::uint64_t attempt;
};

/// Primary -> backup: store `value` (or keep yours, if it is higher).
struct Replicate {
  static constexpr mk::MessageType kType = 2;
  using Reply = Ack;
  std::uint64_t value;
};

/// Client -> replica: your copy of the counter, for the checks.
struct Read {
  static constexpr mk::MessageType kType = 3;
  using Reply = Ack;
  std::uint8_t unused;
};

/// One kernel's copy of the counter.
struct Copy {
  std::uint64_t value = 0;
  bool async_replication = false;  ///< The broken variant (see the header comment).
};

/// The primary as kernel `k` sees it: the lowest replica it does not know to have failed.
mk::KernelId primary_of(mk::Kernel& k) {
  for (mk::KernelId replica : kReplicas) {
    if (!k.has_failed(replica)) return replica;
  }
  return kReplicas.back();
}

/// Sends `value` to every backup kernel `k` does not know to have failed. A backup that dies
/// meanwhile is no longer a backup (its call fails with `closed`); any other failure means one
/// live backup may not have the value, so it cannot be acknowledged.
mk::Task<mk::Result<void>> replicate(mk::Kernel& k, std::uint64_t value) {
  for (mk::KernelId backup : kReplicas) {
    if (backup == k.id() || k.has_failed(backup)) continue;
    const Replicate message{value};
    auto stored = co_await k.call(backup, message, kReplicateTimeout);
    if (!stored && !k.has_failed(backup)) co_return std::move(stored).error();
  }
  co_return mk::Result<void>();
}

/// The broken variant's background replication: a little later, and nobody waits for it.
mk::Task<void> replicate_later(mk::Kernel& k, std::uint64_t value) {
  co_await k.sleep_for(5us);
  (void)co_await replicate(k, value);
}

mk::Task<mk::Result<Ack>> on_increment(mk::Kernel& k, std::shared_ptr<Copy> copy) {
  if (primary_of(k) != k.id()) {
    co_return mk::error(mk::Errc::invalid_argument,
                        "kernel " + std::to_string(k.id()) + " is not the primary");
  }
  // Increment first, so that two increments in flight (a retry after a timeout) never give
  // the same value.
  const std::uint64_t value = ++copy->value;
  if (copy->async_replication) {
    k.spawn(replicate_later(k, value));
    co_return Ack{value};
  }
  auto replicated = co_await replicate(k, value);
  if (!replicated) co_return std::move(replicated).error();
  co_return Ack{value};
}

/// Registers the protocol's handlers on `k`, each sharing this kernel's copy of the counter.
mk::Result<void> register_protocol(mk::Kernel& k, bool async_replication) {
  auto copy = std::make_shared<Copy>();
  copy->async_replication = async_replication;
  if (auto added = k.handle<Increment>([copy](const Increment&, const mk::MessageContext& c) {
        return on_increment(c.kernel, copy);
      });
      !added) {
    return added;
  }
  if (auto added = k.handle<Replicate>([copy](const Replicate& message) {
        if (message.value > copy->value) copy->value = message.value;
        return Ack{copy->value};
      });
      !added) {
    return added;
  }
  return k.handle<Read>([copy](const Read&) { return Ack{copy->value}; });
}

/// What the client saw.
struct ClientReport {
  std::uint64_t acknowledged = 0;  ///< Increments acknowledged.
  std::uint64_t attempts = 0;      ///< Increments sent, retries included.
  std::uint64_t last = 0;          ///< The last acknowledged value.
  std::uint64_t failovers = 0;     ///< Times the client moved to a new primary.
  std::optional<std::string> violation;
  /// The surviving replicas' values at the end.
  std::vector<std::pair<mk::KernelId, std::uint64_t>> copies;
};

/// Makes `increments` acknowledged increments, retrying each (at the primary it then sees)
/// until one is acknowledged; then reads every surviving copy.
mk::Task<ClientReport> run_client(mk::Kernel& k, std::uint64_t increments) {
  ClientReport report;
  mk::KernelId primary = primary_of(k);
  while (report.acknowledged < increments) {
    if (report.attempts > 100 * increments) {
      report.violation = "no progress: " + std::to_string(report.attempts) + " attempts for " +
                         std::to_string(report.acknowledged) + " acknowledged increments";
      co_return report;
    }
    if (primary_of(k) != primary) {
      primary = primary_of(k);
      ++report.failovers;
    }
    const Increment increment{++report.attempts};
    auto ack = co_await k.call(primary, increment, kIncrementTimeout);
    if (!ack) {
      // Not the primary (yet), dead, or slow: look again shortly.
      co_await k.sleep_for(2us);
      continue;
    }
    if (ack->value <= report.last) {
      report.violation = "acknowledged " + std::to_string(ack->value) + " after " +
                         std::to_string(report.last) + ": acknowledged increments were lost";
      co_return report;
    }
    report.last = ack->value;
    ++report.acknowledged;
  }
  for (mk::KernelId replica : kReplicas) {
    if (k.has_failed(replica)) continue;
    const Read read{0};
    auto copy = co_await k.call(replica, read, kIncrementTimeout);
    if (copy) report.copies.emplace_back(replica, copy->value);
  }
  co_return report;
}

/// What the sweep saw across seeds.
struct Tally {
  std::size_t failed_over = 0;     ///< Seeds where the primary crashed and the client moved on.
  std::size_t backup_crashed = 0;  ///< Seeds where a backup crashed and the primary went on.
};

/// One seed: the faults, the workload, then every invariant, the first broken one as an error.
mk::Result<void> scenario(mk::Simulation& sim, Tally& tally) {
  // Drawn from the seed: one replica crashes (never the client), two kernels stall, two links
  // slow down, all within the next 60 us of virtual time (a run takes about 100 us), counted
  // from now: after boot, while the client runs.
  mk::RandomFaultPlan faults;
  faults.begin = sim.now() - mk::Simulation::at(0us);
  faults.end = faults.begin + 60us;
  faults.crashes = 1;
  faults.may_crash = {kReplicas.begin(), kReplicas.end()};
  faults.stalls = 2;
  faults.delays = 2;
  if (auto scheduled = sim.add_random_faults(faults); !scheduled) return scheduled;

  auto report = sim.run(kClient, [](mk::Kernel& k) { return run_client(k, kIncrements); });
  if (!report) return std::move(report).error();
  if (report->violation) return mk::error(mk::Errc::internal, *report->violation);
  if (report->copies.empty()) return mk::error(mk::Errc::internal, "no copy survived");
  for (const auto& [replica, value] : report->copies) {
    if (value < report->last) {
      return mk::error(mk::Errc::internal,
                       "kernel " + std::to_string(replica) + " holds " + std::to_string(value) +
                           " but " + std::to_string(report->last) +
                           " was acknowledged: an acknowledged increment was lost");
    }
    if (value > report->attempts) {
      return mk::error(mk::Errc::internal, "kernel " + std::to_string(replica) + " holds " +
                                               std::to_string(value) + " after only " +
                                               std::to_string(report->attempts) + " increments");
    }
  }
  if (report->failovers > 0) ++tally.failed_over;
  if (sim.crashed(kReplicas[1]) || sim.crashed(kReplicas[2])) ++tally.backup_crashed;
  return {};
}

}  // namespace counter

int main(int argc, char** argv) {
  std::size_t seeds = 200;
  bool async_replication = false;
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument == "--async-replication") {
      async_replication = true;
    } else if (argument.find_first_not_of("0123456789") == std::string::npos) {
      seeds = std::strtoull(argv[i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: sim_protocol_test [seeds] [--async-replication]\n");
      return 2;
    }
  }

  // Every injected crash would print a line ("kernel 2 declared failed"); a sweep of
  // hundreds of seeds keeps only its own report.
  mk::set_log_handler([](std::string_view) {});

  // A 4-core machine, loaded once: every seed's Simulation is made from it.
  auto machine = mk::Skb::from_synthetic("pack:1 numa:1 core:4 pu:1");
  if (!machine) {
    std::fprintf(stderr, "%s\n", machine.error().describe().c_str());
    return 1;
  }
  mk::SimulationOptions base;
  base.skb = *machine;
  base.kernels = 4;
  // Every kernel registers the protocol's handlers at boot, before it takes a message.
  base.setup = [async_replication](mk::Kernel& k) {
    return counter::register_protocol(k, async_replication);
  };

  counter::Tally tally;
  mk::SeedOptions options;
  options.seeds = seeds;
  const mk::SeedReport report = mk::run_seeds(
      options, base, [&](mk::Simulation& sim) { return counter::scenario(sim, tally); });
  if (!report.ok()) return 1;  // run_seeds printed the seed, its error and its replay.
  std::printf(
      "%s: in %zu the primary crashed and the client failed over, in %zu a backup "
      "crashed\n",
      report.describe().c_str(), tally.failed_over, tally.backup_crashed);
  // A sweep in which no primary ever crashed mid-run did not test failover.
  if (report.seeds_planned >= 50 && tally.failed_over == 0) {
    std::fprintf(stderr, "no seed crashed the primary while the client ran\n");
    return 1;
  }
  return 0;
}
