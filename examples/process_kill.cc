// process_kill: kernels as processes, one killed with SIGKILL; the others go on without it.
//
//   $ ./process_kill [kernels]
//
// Boots `kernels` kernels (default 4, at least 3) with Config::isolation = Isolation::processes:
// each kernel is a process of its own, forked from this program, sharing only its channels'
// memory with its peers. They keep a replicated tally (mk::Replicated, ordered broadcast) and
// answer Ping. The last kernel is proposing updates when the program kills its process
// (SIGKILL). Then:
//   - System::wait_until_failed reports the kernel failed, and has_failed says so;
//   - every survivor's call to it fails with `closed`;
//   - the survivors install a view of the tally without it, a proposal on each completes, and
//     all hold the same total, which keeps every update the dead kernel had got committed;
//   - System::run on the dead kernel fails.
// The program checks each of these and exits 1 if one does not hold.
//
// What crosses into a kernel process is named, not carried: handlers are registered in
// Config::setup (run in each kernel process), and System::run takes a callable that captures
// nothing plus arguments that have a mk::Codec (here the tally's handle and numbers). Boot
// forks, so this program runs no other thread while it boots.
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "mk/config.h"
#include "mk/kernel.h"
#include "mk/replicated.h"
#include "mk/system.h"
#include "mk/task.h"

using namespace std::chrono_literals;

