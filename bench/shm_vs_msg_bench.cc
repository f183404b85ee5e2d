// mk-bench shm-vs-msg: the multikernel paper's Figure 3 on this machine. Every core updates k
// shared cache lines (k = 1, 2, 4, 8) with atomic increments, beside the same updates sent as
// messages to one server kernel that owns the lines: as calls (the client waits for each
// update, like an atomic) and as one-way sends (the client goes on; the server's rate bounds it).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mk/system.h"
#include "pinned_threads.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {

/// How many of the server's lines to update, waiting for the server to have done it.
struct ShmUpdateCall {
  static constexpr MessageType kType = 0xE000;
  struct Reply {
    std::uint64_t first_value;  ///< Line 0 after the update, so the update is observable.
  };
  std::uint32_t lines;
};

/// The same update, one-way.
struct ShmUpdateSend {
  static constexpr MessageType kType = 0xE001;
  std::uint32_t lines;
};

/// Answered once the server handled every earlier message from the caller (channels keep a
/// sender's messages in order), ending a run of one-way updates.
struct ShmSync {
  static constexpr MessageType kType = 0xE002;
  struct Reply {
    std::uint64_t first_value;
  };
  std::uint32_t unused = 0;
};

namespace {

constexpr std::array<std::uint32_t, 4> kLineCounts = {1, 2, 4, 8};
constexpr std::size_t kMaxLines = 8;
// Two cache lines: the adjacent-line prefetcher of x86 parts pairs lines, which would make
// neighbouring counters share traffic.
constexpr std::size_t kLineBytes = 128;
// Updates between two looks at the clock or the stop flag, so that neither costs much.
constexpr std::size_t kBatch = 64;

struct alignas(kLineBytes) SharedLine {
  std::atomic<std::uint64_t> value{0};
};

/// The lines as the server kernel owns them: plain memory, touched by its thread only.
class OwnedLines {
 public:
  explicit OwnedLines(Kernel&) {}

  std::uint64_t update(std::uint32_t lines) {
    for (std::uint32_t l = 0; l < lines && l < kMaxLines; ++l)
      ++lines_[l].value;
    return lines_[0].value;
  }

  std::array<std::uint64_t, kMaxLines> values() const {
    std::array<std::uint64_t, kMaxLines> out{};
    for (std::size_t l = 0; l < kMaxLines; ++l)
      out[l] = lines_[l].value;
    return out;
  }

