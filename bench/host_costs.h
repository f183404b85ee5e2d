// What one message costs on this machine, measured over a urpc channel between two of its
// cores: the per-message costs a projection gives the simulator.
#pragma once

#include <optional>
#include <string>

#include "mk/sim_options.h"
#include "mk/skb.h"

namespace mk::bench {

/// Message costs measured here.
struct HostCosts {
  double rtt_ns = 0;          ///< Median round trip of a one-slot message and its echo.
  double per_message_ns = 0;  ///< Streaming: ns per message from one core to another.
};

/// Measures `skb`'s first two usable cores; nullopt (and a line on stderr) when there are not
/// two, or a channel cannot be made.
std::optional<HostCosts> measure_host_costs(const Skb& skb, bool quick);

/// The simulator's cost model with the host's figures: one-way latency at distance 10 is half
/// the round trip, and sending and receiving each cost one streaming message's time (each side
/// of a stream pays it once per message). Turn and jitter keep SimCosts' defaults.
SimCosts sim_costs_from(const HostCosts& host);

/// One line saying where the costs came from, for the output.
std::string describe(const SimCosts& costs, bool measured);

}  // namespace mk::bench
