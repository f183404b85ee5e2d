// Checking ChannelOptions and turning them into a ring's geometry: the one place that does.
#pragma once

#include <cstddef>
#include <string_view>

#include "mk/channel.h"
#include "mk/result.h"
#include "mk/slot_format.h"

namespace mk::transport {

/// A ring's shape as asked for, and what to call each value in an error: the field or fact it
/// came from ("ChannelOptions::slots", "the SKB's cache_line_size (asserted)").
struct GeometryRequest {
  std::size_t line_size = 0;
  std::string_view line_size_name;
  std::size_t slots = 0;
  std::string_view slots_name;
  std::size_t separation = 0;  ///< 0: the line size.
  std::string_view separation_name;
};

/// The rule every channel's geometry obeys: a line of kMinLineSize to kMaxLineSize bytes, a
/// power of two; slots a power of two from min_slots(line) to kMaxSlots; a separation that is
/// a power of two from the line to kMaxSeparation. invalid_argument names the first value out.
Result<SlotGeometry> derive_geometry(const GeometryRequest& request);

/// derive_geometry for `options` (line size detected when 0), and their NUMA node checked
/// against this host's; errors name the ChannelOptions field.
Result<SlotGeometry> make_geometry(const ChannelOptions& options);

/// Fewest slots a ring of `line_size`-byte slots needs: a kMaxPayload message must fit even
/// while the last quarter ring read is not yet published to the sender.
std::size_t min_slots(std::size_t line_size);

}  // namespace mk::transport