namespace demo {

/// The replicated state machine: a running total. Trivially copyable, so it and its Op have
/// mk's byte-for-byte Codec.
struct Tally {
  struct Op {
    std::int64_t add;
  };
  using Result = std::int64_t;
  std::int64_t total = 0;
  Result apply(const Op& op) { return total += op.add; }
};

struct Pong {
  mk::KernelId from;
};

/// Answered by every kernel with its id.
struct Ping {
  static constexpr mk::MessageType kType = 1;
  using Reply = Pong;
  std::uint32_t unused;
};

/// What a survivor saw after the kill; trivially copyable, so it crosses back from the kernel
/// process as it is.
struct Survivor {
  mk::Errc call_error = mk::Errc::internal;  ///< How its call to the dead kernel failed.
  bool call_failed = false;
  std::uint64_t members = 0;  ///< The tally's members it knows, one bit per kernel id.
  bool proposed = false;      ///< Its proposal after the kill completed.
  std::int64_t total = 0;     ///< Its replica's total after its proposal.
};

/// The updates the victim proposes until it dies: one every half millisecond.
constexpr std::int64_t kVictimAdd = 1;
/// What each kernel adds before the kill, and each survivor after it.
constexpr std::int64_t kBeforeAdd = 10;
constexpr std::int64_t kAfterAdd = 100;

std::uint64_t member_bits(const std::vector<mk::KernelId>& members) {
  std::uint64_t bits = 0;
  for (mk::KernelId id : members)
    bits |= std::uint64_t{1} << id;
  return bits;
}

std::string list(std::uint64_t bits) {
  std::string text;
  for (mk::KernelId id = 0; id < 64; ++id) {
    if ((bits & (std::uint64_t{1} << id)) == 0) continue;
    if (!text.empty()) text += ' ';
    text += std::to_string(id);
  }
  return text;
}

int run(std::size_t kernels) {
  mk::Config config;
  auto skb = mk::Skb::discover();
  if (!skb) {
    std::fprintf(stderr, "%s\n", skb.error().describe().c_str());
    return 1;
  }
  const auto& usable = skb->usable_cores();
  for (std::size_t i = 0; i < kernels; ++i)
    config.cores.push_back(usable[i % usable.size()]);
  config.kernels_per_core = (kernels + usable.size() - 1) / usable.size();
  config.isolation = mk::Isolation::processes;
  config.setup = [](mk::Kernel& k) {
    return k.handle<Ping>(
        [](const Ping&, const mk::MessageContext& c) { return Pong{c.kernel.id()}; });
  };
  auto booted = mk::System::boot(config);
  if (!booted) {
    std::fprintf(stderr, "boot: %s\n", booted.error().describe().c_str());
    return 1;
  }
  mk::System& system = **booted;
  const auto victim = static_cast<mk::KernelId>(kernels - 1);
  std::printf("%zu kernels, each a process (pids", kernels);
  for (mk::KernelId id = 0; id < kernels; ++id)
    std::printf(" %d", system.pid_of(id).ok() ? *system.pid_of(id) : -1);
  std::printf(") on %zu cores\n", usable.size());

  mk::ReplicaOptions options;
  options.protocol = mk::Protocol::ordered;
  options.timeout = 2s;
  auto made = mk::Replicated<Tally>::create(system, Tally{}, options);
  if (!made) {
    std::fprintf(stderr, "create: %s\n", made.error().describe().c_str());
    return 1;
  }
  const mk::Replicated<Tally> tally = *made;

  // Every kernel adds kBeforeAdd; the handle crosses into each kernel process as an argument.
  for (mk::KernelId id = 0; id < kernels; ++id) {
    auto added = system.run(
        id,
        [](mk::Kernel& k, mk::Replicated<Tally> r, std::int64_t add) -> mk::Task<bool> {
          co_return (co_await r.propose(k, Tally::Op{add})).ok();
        },
        tally, kBeforeAdd);
    if (!added || !*added) {
      std::fprintf(stderr, "a proposal on kernel %u failed\n", id);
      return 1;
    }
  }
  // The victim proposes until it dies; spawn returns at once.
  auto spawned = system.spawn(
      victim,
      [](mk::Kernel& k, mk::Replicated<Tally> r) -> mk::Task<void> {
        for (;;) {
          (void)co_await r.propose(k, Tally::Op{kVictimAdd});
          co_await k.sleep_for(500us);
        }
      },
      tally);
  auto answered = system.run(
      0,
      [](mk::Kernel& k, mk::KernelId to) -> mk::Task<bool> {
        const Ping ping{0};
        auto pong = co_await k.call(to, ping);
        co_return pong.ok() && pong->from == to;
      },
      victim);
  if (!spawned || !answered || !*answered) {
    std::fprintf(stderr, "kernel %u does not work before the kill\n", victim);
    return 1;
  }
  std::printf("kernel %u answers Ping and is proposing updates\n", victim);
  std::this_thread::sleep_for(20ms);

  const auto victim_pid = system.pid_of(victim);
  const int pid = victim_pid.ok() ? *victim_pid : -1;
  if (pid <= 0 || ::kill(pid, SIGKILL) != 0) {
    std::fprintf(stderr, "could not kill kernel %u (pid %d)\n", victim, pid);
    return 1;
  }
  std::printf("SIGKILL to kernel %u (pid %d)\n", victim, pid);
  auto failed = system.wait_until_failed(victim, 10s);
  std::printf("System::wait_until_failed(%u): %s; has_failed: %s\n", victim,
              failed ? "ok" : failed.error().describe().c_str(),
              system.has_failed(victim) ? "true" : "false");
  bool ok = failed.ok() && system.has_failed(victim);

  // Each survivor: learns of the death, calls the dead kernel, waits for the tally's view
  // without it, and proposes.
  std::vector<std::int64_t> totals;
  for (mk::KernelId id = 0; id < victim; ++id) {
    auto seen = system.run(
        id,
        [](mk::Kernel& k, mk::Replicated<Tally> r, mk::KernelId dead) -> mk::Task<Survivor> {
          Survivor survivor;
          (void)co_await k.until_failed(dead);
          const Ping ping{0};
          auto pong = co_await k.call(dead, ping);
          survivor.call_failed = !pong.ok();
          if (!pong) survivor.call_error = pong.error().code;
          // The view change takes a few messages after the death is known.
          for (int i = 0; i < 5000 && (member_bits(r.members(k)) >> dead & 1) != 0; ++i)
            co_await k.sleep_for(1ms);
          survivor.members = member_bits(r.members(k));
          auto proposed = co_await r.propose(k, Tally::Op{kAfterAdd});
          survivor.proposed = proposed.ok();
          if (proposed) survivor.total = *proposed;
          co_return survivor;
        },
        tally, victim);
    if (!seen) {
      std::fprintf(stderr, "kernel %u: %s\n", id, seen.error().describe().c_str());
      return 1;
    }
    std::printf("kernel %u: its call to kernel %u failed with %s; members %s; a proposal %s\n", id,
                victim,
                seen->call_failed ? std::string(mk::to_string(seen->call_error)).c_str()
                                  : "nothing (it succeeded)",
                list(seen->members).c_str(), seen->proposed ? "completed" : "FAILED");
    ok = ok && seen->call_failed && seen->call_error == mk::Errc::closed &&
         (seen->members >> victim & 1) == 0 && seen->proposed;
  }

  // Every survivor's replica, once it applied what it was told of.
  for (mk::KernelId id = 0; id < victim; ++id) {
    auto total = system.run(
        id,
        [](mk::Kernel& k, mk::Replicated<Tally> r) -> mk::Task<std::int64_t> {
          auto value = co_await r.read(k, [](const Tally& t) { return t.total; });
          co_return value.ok() ? *value : -1;
        },
        tally);
    totals.push_back(total.ok() ? *total : -1);
  }
  auto on_dead = system.run(victim, [](mk::Kernel&) -> mk::Task<void> { co_return; });
  std::printf("System::run on kernel %u: %s\n", victim,
              on_dead ? "ok (unexpected)" : on_dead.error().describe().c_str());

  const std::int64_t expected = kBeforeAdd * static_cast<std::int64_t>(kernels) +
                                kAfterAdd * static_cast<std::int64_t>(victim);
  bool agree = true;
  for (std::int64_t total : totals)
    agree = agree && total == totals.front();
  const std::int64_t kept = totals.front() - expected;
  std::printf(
      "the %u survivors %s on a total of %lld: %lld before the kill, %lld after, and "
      "%lld from kernel %u's updates that committed before it died\n",
      victim, agree ? "agree" : "DISAGREE", static_cast<long long>(totals.front()),
      static_cast<long long>(kBeforeAdd * static_cast<std::int64_t>(kernels)),
      static_cast<long long>(kAfterAdd * victim), static_cast<long long>(kept), victim);
  ok = ok && agree && kept >= 0 && !on_dead.ok();
  if (auto stopped = system.shutdown(); !stopped) {
    std::fprintf(stderr, "shutdown: %s\n", stopped.error().describe().c_str());
    return 1;
  }
  return ok ? 0 : 1;
}

}  // namespace demo

int main(int argc, char** argv) {
  const std::size_t kernels = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4;
  if (kernels < 3 || kernels > 64) {
    std::fprintf(stderr, "usage: process_kill [kernels, 3 to 64]\n");
    return 2;
  }
  return demo::run(kernels);
}
