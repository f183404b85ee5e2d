// mk::CoreLatency: the measured (or asserted) message round trip between two cores.
#pragma once

#include <chrono>

#include "mk/core_id.h"
#include "mk/fact.h"

namespace mk {

/// Message round-trip latency between two cores over a urpc channel. Round trips are
/// symmetric, so one value serves both directions.
struct CoreLatency {
  CoreId a = 0;                              ///< One end.
  CoreId b = 0;                              ///< The other end.
  std::chrono::nanoseconds min{0};           ///< Fastest round trip seen.
  std::chrono::nanoseconds median{0};        ///< Median round trip.
  FactSource source = FactSource::measured;  ///< measured, or asserted by a facts file.
};

}  // namespace mk