 private:
  struct alignas(kLineBytes) Line {
    std::uint64_t value = 0;
  };
  std::array<Line, kMaxLines> lines_{};
};

/// The mean ns per update of `cores.size()` threads, each updating `lines` shared lines
/// over and over for `window`; nullopt when the counts came out wrong. Every thread runs for
/// the whole window, so none is ever measured updating alone.
std::optional<double> shared_ns(std::span<const CoreId> cores, std::uint32_t lines,
                                std::chrono::milliseconds window) {
  auto table = std::make_unique<SharedLine[]>(kMaxLines);
  auto stop = std::make_unique<SharedLine>();
  std::vector<std::uint64_t> done(cores.size());
  std::vector<double> per_thread(cores.size());
  run_pinned(cores, [&](std::size_t i) {
    const auto t0 = Clock::now();
    std::uint64_t updates = 0;
    // Relaxed: the flag only ends the loop; the counts are read after the threads are joined.
    while (stop->value.load(std::memory_order_relaxed) == 0) {
      for (std::size_t u = 0; u < kBatch; ++u) {
        for (std::uint32_t l = 0; l < lines; ++l)
          // Relaxed: only the count matters; no other data is published through these lines.
          table[l].value.fetch_add(1, std::memory_order_relaxed);
      }
      updates += kBatch;
      // Relaxed, as above.
      if (i == 0 && Clock::now() - t0 >= window) stop->value.store(1, std::memory_order_relaxed);
    }
    done[i] = updates;
    per_thread[i] = ns_between(t0, Clock::now()) / static_cast<double>(updates);
  });
  std::uint64_t expected = 0;
  for (std::uint64_t d : done)
    expected += d;
  for (std::uint32_t l = 0; l < lines; ++l) {
    if (table[l].value.load() != expected) return std::nullopt;
  }
  double sum = 0;
  for (double ns : per_thread)
    sum += ns;
  return sum / static_cast<double>(per_thread.size());
}

/// A System with the server on kernel 0 and clients on the rest.
struct MessageSetup {
  std::unique_ptr<System> system;
  std::size_t clients = 0;
};

std::optional<MessageSetup> boot_server(std::span<const CoreId> cores, CoreId server) {
  Config config;
  config.cores.push_back(server);
  for (CoreId core : cores) {
    if (core != server) config.cores.push_back(core);
  }
  if (config.cores.size() == 1) {
    // One core: the client shares it with the server.
    config.cores.push_back(server);
    config.kernels_per_core = 2;
  }
  auto booted = System::boot(config);
  if (!booted) {
    fmt::print(stderr, "mk-bench shm-vs-msg: {}\n", booted.error().describe());
    return std::nullopt;
  }
  auto handlers = (*booted)->for_each_kernel([](Kernel& k) {
    if (k.id() != 0) return;
    OwnedLines* owned = &k.extension<OwnedLines>();
    (void)k.handle<ShmUpdateCall>(
        [owned](const ShmUpdateCall& m) { return ShmUpdateCall::Reply{owned->update(m.lines)}; });
    (void)k.handle<ShmUpdateSend>([owned](const ShmUpdateSend& m) { owned->update(m.lines); });
    (void)k.handle<ShmSync>([owned](const ShmSync&) { return ShmSync::Reply{owned->values()[0]}; });
  });
  if (!handlers) {
    fmt::print(stderr, "mk-bench shm-vs-msg: {}\n", handlers.error().describe());
    return std::nullopt;
  }
  MessageSetup setup;
  setup.clients = config.cores.size() - 1;
  setup.system = std::move(*booted);
  return setup;
}

std::optional<std::array<std::uint64_t, kMaxLines>> server_values(System& system) {
  auto values = system.run(0, [](Kernel& k) -> Task<std::array<std::uint64_t, kMaxLines>> {
    co_return k.extension<OwnedLines>().values();
  });
  if (!values) return std::nullopt;
  return *values;
}

/// One update sent to the server (kernel 0); false when it failed.
Task<bool> update_once(Kernel& k, std::uint32_t lines, bool one_way) {
  if (one_way) co_return (co_await k.send(0, ShmUpdateSend{lines})).ok();
  co_return (co_await k.call(0, ShmUpdateCall{lines})).ok();
}

/// One client's run: `warmup` then `updates` updates of `lines` lines; the mean ns per
/// measured update, or a negative value when an update failed.
Task<double> client_run(Kernel& k, std::uint32_t lines, std::size_t warmup, std::size_t updates,
                        bool one_way) {
  for (std::size_t u = 0; u < warmup; ++u) {
    if (!co_await update_once(k, lines, one_way)) co_return -1.0;
  }
  if (one_way && !(co_await k.call(0, ShmSync{}))) co_return -1.0;
  const auto t0 = k.now();
  for (std::size_t u = 0; u < updates; ++u) {
    if (!co_await update_once(k, lines, one_way)) co_return -1.0;
  }
  if (one_way && !(co_await k.call(0, ShmSync{}))) co_return -1.0;
  co_return ns_between(t0, k.now()) / static_cast<double>(updates);
}

/// The mean ns per update over every client kernel of `setup`, each making `updates` updates
/// of `lines` lines; nullopt when an update failed or the server's counts came out wrong.
std::optional<double> message_ns(MessageSetup& setup, std::uint32_t lines, std::size_t warmup,
                                 std::size_t updates, bool one_way) {
  System& system = *setup.system;
  auto before = server_values(system);
  if (!before) return std::nullopt;
  std::vector<double> per_client(setup.clients, -1.0);
  std::vector<std::thread> waiters;
  for (std::size_t c = 0; c < setup.clients; ++c) {
    // System::run blocks, so each client gets a thread of the bench's own to wait on it.
    waiters.emplace_back([&, c] {
      auto ns = system.run(static_cast<KernelId>(c + 1), [=](Kernel& k) {
        return client_run(k, lines, warmup, updates, one_way);
      });
      if (ns) per_client[c] = *ns;
    });
  }
  for (auto& waiter : waiters)
    waiter.join();
  auto after = server_values(system);
  if (!after) return std::nullopt;
  const std::uint64_t expected = setup.clients * (warmup + updates);
  for (std::uint32_t l = 0; l < lines; ++l) {
    if ((*after)[l] - (*before)[l] != expected) return std::nullopt;
  }
  double sum = 0;
  for (double ns : per_client) {
    if (ns < 0) return std::nullopt;
    sum += ns;
  }
  return sum / static_cast<double>(per_client.size());
}

/// Core counts to measure: every usable core always; in a full run (or a sweep) on a bigger
/// machine also 2, 4, 8, ... below it, the x axis of the paper's figure.
std::vector<std::size_t> core_counts(std::size_t usable, bool quick) {
  std::vector<std::size_t> counts;
  if (!quick) {
    for (std::size_t n = 2; n < usable; n *= 2)
      counts.push_back(n);
  }
  counts.push_back(usable);
  return counts;
}

struct Figures {
  std::vector<double> shared, call, one_way;
};

/// How long each shared run lasts and how many updates each client makes, per line count and
/// repetition.
struct Counts {
  std::chrono::milliseconds shared_window;
  std::size_t message;
};

/// Measures every line count on `cores`, `repetitions` times.
std::array<Figures, kLineCounts.size()> measure(const Skb& skb, std::span<const CoreId> cores,
                                                std::size_t repetitions, Counts counts) {
  std::array<Figures, kLineCounts.size()> figures;
  auto central = skb.central_core(cores);
  const CoreId server = central ? *central : cores.front();
  for (std::size_t r = 0; r < repetitions; ++r) {
    // Threads first, with no kernel running, so the two never share a core.
    for (std::size_t i = 0; i < kLineCounts.size(); ++i) {
      if (auto ns = shared_ns(cores, kLineCounts[i], counts.shared_window)) {
        figures[i].shared.push_back(*ns);
      } else {
        fmt::print(stderr, "mk-bench shm-vs-msg: shared counts wrong for {} lines\n",
                   kLineCounts[i]);
      }
    }
    auto setup = boot_server(cores, server);
    if (!setup) return figures;
    for (std::size_t i = 0; i < kLineCounts.size(); ++i) {
      for (bool one_way : {false, true}) {
        auto ns = message_ns(*setup, kLineCounts[i], counts.message / 10, counts.message, one_way);
        if (!ns) {
          fmt::print(stderr, "mk-bench shm-vs-msg: {} updates of {} lines failed\n",
                     one_way ? "one-way" : "call", kLineCounts[i]);
          continue;
        }
        (one_way ? figures[i].one_way : figures[i].call).push_back(*ns);
      }
    }
  }
  return figures;
}

}  // namespace

