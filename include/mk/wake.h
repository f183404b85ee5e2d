// mk::WakeMechanism and mk::WakeCost: how one kernel wakes another that sleeps, and what a
// wake costs on this machine.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "mk/fact.h"

namespace mk {

/// How a kernel that publishes work wakes a kernel asleep in its idle wait
/// (docs/runtime.md, "Wake mechanisms").
enum class WakeMechanism : std::uint8_t {
  /// The waker writes the sleeper's eventfd; the sleeper reads it in io_uring, or ppolls it.
  eventfd,
  /// The waker does FUTEX_WAKE on a word of the sleeper's doorbell; the sleeper waits on the
  /// word with IORING_OP_FUTEX_WAIT in io_uring, or in futex(2) when io_uring cannot (then it
  /// cannot also watch a descriptor, so kernel processes cannot use it).
  futex,
  /// The waker posts a completion into the sleeper's io_uring (IORING_OP_MSG_RING). Kernels
  /// that are threads only.
  msg_ring,
};

/// Every mechanism, in the order of the enumeration.
inline constexpr std::array<WakeMechanism, 3> kWakeMechanisms = {
    WakeMechanism::eventfd, WakeMechanism::futex, WakeMechanism::msg_ring};

/// "eventfd", "futex" or "msg_ring".
std::string_view to_string(WakeMechanism mechanism) noexcept;

/// The mechanism named `name` (as to_string gives it), if any.
std::optional<WakeMechanism> wake_mechanism_named(std::string_view name) noexcept;

/// The cost of one wake by `mechanism`: from the waker's notification to the sleeper running
/// again, on the live machine (measured) or as a facts file says (asserted).
struct WakeCost {
  WakeMechanism mechanism = WakeMechanism::eventfd;  ///< Which mechanism.
  std::chrono::nanoseconds min{0};                   ///< Fastest wake seen.
  std::chrono::nanoseconds median{0};                ///< Median wake.
  FactSource source = FactSource::measured;          ///< measured, or asserted.
};

}  // namespace mk
