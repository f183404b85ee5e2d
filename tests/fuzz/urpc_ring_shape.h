// The shape of the urpc ring the urpc fuzz targets hand to a misbehaving peer: 64 slots of 64
// bytes, on no particular NUMA node.
#pragma once

#include "mk/channel.h"
#include "transport/channel_options.h"

namespace mk::fuzz {

/// The geometry of the fuzzed ring, made once.
inline const transport::SlotGeometry& urpc_ring_shape() {
  static const transport::SlotGeometry geometry =
      *transport::make_geometry(ChannelOptions{64, -1, 64});
  return geometry;
}

}  // namespace mk::fuzz
