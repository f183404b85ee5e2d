// Measuring a call-shaped round trip between two cores with its answer on each path, for
// Skb::answer_path: the same two threads and the same urpc channels carry both, in
// alternating blocks, so that a change in where the host runs the threads hits both alike.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "mk/channel_geometry.h"
#include "mk/latency_probe.h"
#include "mk/urpc.h"
#include "transport/probe_thread.h"

namespace mk {
namespace {

using transport::check_probe_pair;
using transport::kPollsPerYield;
using transport::pin_probe_thread;
using transport::summarize_round_trips;

using Clock = std::chrono::steady_clock;

// Round trips per block of one path before the other's.
constexpr std::size_t kBlock = 100;
// What the answering thread gets to say it should stop.
constexpr MessageType kStop = 2;

Result<UrpcChannel> urpc_to(const Skb& skb, CoreId from, CoreId to) {
  auto options = channel_options_for(skb, from, to);
  if (!options) return std::move(options).error();
  return make_urpc_channel(*options);
}

// Answers every request: in its own line when it asks for that, else through `back`. Ends at
// the stop message.
void answer_all(UrpcReceiver& requests, UrpcSender& back) {
  bool stop = false;
  for (int polls = 0; !stop; ++polls) {
    const std::size_t got = requests.poll_each(
        [&](const MessageView& message) {
          if (message.type == kStop) {
            stop = true;
            return;
          }
          // The answer overwrites the request's bytes: it is written from a copy (the
          // requests are 8 bytes).
          std::array<std::byte, sizeof(std::uint64_t)> copy{};
          const auto request = message.payload.first(std::min(copy.size(), message.payload.size()));
          std::copy(request.begin(), request.end(), copy.begin());
          const auto echoed = std::span(copy).first(request.size());
          if (!requests.answer(message.type, echoed, {})) {
            while (back.try_send(message.type, echoed) == SendStatus::full) {
            }
          }
        },
        1);
    if (got == 0 && polls % kPollsPerYield == kPollsPerYield - 1) std::this_thread::yield();
  }
}

// One round trip with its answer on `path`; false when the answer did not come back whole.
bool round_trip(UrpcSender& requests, UrpcReceiver& answers, AnswerPath path, std::uint64_t word) {
  const auto bytes = std::as_bytes(std::span(&word, 1));
  std::uint64_t echoed = ~word;
  int polls = 0;
  auto wait = [&polls] {
    if (++polls % kPollsPerYield == 0) std::this_thread::yield();
  };
  if (path == AnswerPath::in_line) {
    while (requests.send_for_answer(1, bytes, {}) == SendStatus::full)
      wait();
    MessageView answer;
    UrpcSender::AnswerState state;
    while ((state = requests.poll_answer(answer)) == UrpcSender::AnswerState::pending)
      wait();
    if (state != UrpcSender::AnswerState::answered || answer.payload.size() != sizeof word) {
      return false;
    }
    std::memcpy(&echoed, answer.payload.data(), sizeof echoed);
    return echoed == word;
  }
  while (requests.try_send(1, bytes) == SendStatus::full)
    wait();
  while (answers.poll_each(
             [&](const MessageView& message) {
               if (message.payload.size() == sizeof echoed) {
                 std::memcpy(&echoed, message.payload.data(), sizeof echoed);
               }
             },
             1) == 0) {
    wait();
  }
  return echoed == word;
}

}  // namespace

Result<std::array<AnswerCost, 2>> measure_answer_costs(const Skb& skb, CoreId a, CoreId b,
                                                       const LatencyProbeOptions& options) {
  if (auto checked = check_probe_pair(skb, a, b, options.round_trips, "the round trip"); !checked) {
    return std::move(checked).error();
  }
  auto there = urpc_to(skb, a, b);
  if (!there) return std::move(there).error();
  auto back = urpc_to(skb, b, a);
  if (!back) return std::move(back).error();

  Result<void> answerer_result;
  std::thread answerer([&] {
    // Unpinned, it still answers, so that the timer ends; the failure is reported after.
    answerer_result = pin_probe_thread(b);
    answer_all(*there->receiver, *back->sender);
  });
  Result<void> timer_result;
  std::array<std::vector<Clock::duration>, 2> samples;
  for (auto& each : samples)
    each.reserve(options.round_trips);
  std::thread timer([&] {
    timer_result = pin_probe_thread(a);
    const std::size_t want = options.round_trips;
    for (std::uint64_t i = 0;
         timer_result && (samples[0].size() < want || samples[1].size() < want); ++i) {
      const AnswerPath path = kAnswerPaths[(i / kBlock) % 2];
      const auto start = Clock::now();
      const bool echoed = round_trip(*there->sender, *back->receiver, path, i);
      const auto stop = Clock::now();
      if (!echoed) {
        timer_result = error(
            Errc::internal, fmt::format("answer probe {}-{}: round trip {} ({}) came back wrong", a,
                                        b, i, to_string(path)));
        break;
      }
      auto& mine = samples[static_cast<std::size_t>(path)];
      if (i >= 2 * options.warmup && mine.size() < want) {
        mine.push_back(stop - start);
      }
    }
    // The answerer ends at this, whatever became of the round trips; a full ring only waits.
    while (there->sender->try_send(kStop, {}) == SendStatus::full)
      std::this_thread::yield();
  });
  timer.join();
  answerer.join();
  // The answerer's own failure explains the timer's, so it is reported first.
  if (!answerer_result) return std::move(answerer_result).error();
  if (!timer_result) return std::move(timer_result).error();
  return std::array<AnswerCost, 2>{
      AnswerCost{AnswerPath::channel, summarize_round_trips(a, b, samples[0])},
      AnswerCost{AnswerPath::in_line, summarize_round_trips(a, b, samples[1])}};
}

}  // namespace mk
