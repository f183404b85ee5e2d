// The queues mk-bench peers measures beside mk's urpc channel, and what each one is asked.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core_pair.h"
#include "mk/result.h"

namespace mk::bench {

/// Message sizes in bytes the full suite measures; the 8-byte results carry no size in
/// their names.
inline constexpr std::array<std::size_t, 5> kPeerSizes{8, 64, 256, 1024, 2048};
/// The sizes --quick measures.
inline constexpr std::array<std::size_t, 2> kQuickPeerSizes{8, 256};
/// Messages each peer's queue holds, as many as the urpc ring (at its default 256 slots)
/// holds one-slot messages.
inline constexpr std::size_t kPeerCapacity = 256;

/// How one measurement runs: where, how long, and the clock for round trips.
struct PeerSetup {
  CorePair cores;                        ///< The two CPUs.
  const TickClock* clock;                ///< Times each round trip.
  std::size_t warmup;                    ///< Unmeasured round trips first.
  std::size_t rounds;                    ///< Measured round trips.
  std::uint64_t messages;                ///< Messages one way in a throughput run.
  std::size_t capacity = kPeerCapacity;  ///< Messages one queue holds.
};

/// One queue measured against urpc.
struct Peer {
  std::string_view name;     ///< Its name in result names: "boost_spsc".
  std::string_view package;  ///< What provides it: "libboost-dev".
  /// Appends one sample per round trip of a `size`-byte message (a size of kPeerSizes) to
  /// `samples`; an error when its queues cannot be made or a message came back wrong.
  mk::Result<void> (*rtt)(std::size_t size, const PeerSetup& setup, std::vector<double>& samples);
  /// Millions of `size`-byte messages per second from one thread to the other.
  mk::Result<double> (*throughput)(std::size_t size, const PeerSetup& setup);
};

/// A peer and whether this mk-bench was built with it.
struct PeerEntry {
  std::string_view name;     ///< As Peer::name.
  std::string_view package;  ///< The Debian package CMake looked for.
  const Peer* peer;          ///< Null when it was not found at configure time.
};

/// Every peer in the order the suite reports them, urpc first; built or not.
std::span<const PeerEntry> peer_entries();

/// The peers this mk-bench was built without, for reports that name what they lack.
std::vector<PeerEntry> missing_peers();

/// The peers, each defined in its own file of bench/peers/ when its library was found.
extern const Peer kUrpcPeer;
extern const Peer kBoostSpscPeer;
extern const Peer kDpdkRteRingPeer;
extern const Peer kCkRingPeer;
extern const Peer kMoodycamelPeer;

}  // namespace mk::bench
