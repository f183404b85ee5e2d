// What a user's replicated state machine is.
#pragma once

#include <concepts>
#include <cstdint>
#include <vector>

#include "mk/codec.h"
#include "mk/result.h"

namespace mk {

/// The user's deterministic state machine:
///
///     struct Counter {
///       struct Op { std::int64_t add; };  // trivially copyable, or with a Codec<Op>
///       using Result = std::int64_t;       // what apply returns to the proposer
///       std::int64_t value = 0;
///       Result apply(const Op& op) { return value += op.add; }  // deterministic: no I/O, no clock
///     };
///
/// It is copy-constructible, and it and its Op have a Codec (the initial state and a joining
/// kernel's copy travel as bytes). Optional for every protocol:
/// `mk::Result<void> check(const Op&) const` validates an operation before it is applied (at
/// prepare for two_phase, at apply for ordered, at the proposer for one_phase); an error
/// aborts it everywhere with that error and nothing is applied.
template <class SM>
concept StateMachine = requires {
  typename SM::Op;
  typename SM::Result;
}
&&std::copy_constructible<SM>&& std::move_constructible<typename SM::Result>&& Encodable<SM>&&
    Encodable<typename SM::Op>&& requires(SM& machine, const typename SM::Op& op) {
  { machine.apply(op) } -> std::convertible_to<typename SM::Result>;
};

/// A state machine usable with Protocol::two_phase: it says which keys an operation touches
/// (`void keys(const Op&, std::vector<std::uint64_t>& out) const`, appending). Operations with
/// disjoint keys must commute; two transactions sharing a key conflict.
template <class SM>
concept TwoPhaseStateMachine = StateMachine<SM> &&
    requires(const SM& machine, const typename SM::Op& op, std::vector<std::uint64_t>& out) {
  machine.keys(op, out);
};

/// A state machine with the optional `Result<void> check(const Op&) const`.
template <class SM>
concept CheckedStateMachine = StateMachine<SM> &&
    requires(const SM& machine, const typename SM::Op& op) {
  { machine.check(op) } -> std::same_as<mk::Result<void>>;
};

}  // namespace mk