void run_shm_vs_msg(const Options& options, Report& report) {
  auto skb = Skb::discover();
  if (!skb) {
    fmt::print(stderr, "mk-bench shm-vs-msg: {}\n", skb.error().describe());
    return;
  }
  const auto& usable = skb->usable_cores();
  const std::size_t repetitions = options.quick ? 3 : 7;
  const Counts counts = options.quick ? Counts{std::chrono::milliseconds(20), 20'000}
                                      : Counts{std::chrono::milliseconds(200), 200'000};
  fmt::print(
      stderr,
      "mk-bench shm-vs-msg: shared = every core increments the lines (atomic fetch_add);\n"
      "  message = one server kernel owns the lines, the other cores' kernels send it each\n"
      "  update as a Kernel::call (waiting, like the atomics) or a one-way send. Each figure\n"
      "  is the median over repetitions of the mean ns per update of a core (a thread for\n"
      "  shared, a client kernel for message)\n");
  for (std::size_t n : core_counts(usable.size(), options.quick && !options.sweep)) {
    const std::span<const CoreId> cores(usable.data(), n);
    const auto figures = measure(*skb, cores, repetitions, counts);
    // The figures on every usable core carry the names the README quotes; smaller core counts
    // add theirs.
    const std::string scope = n == usable.size() ? "" : fmt::format("cores_{}.", n);
    auto name = [&scope](std::string_view how, std::uint32_t lines) {
      return fmt::format("shm_vs_msg.{}.{}.{}ns_per_update", how, lines, scope);
    };
    for (std::size_t i = 0; i < kLineCounts.size(); ++i) {
      auto f = figures[i];
      if (f.shared.empty()) continue;
      const std::string shared = name("shared", kLineCounts[i]);
      report.add({shared, median(f.shared), "ns", std::nullopt, std::nullopt});
      if (!f.call.empty()) {
        report.add({name("message", kLineCounts[i]), median(f.call), "ns", shared, std::nullopt});
      }
      if (!f.one_way.empty()) {
        report.add({name("message_oneway", kLineCounts[i]), median(f.one_way), "ns", shared,
                    std::nullopt});
      }
    }
  }
}

}  // namespace mk::bench
