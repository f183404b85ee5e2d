#include "mk/latency_probe.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "mk/channel_geometry.h"
#include "mk/latency_cache.h"
#include "mk/prefetch_probe.h"
#include "transport/probe_thread.h"

namespace mk {
namespace {

using transport::check_probe_pair;
using transport::kPollsPerYield;
using transport::pin_probe_thread;
using transport::summarize_round_trips;

using Clock = std::chrono::steady_clock;

Result<ChannelEnds> channel_to(const Skb& skb, CoreId from, CoreId to,
                               const LatencyProbeOptions& options) {
  auto channel = channel_options_for(skb, from, to);
  if (!channel) return std::move(channel).error();
  return make_channel(options.kind, *channel);
}

// The kinds a pair of different cores may use, each measured for Skb::transport.
constexpr ChannelKind kCrossCoreKinds[] = {ChannelKind::urpc, ChannelKind::lockfree};

// Sends until the ring takes the message; false when the peer went away.
bool send_word(ChannelSender& sender, std::uint64_t word) {
  const auto bytes = std::as_bytes(std::span(&word, 1));
  for (int polls = 0;; ++polls) {
    switch (sender.try_send(1, bytes)) {
      case SendStatus::ok:
        return true;
      case SendStatus::full:
        break;
      case SendStatus::too_large:
      case SendStatus::closed:
        return false;
    }
    if (polls % kPollsPerYield == kPollsPerYield - 1) std::this_thread::yield();
  }
}

// Waits for one message; nullopt when the channel closed first.
std::optional<std::uint64_t> receive_word(ChannelReceiver& receiver) {
  std::uint64_t word = 0;
  for (int polls = 0;; ++polls) {
    const std::size_t got = receiver.poll(
        [&](const MessageView& message) {
          std::memcpy(&word, message.payload.data(), std::min(sizeof word, message.payload.size()));
        },
        1);
    if (got == 1) return word;
    if (receiver.closed()) return std::nullopt;
    if (polls % kPollsPerYield == kPollsPerYield - 1) std::this_thread::yield();
  }
}

}  // namespace

Result<CoreLatency> measure_round_trip(const Skb& skb, CoreId a, CoreId b,
                                       const LatencyProbeOptions& options) {
  if (auto checked = check_probe_pair(skb, a, b, options.round_trips, "latency"); !checked) {
    return std::move(checked).error();
  }
  auto there = channel_to(skb, a, b, options);
  if (!there) return std::move(there).error();
  auto back = channel_to(skb, b, a, options);
  if (!back) return std::move(back).error();

  const std::size_t total = options.warmup + options.round_trips;
  Result<void> echo_result;
  std::thread echo([&] {
    echo_result = pin_probe_thread(b);
    if (echo_result) {
      while (auto word = receive_word(*there->receiver)) {
        if (!send_word(*back->sender, *word)) break;
      }
    }
    back->sender->close();
  });

  Result<void> timer_result;
  std::vector<Clock::duration> samples;
  samples.reserve(options.round_trips);
  std::thread timer([&] {
    timer_result = pin_probe_thread(a);
    for (std::uint64_t i = 0; timer_result && i < total; ++i) {
      const auto start = Clock::now();
      auto reply = send_word(*there->sender, i) ? receive_word(*back->receiver) : std::nullopt;
      const auto stop = Clock::now();
      if (reply != i) {
        timer_result =
            error(Errc::internal,
                  fmt::format("latency probe {}-{}: round trip {} came back wrong", a, b, i));
        break;
      }
      if (i >= options.warmup) samples.push_back(stop - start);
    }
    there->sender->close();
  });
  timer.join();
  echo.join();
  // The echo's own failure explains the timer's, so it is reported first.
  if (!echo_result) return std::move(echo_result).error();
  if (!timer_result) return std::move(timer_result).error();

  return summarize_round_trips(a, b, samples);
}

Result<std::vector<CoreLatency>> measure_latencies(const Skb& skb,
                                                   const LatencyProbeOptions& options,
                                                   LatencyProgress progress) {
  const auto& cores = skb.usable_cores();
  const std::size_t pairs = cores.size() * (cores.size() - 1) / 2;
  std::vector<CoreLatency> latencies;
  latencies.reserve(pairs);
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      auto latency = measure_round_trip(skb, cores[i], cores[j], options);
      if (!latency) return std::move(latency).error();
      latencies.push_back(*latency);
      progress(latencies.size(), pairs);
    }
  }
  return latencies;
}

