#include "floors.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

namespace mk::bench {

namespace {
// Bigger than a cache line on every machine mk accepts, so each floor's word sits alone.
constexpr std::size_t kIsolation = 256;

struct alignas(kIsolation) Line {
  std::atomic<std::uint64_t> value{0};
};

/// Round trips between two threads on `cores`: round trip i writes 2i+1 into line i of
/// `there` and waits for 2i+2 in line i of `back`, which the other thread writes once it sees
/// the first (lines taken modulo `lines`). `there` and `back` may be the same lines.
void bounce(const CorePair& cores, const TickClock& clock, std::size_t warmup, std::size_t rounds,
            Line* there, Line* back, std::size_t lines, std::vector<double>& samples) {
  const std::uint64_t total = warmup + rounds;
  run_pair(
      cores,
      [&] {
        for (std::uint64_t i = 0; i < total; ++i) {
          const std::uint64_t t0 = TickClock::ticks();
          // Release/acquire: the cheapest orders a real hand-off of data would need.
          there[i % lines].value.store(2 * i + 1, std::memory_order_release);
          Backoff backoff;
          while (back[i % lines].value.load(std::memory_order_acquire) != 2 * i + 2)
            backoff.wait();
          const std::uint64_t t1 = TickClock::ticks();
          if (i >= warmup) samples.push_back(clock.to_ns(t1 - t0));
        }
      },
      [&] {
        for (std::uint64_t i = 0; i < total; ++i) {
          Backoff backoff;
          // Acquire/release, as above.
          while (there[i % lines].value.load(std::memory_order_acquire) != 2 * i + 1)
            backoff.wait();
          back[i % lines].value.store(2 * i + 2, std::memory_order_release);
        }
      });
}

}  // namespace

void floor_rtt(const CorePair& cores, const TickClock& clock, std::size_t warmup,
               std::size_t rounds, std::vector<double>& samples) {
  auto line = std::make_unique<Line>();
  bounce(cores, clock, warmup, rounds, line.get(), line.get(), 1, samples);
}

void ring_floor_rtt(const CorePair& cores, const TickClock& clock, std::size_t warmup,
                    std::size_t rounds, std::size_t lines, std::vector<double>& samples) {
  lines = std::max<std::size_t>(lines, 1);
  std::vector<Line> there(lines), back(lines);
  bounce(cores, clock, warmup, rounds, there.data(), back.data(), lines, samples);
}

}  // namespace mk::bench
