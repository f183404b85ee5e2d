// The hardware floors a channel's round trip is measured against: plain atomics on bare lines.
#pragma once

#include <cstddef>
#include <vector>

#include "core_pair.h"

namespace mk::bench {

/// Lines each way in the long ring floor: as many as a default urpc ring has slots.
inline constexpr std::size_t kLongRingLines = 256;
/// Lines each way in the short ring floor: few enough to stay in the first-level cache.
inline constexpr std::size_t kShortRingLines = 4;

/// Round trips of one word bounced between two threads on `cores`, odd values one way and
/// even values back. Appends one sample (ns) per round trip after `warmup` unmeasured ones.
void floor_rtt(const CorePair& cores, const TickClock& clock, std::size_t warmup,
               std::size_t rounds, std::vector<double>& samples);

/// Round trips of the one-writer-per-line pattern urpc uses, hand-written with bare words: a
/// ring of `lines` lines each way, round trip i writing line i of one ring and waiting on line
/// i of the other. What urpc adds to the long ring is its own cost; the gap between the rings
/// and floor_rtt is the hardware's.
void ring_floor_rtt(const CorePair& cores, const TickClock& clock, std::size_t warmup,
                    std::size_t rounds, std::size_t lines, std::vector<double>& samples);

}  // namespace mk::bench
