// mk-bench channel: round trip and one-way throughput of the channel kinds, beside the floor
// (two threads bouncing one cache line with plain atomics) and Boost.Lockfree.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "core_pair.h"
#include "floors.h"
#include "mk/channel.h"
#include "one_way.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {
namespace {

// Messages per try_send_batch and per poll in the batched runs.
constexpr std::size_t kBatch = 32;

/// Round trips of one-slot messages through two channels of `kind`, one each way; the echo
/// side sends back the payload it received.
void channel_rtt(ChannelKind kind, std::size_t payload_size, const CorePair& cores,
                 const TickClock& clock, std::size_t warmup, std::size_t rounds,
                 std::vector<double>& samples) {
  auto there = make_channel(kind);
  auto back = make_channel(kind);
  if (!there || !back) {
    fmt::print(stderr, "mk-bench channel: {}\n",
               (!there ? there.error() : back.error()).describe());
    return;
  }
  const std::uint64_t total = warmup + rounds;
  std::vector<std::byte> payload(payload_size, std::byte{0x5a});
  run_pair(
      cores,
      [&] {
        ChannelSender& tx = *there->sender;
        ChannelReceiver& rx = *back->receiver;
        auto on_reply = [](const MessageView&) {};
        for (std::uint64_t i = 0; i < total; ++i) {
          const std::uint64_t t0 = TickClock::ticks();
          while (tx.try_send(1, payload) != SendStatus::ok)
            cpu_relax();
          Backoff backoff;
          while (rx.poll(on_reply, 1) == 0)
            backoff.wait();
          const std::uint64_t t1 = TickClock::ticks();
          if (i >= warmup) samples.push_back(clock.to_ns(t1 - t0));
        }
      },
      [&] {
        ChannelReceiver& rx = *there->receiver;
        ChannelSender& tx = *back->sender;
        auto echo = [&tx](const MessageView& message) {
          while (tx.try_send(message.type, message.payload) != SendStatus::ok)
            cpu_relax();
        };
        for (std::uint64_t i = 0; i < total; ++i) {
          Backoff backoff;
          while (rx.poll(echo, 1) == 0)
            backoff.wait();
        }
      });
}

}  // namespace

void run_channel(const Options& options, Report& report) {
  const CorePair cores = choose_cores("channel");
  const TickClock clock;
  auto slot_payload = single_slot_payload();
  if (!slot_payload) {
    fmt::print(stderr, "mk-bench channel: {}\n", slot_payload.error().describe());
    return;
  }
  const std::size_t payload = *slot_payload;
  // Repetitions interleave the kinds, so noise from the rest of the machine hits all alike.
  const std::size_t repetitions = options.quick ? 3 : 7;
  const std::size_t rounds = options.quick ? 30'000 : 200'000;
  const std::size_t warmup = rounds / 10;
  const std::uint64_t messages = options.quick ? 2'000'000 : 10'000'000;

  std::vector<double> floor_ns, ring_floor_ns, short_ring_floor_ns, urpc_ns, lockfree_ns;
  std::vector<double> urpc_mps, lockfree_mps, urpc_batched_mps, lockfree_batched_mps;
  for (std::size_t r = 0; r < repetitions; ++r) {
    floor_rtt(cores, clock, warmup, rounds, floor_ns);
    ring_floor_rtt(cores, clock, warmup, rounds, kLongRingLines, ring_floor_ns);
    ring_floor_rtt(cores, clock, warmup, rounds, kShortRingLines, short_ring_floor_ns);
    channel_rtt(ChannelKind::urpc, payload, cores, clock, warmup, rounds, urpc_ns);
    channel_rtt(ChannelKind::lockfree, payload, cores, clock, warmup, rounds, lockfree_ns);
    urpc_mps.push_back(one_way_mps(ChannelKind::urpc, payload, cores, messages, 1));
    lockfree_mps.push_back(one_way_mps(ChannelKind::lockfree, payload, cores, messages, 1));
    urpc_batched_mps.push_back(one_way_mps(ChannelKind::urpc, payload, cores, messages, kBatch));
    lockfree_batched_mps.push_back(
        one_way_mps(ChannelKind::lockfree, payload, cores, messages, kBatch));
  }

  const std::string floor = "floor.rtt_ns";
  const Target rtt_target{Target::Kind::at_most, 1.10};
  report.add({"floor.rtt_ns", median(floor_ns), "ns", std::nullopt, std::nullopt});
  report.add({"floor.rtt_p99_ns", quantile(floor_ns, 0.99), "ns", std::nullopt, std::nullopt});
  report.add({"floor.ring.rtt_ns", median(ring_floor_ns), "ns", floor, std::nullopt});
  // The same pattern over a few lines: what the long ring costs for its footprint alone.
  report.add({"floor.short_ring.rtt_ns", median(short_ring_floor_ns), "ns", "floor.ring.rtt_ns",
              std::nullopt});
  report.add({"urpc.rtt_ns", median(urpc_ns), "ns", floor, rtt_target});
  report.add({"urpc.rtt_p99_ns", quantile(urpc_ns, 0.99), "ns", "floor.rtt_p99_ns", std::nullopt});
  report.add({"lockfree.rtt_ns", median(lockfree_ns), "ns", floor, std::nullopt});
  report.add(
      {"lockfree.rtt_p99_ns", quantile(lockfree_ns, 0.99), "ns", "floor.rtt_p99_ns", std::nullopt});
  report.add(
      {"lockfree.throughput_mps", median(lockfree_mps), "Mmsg/s", std::nullopt, std::nullopt});
  report.add({"urpc.throughput_mps", median(urpc_mps), "Mmsg/s", "lockfree.throughput_mps",
              Target{Target::Kind::at_least, 1.5}});
  report.add({"lockfree.batched.throughput_mps", median(lockfree_batched_mps), "Mmsg/s",
              std::nullopt, std::nullopt});
  report.add({"urpc.batched.throughput_mps", median(urpc_batched_mps), "Mmsg/s",
              "lockfree.batched.throughput_mps", std::nullopt});
}

}  // namespace mk::bench
