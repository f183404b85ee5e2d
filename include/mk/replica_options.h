// mk::ReplicaOptions: how a replicated object is kept, and mk::OpId, how an update is named.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "mk/clock.h"
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

  friend bool operator==(const OpId&, const OpId&) = default;
  friend auto operator<=>(const OpId&, const OpId&) = default;
};

}  // namespace mk
