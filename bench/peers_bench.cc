// mk-bench peers: urpc beside the single-producer single-consumer queues people pick instead,
// round trip and one-way throughput per message size.
#include <fmt/format.h>

#include <cstddef>
#include <cstdio>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core_pair.h"
#include "peers/peer.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {
namespace {

// Each peer is compiled in only when CMake found its library (bench/CMakeLists.txt).
#ifdef MK_BENCH_HAVE_DPDK_RTE_RING
constexpr const Peer* kDpdkIfBuilt = &kDpdkRteRingPeer;
#else
constexpr const Peer* kDpdkIfBuilt = nullptr;
#endif
#ifdef MK_BENCH_HAVE_CK_RING
constexpr const Peer* kCkIfBuilt = &kCkRingPeer;
#else
constexpr const Peer* kCkIfBuilt = nullptr;
#endif
#ifdef MK_BENCH_HAVE_MOODYCAMEL
constexpr const Peer* kMoodycamelIfBuilt = &kMoodycamelPeer;
#else
constexpr const Peer* kMoodycamelIfBuilt = nullptr;
#endif

constexpr PeerEntry kEntries[] = {
    {"urpc", "mk", &kUrpcPeer},
    {"boost_spsc", "libboost-dev", &kBoostSpscPeer},
    {"dpdk_rte_ring", "libdpdk-dev", kDpdkIfBuilt},
    {"ck_ring", "libck-dev", kCkIfBuilt},
    {"moodycamel", "libreaderwriterqueue-dev", kMoodycamelIfBuilt},
};

std::string result_name(std::string_view peer, std::size_t size, std::string_view figure) {
  if (size == kPeerSizes.front()) return fmt::format("peer.{}.{}", peer, figure);
  return fmt::format("peer.{}.{}B.{}", peer, size, figure);
}

// What one peer measured at one size over all repetitions; nothing once a run failed.
struct Figures {
  std::vector<double> rtt_ns;
  std::vector<double> throughput_mps;
  bool failed = false;
};

}  // namespace

std::span<const PeerEntry> peer_entries() {
  return kEntries;
}

std::vector<PeerEntry> missing_peers() {
  std::vector<PeerEntry> missing;
  for (const PeerEntry& entry : kEntries) {
    if (entry.peer == nullptr) missing.push_back(entry);
  }
  return missing;
}

void run_peers(const Options& options, Report& report) {
  for (const PeerEntry& entry : missing_peers()) {
    fmt::print(stderr,
               "mk-bench peers: {} not built ({} was not found when mk-bench was configured)\n",
               entry.name, entry.package);
  }
  const TickClock clock;
  PeerSetup setup{.cores = choose_cores("peers"),
                  .clock = &clock,
                  .warmup = 0,
                  .rounds = options.quick ? std::size_t{20'000} : std::size_t{50'000},
                  .messages = options.quick ? std::uint64_t{500'000} : std::uint64_t{1'000'000}};
  setup.warmup = setup.rounds / 10;
  const std::span<const std::size_t> sizes =
      options.quick ? std::span<const std::size_t>(kQuickPeerSizes) : kPeerSizes;
  // Repetitions interleave peers and sizes, so noise from the rest of the machine hits all
  // alike.
  const std::size_t repetitions = options.quick ? 1 : 3;

  std::map<std::pair<std::string_view, std::size_t>, Figures> figures;
  for (std::size_t r = 0; r < repetitions; ++r) {
    for (const std::size_t size : sizes) {
      for (const PeerEntry& entry : kEntries) {
        if (entry.peer == nullptr) continue;
        Figures& f = figures[{entry.name, size}];
        if (f.failed) continue;
        mk::Result<void> rtt = entry.peer->rtt(size, setup, f.rtt_ns);
        mk::Result<double> mps =
            rtt.ok() ? entry.peer->throughput(size, setup) : mk::Result<double>(0.0);
        if (!rtt.ok() || !mps.ok()) {
          fmt::print(stderr, "mk-bench peers: {} with {}-byte messages: {}\n", entry.name, size,
                     (!rtt.ok() ? rtt.error() : mps.error()).describe());
          f.failed = true;
          continue;
        }
        f.throughput_mps.push_back(*mps);
      }
    }
  }

  for (const std::size_t size : sizes) {
    const std::string urpc_rtt = result_name("urpc", size, "rtt_ns");
    const std::string urpc_mps = result_name("urpc", size, "throughput_mps");
    for (const PeerEntry& entry : kEntries) {
      auto it = figures.find({entry.name, size});
      if (it == figures.end() || it->second.failed) continue;
      const bool baseline = entry.name != "urpc";
      report.add({result_name(entry.name, size, "rtt_ns"), median(it->second.rtt_ns), "ns",
                  baseline ? std::optional(urpc_rtt) : std::nullopt, std::nullopt});
      report.add({result_name(entry.name, size, "throughput_mps"),
                  median(it->second.throughput_mps), "Mmsg/s",
                  baseline ? std::optional(urpc_mps) : std::nullopt, std::nullopt});
    }
  }
}

}  // namespace mk::bench