Result<std::vector<ChannelCost>> measure_channel_costs(const Skb& skb,
                                                       const LatencyProbeOptions& options,
                                                       LatencyProgress progress) {
  const auto& cores = skb.usable_cores();
  const std::size_t pairs = cores.size() * (cores.size() - 1) / 2;
  std::vector<ChannelCost> costs;
  costs.reserve(pairs * std::size(kCrossCoreKinds));
  std::size_t done = 0;
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      for (ChannelKind kind : kCrossCoreKinds) {
        LatencyProbeOptions probe = options;
        probe.kind = kind;
        auto latency = measure_round_trip(skb, cores[i], cores[j], probe);
        if (!latency) return std::move(latency).error();
        costs.push_back(ChannelCost{kind, *latency});
      }
      progress(++done, pairs);
    }
  }
  return costs;
}

namespace {

// True when `skb` has a latency, a round trip over every cross-core kind and one with each
// answer path for every pair.
bool has_every_measurement(const Skb& skb) {
  const auto& cores = skb.usable_cores();
  if (!skb.has_latencies(cores)) return false;
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      for (ChannelKind kind : kCrossCoreKinds) {
        if (!skb.channel_cost(cores[i], cores[j], kind)) return false;
      }
      for (AnswerPath path : kAnswerPaths) {
        if (!skb.answer_cost(cores[i], cores[j], path)) return false;
      }
    }
  }
  return true;
}

}  // namespace

Result<LatencyOrigin> load_or_measure_latencies(Skb& skb, const LatencySetup& setup,
                                                LatencyProgress progress) {
  if (!skb.is_live()) {
    return error(
        Errc::unavailable,
        fmt::format("latency is measured on the live machine only, not the {}", skb.origin()));
  }
  auto found_dir = latency_cache_dir(setup.cache_dir);
  if (!found_dir) return std::move(found_dir).error();
  const std::string dir = *found_dir;
  const std::string path = latency_cache_path(dir, skb);
  if (!setup.remeasure) {
    Skb candidate = skb;
    auto cached = load_cached_measurements(candidate, dir);
    if (!cached) return std::move(cached).error();
    if (*cached && has_every_measurement(candidate)) {
      skb = std::move(candidate);
      return LatencyOrigin::cache;
    }
  }
  // The prefetch probe first: it needs two quiet cores, and the round trips are what takes time.
  auto pair = measure_prefetch_pair(skb);
  if (pair) {
    if (auto added = skb.add_measured_prefetch_pair(*pair); !added) return added.error();
  } else if (pair.error().code != Errc::unavailable) {
    return std::move(pair).error();
  }
  auto costs = measure_channel_costs(skb, setup.probe, progress);
  if (!costs) return std::move(costs).error();
  std::vector<CoreLatency> latencies;
  for (const ChannelCost& cost : *costs) {
    if (cost.kind == ChannelKind::urpc) latencies.push_back(cost.round_trip);
  }
  std::vector<AnswerCost> answers;
  const auto& cores = skb.usable_cores();
  for (std::size_t i = 0; i < cores.size(); ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      auto both = measure_answer_costs(skb, cores[i], cores[j], setup.probe);
      if (!both) return std::move(both).error();
      answers.insert(answers.end(), both->begin(), both->end());
    }
  }
  if (auto added = skb.add_measured_latencies(latencies); !added) return added.error();
  if (auto added = skb.add_measured_channel_costs(*costs); !added) return added.error();
  if (auto added = skb.add_measured_answer_costs(answers); !added) return added.error();
  if (auto saved = save_latency_cache(path, skb); !saved) return saved.error();
  return LatencyOrigin::measured;
}

}  // namespace mk
