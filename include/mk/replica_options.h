// mk::ReplicaOptions: how a replicated object is kept, and mk::OpId, how an update is named.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "mk/clock.h"
#include "mk/codec.h"
#include "mk/kernel_id.h"
#include "mk/protocol.h"
#include "mk/route.h"

namespace mk {

/// How Replicated<SM>::create keeps an object. Every field is validated at creation; a bad
/// one gives invalid_argument naming it.
struct ReplicaOptions {
  /// The agreement protocol; two_phase needs SM::keys (TwoPhaseStateMachine).
  Protocol protocol = Protocol::ordered;
  /// The shape of the routes updates travel on; the SKB builds them over the members' cores.
  RouteKind route = RouteKind::multicast;
  /// Members at creation, each once; empty: every kernel of the system.
  std::vector<KernelId> kernels;
  /// The sequencer of ordered broadcast, which also coordinates membership changes for every
  /// protocol; it must be a member. Empty: the member on the SKB's central core of the members.
  std::optional<KernelId> sequencer;
  /// A proposal (or read, or membership change phase) not complete by then fails with
  /// timed_out; positive.
  Duration timeout = std::chrono::seconds(5);
  /// Keep, on every replica, the sequence of OpIds it applied (Replicated::history), for tests.
  bool record_history = false;
};

/// Names one update: the kernel that proposed it and its number among that kernel's
/// proposals on the object (from 1).
struct OpId {
  KernelId origin = 0;       ///< The proposing kernel.
  std::uint64_t number = 0;  ///< Its proposals on this object, counted from 1.

  /// Equal when both fields are.
  friend bool operator==(const OpId&, const OpId&) = default;
  /// Ordered by origin, then by number.
  friend auto operator<=>(const OpId&, const OpId&) = default;
};

/// ReplicaOptions in messages: how Replicated::create reaches a kernel process, and how an
/// object's description travels to the kernels that install it.
template <>
struct Codec<ReplicaOptions> {
  /// Appends the options.
  static void encode(const ReplicaOptions& options, std::vector<std::byte>& out) {
    const Fixed fixed{static_cast<std::uint8_t>(options.protocol),
                      static_cast<std::uint8_t>(options.route),
                      static_cast<std::uint8_t>(options.record_history ? 1 : 0),
                      static_cast<std::uint8_t>(options.sequencer ? 1 : 0),
                      options.sequencer.value_or(0),
                      options.timeout.count()};
    Codec<Fixed>::encode(fixed, out);
    Codec<std::vector<KernelId>>::encode(options.kernels, out);
  }
  /// The options; parse_error for bytes that are not some (their values are checked where
  /// they are used, as a user's would be).
  static Result<ReplicaOptions> decode(std::span<const std::byte> bytes) {
    if (bytes.size() < sizeof(Fixed)) {
      return error(Errc::parse_error, "ReplicaOptions: " + std::to_string(bytes.size()) +
                                          " bytes, shorter than its fixed part");
    }
    auto fixed = Codec<Fixed>::decode(bytes.first(sizeof(Fixed)));
    auto kernels = Codec<std::vector<KernelId>>::decode(bytes.subspan(sizeof(Fixed)));
    if (!fixed || !kernels || fixed->record_history > 1 || fixed->has_sequencer > 1) {
      return error(Errc::parse_error, "ReplicaOptions: malformed");
    }
    ReplicaOptions options;
    options.protocol = static_cast<Protocol>(fixed->protocol);
    options.route = static_cast<RouteKind>(fixed->route);
    options.record_history = fixed->record_history == 1;
    if (fixed->has_sequencer == 1) options.sequencer = fixed->sequencer;
    options.timeout = Duration(fixed->timeout);
    options.kernels = std::move(kernels).value();
    return options;
  }

 private:
  struct Fixed {
    std::uint8_t protocol;
    std::uint8_t route;
    std::uint8_t record_history;
    std::uint8_t has_sequencer;
    KernelId sequencer;
    Duration::rep timeout;
  };
};

}  // namespace mk
