// A linearizability checker for recorded concurrent histories (test support).
//
// Wing & Gong's search with Lowe's memoisation (as in Knossos and Porcupine): walk the history's
// call and return events in stamp order, try to linearize each operation that is open at the
// earliest pending return, backtrack when an operation's return is reached before it could be
// linearized, and never explore the same (set of linearized operations, model state) twice.
// check_partitioned adds P-compositionality: a history whose operations each touch one key of a
// model that treats keys independently is linearizable iff each key's sub-history is, so each
// is checked alone, which keeps thousands of operations tractable.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "mk/result.h"

namespace mk::test::lin {

/// One completed (or abandoned) operation of a history. Stamps are any totally ordered
/// counters, e.g. a global atomic bumped right before the operation starts and right after
/// its result is known: then a return stamp below another operation's call stamp means the
/// first really ended before the second began. Equal stamps count as overlapping.
template <class Input, class Output>
struct Operation {
  std::uint32_t client = 0;      ///< Who ran it; only for messages.
  Input input{};                 ///< What was asked.
  std::optional<Output> output;  ///< What came back; nullopt when the outcome is unknown (e.g.
                                 ///< timed out): it may have taken effect at any time after
                                 ///< `invoked`, or never.
  std::uint64_t invoked = 0;     ///< Stamp taken before the operation started.
  std::uint64_t returned = 0;    ///< Stamp taken after it ended; ignored without an output.
};

/// A sequential specification: `step(state, input)` gives the state after the operation and the
/// output a sequential object would have returned. States and outputs compare with ==; `hash`
/// hashes a state (for the memo); the describe functions make the witness readable.
template <class M>
concept Model = requires(const M& m, const typename M::State& s, const typename M::Input& in,
                         const typename M::Output& out) {
  { m.initial() } -> std::convertible_to<typename M::State>;
  { m.step(s, in) } -> std::convertible_to<std::pair<typename M::State, typename M::Output>>;
  { s == s } -> std::convertible_to<bool>;
  { out == out } -> std::convertible_to<bool>;
  { m.hash(s) } -> std::convertible_to<std::size_t>;
  { m.describe_input(in) } -> std::convertible_to<std::string>;
  { m.describe_output(out) } -> std::convertible_to<std::string>;
  { m.describe_state(s) } -> std::convertible_to<std::string>;
};

/// A model whose operations each touch the one key `partition(input)` returns (any type with
/// operator<), and whose keys are independent: the state is a map from key to a per-key state
/// that starts as initial(). Then `step` and `initial` describe one key's object.
template <class M>
concept PartitionedModel = Model<M> && requires(const M& m, const typename M::Input& in) {
  m.partition(in);
  { m.partition(in) < m.partition(in) } -> std::convertible_to<bool>;
  { m.describe_key(m.partition(in)) } -> std::convertible_to<std::string>;
};

/// How many pairs of operations of different clients overlap in time: a linearizability test
/// is only as strong as this.
template <class Input, class Output>
std::size_t overlapping_pairs(const std::vector<Operation<Input, Output>>& history) {
  std::size_t pairs = 0;
  for (std::size_t a = 0; a < history.size(); ++a) {
    for (std::size_t b = a + 1; b < history.size(); ++b) {
      if (history[a].client != history[b].client && history[a].invoked < history[b].returned &&
          history[b].invoked < history[a].returned) {
        ++pairs;
      }
    }
  }
  return pairs;
}

/// How a check ended.
enum class Outcome {
  linearizable,      ///< `order` is a valid linearization.
  not_linearizable,  ///< No linearization exists; `failed` and `explanation` say where.
  gave_up,           ///< The search passed CheckOptions::max_states first.
};

/// The verdict on a history, with a witness when it is not linearizable.
struct Verdict {
  Outcome outcome = Outcome::linearizable;
  /// linearizable: indices of operations in a valid linearization order (for a partitioned
  /// check, each key's order, keys in ascending order). Abandoned operations appear only if
  /// they had to take effect.
  std::vector<std::size_t> order;
  /// not_linearizable: the operation whose return came before any linearization could include
  /// it, first, then the other operations open at that point (the candidates that did not fit).
  std::vector<std::size_t> failed;
  /// not_linearizable: the longest prefix of a linearization the search found.
  std::vector<std::size_t> prefix;
  /// Readable witness: the blocking operation, the prefix, the state after it, and what each
  /// candidate would have returned there compared with what it did return.
  std::string explanation;
  /// (linearized set, state) pairs explored.
  std::size_t explored = 0;

  bool ok() const noexcept { return outcome == Outcome::linearizable; }
};

/// Limits on the search.
struct CheckOptions {
  /// Explored (set, state) pairs per checked (sub-)history before giving up.
  std::size_t max_states = 20'000'000;
};

namespace detail {

/// A fixed-size set of operation indices: the "linearized" part of a memo key.
class Bitset {
 public:
  explicit Bitset(std::size_t size) : words_((size + 63) / 64, 0) {}
  void set(std::size_t i) noexcept { words_[i / 64] |= std::uint64_t{1} << (i % 64); }
  void reset(std::size_t i) noexcept { words_[i / 64] &= ~(std::uint64_t{1} << (i % 64)); }
  std::size_t hash() const noexcept;
  bool operator==(const Bitset&) const = default;

 private:
  std::vector<std::uint64_t> words_;
};

/// The history's events as a doubly linked list in stamp order (calls before returns at equal
/// stamps), from which a linearized operation's two events are lifted and later put back in
/// place (dancing links).
class EventList {
 public:
  /// One call event per operation, and a return event for those with `has_return[i]`.
  /// invalid_argument when an operation returns before it is invoked.
  static Result<EventList> make(const std::vector<std::uint64_t>& invoked,
                                const std::vector<std::uint64_t>& returned,
                                const std::vector<bool>& has_return);

  /// The sentinel: first() follows it, and next() of the last event is it.
  std::size_t end() const noexcept { return sentinel_; }
  std::size_t first() const noexcept { return next_[sentinel_]; }
  std::size_t next(std::size_t event) const noexcept { return next_[event]; }
  bool is_call(std::size_t event) const noexcept { return match_[event] != kReturnTag; }
  /// The operation an event belongs to.
  std::size_t op(std::size_t event) const noexcept { return op_[event]; }
  /// Removes a call event and its return event, if any.
  void lift(std::size_t call) noexcept;
  /// Undoes the latest lift, which must have been of `call`.
  void unlift(std::size_t call) noexcept;

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  static constexpr std::size_t kReturnTag = static_cast<std::size_t>(-2);
  void unlink(std::size_t event) noexcept;
  void relink(std::size_t event) noexcept;

  std::size_t sentinel_ = 0;
  std::vector<std::size_t> next_, prev_;
  std::vector<std::size_t> op_;
  std::vector<std::size_t> match_;  // call: its return event or kNone; return: kReturnTag
};

/// "#i (client c) input -> output [invoked, returned]".
template <Model M>
std::string describe_op(const M& model, const Operation<typename M::Input, typename M::Output>& op,
                        std::size_t index) {
  std::string text = "#" + std::to_string(index) + " (client " + std::to_string(op.client) + ") " +
                     model.describe_input(op.input) + " -> ";
  if (op.output) {
    text += model.describe_output(*op.output) + " [" + std::to_string(op.invoked) + ", " +
            std::to_string(op.returned) + "]";
  } else {
    text += "unknown [" + std::to_string(op.invoked) + ", never]";
  }
  return text;
}

/// Memo entry: the linearized set and the state it led to.
template <class State>
struct Seen {
  Bitset linearized;
  State state;
  bool operator==(const Seen&) const = default;
};

template <Model M>
struct SeenHash {
  const M* model;
  std::size_t operator()(const Seen<typename M::State>& seen) const noexcept {
    return seen.linearized.hash() * 31 + model->hash(seen.state);
  }
};

}  // namespace detail

namespace detail {

/// The search over `history`; `labels[i]` is the index operation i is reported under.
template <Model M>
Result<Verdict> search(const M& model,
                       const std::vector<Operation<typename M::Input, typename M::Output>>& history,
                       const std::vector<std::size_t>& labels, const CheckOptions& options) {
  using State = typename M::State;
  const std::size_t n = history.size();
  std::vector<std::uint64_t> invoked(n), returned(n);
  std::vector<bool> has_return(n);
  std::size_t returns_left = 0;
  for (std::size_t i = 0; i < n; ++i) {
    invoked[i] = history[i].invoked;
    returned[i] = history[i].returned;
    has_return[i] = history[i].output.has_value();
    if (has_return[i]) ++returns_left;
  }
  auto made = EventList::make(invoked, returned, has_return);
  if (!made.ok()) return std::move(made).error();
  EventList& events = *made;

  struct Frame {
    std::size_t call;
    State before;
  };
  std::vector<Frame> stack;
  std::unordered_set<Seen<State>, SeenHash<M>> memo(0, SeenHash<M>{&model});
  Bitset linearized(n);
  State state = model.initial();
  Verdict verdict;

  // The deepest dead end, for the witness.
  std::optional<std::size_t> best_blocked;
  std::vector<std::size_t> best_prefix, best_open;
  std::optional<State> best_state;

  std::size_t event = events.first();
  while (returns_left > 0) {
    if (events.is_call(event)) {
      const std::size_t i = events.op(event);
      auto [after, expected] = model.step(state, history[i].input);
      if (!history[i].output || expected == *history[i].output) {
        linearized.set(i);
        if (memo.insert(Seen<State>{linearized, after}).second) {
          if (++verdict.explored > options.max_states) {
            verdict.outcome = Outcome::gave_up;
            verdict.explanation = "gave up after exploring " + std::to_string(options.max_states) +
                                  " states of " + std::to_string(n) + " operations";
            return verdict;
          }
          stack.push_back(Frame{event, std::move(state)});
          state = std::move(after);
          if (history[i].output) --returns_left;
          events.lift(event);
          event = events.first();
          continue;
        }
        linearized.reset(i);
      }
      event = events.next(event);
      continue;
    }
    // A return reached with its operation not linearized: this branch is dead.
    if (!best_blocked || stack.size() > best_prefix.size()) {
      best_blocked = events.op(event);
      best_prefix.clear();
      for (const Frame& frame : stack)
        best_prefix.push_back(events.op(frame.call));
      best_open.clear();
      for (std::size_t e = events.first(); e != event; e = events.next(e)) {
        if (events.is_call(e)) best_open.push_back(events.op(e));
      }
      best_state = state;
    }
    if (stack.empty()) {
      verdict.outcome = Outcome::not_linearizable;
      std::vector<std::size_t> failed{*best_blocked};
      for (std::size_t i : best_open) {
        if (i != *best_blocked) failed.push_back(i);
      }
      std::string& text = verdict.explanation;
      text = "operation " + describe_op(model, history[*best_blocked], labels[*best_blocked]) +
             " returned before any linearization could include it.\nLongest linearizable prefix (" +
             std::to_string(best_prefix.size()) + " ops):";
      for (std::size_t i : best_prefix) {
        text += "\n  " + describe_op(model, history[i], labels[i]);
        verdict.prefix.push_back(labels[i]);
      }
      text += "\nState after it: " + model.describe_state(*best_state) +
              "\nOperations open there, and what each would return:";
      for (std::size_t i : failed) {
        auto expected = model.step(*best_state, history[i].input).second;
        text += "\n  " + describe_op(model, history[i], labels[i]) +
                " (would return: " + model.describe_output(expected) + ")";
        verdict.failed.push_back(labels[i]);
      }
      return verdict;
    }
    Frame frame = std::move(stack.back());
    stack.pop_back();
    state = std::move(frame.before);
    const std::size_t i = events.op(frame.call);
    linearized.reset(i);
    if (history[i].output) ++returns_left;
    events.unlift(frame.call);
    event = events.next(frame.call);
  }
  for (const Frame& frame : stack)
    verdict.order.push_back(labels[events.op(frame.call)]);
  return verdict;
}

}  // namespace detail

/// Checks `history` against `model`. invalid_argument when an operation's return stamp is
/// below its call stamp. Operation indices in the verdict index `history`.
template <Model M>
Result<Verdict> check(const M& model,
                      const std::vector<Operation<typename M::Input, typename M::Output>>& history,
                      const CheckOptions& options = {}) {
  std::vector<std::size_t> labels(history.size());
  for (std::size_t i = 0; i < labels.size(); ++i)
    labels[i] = i;
  return detail::search(model, history, labels, options);
}

/// Checks each key's sub-history of `history` alone (P-compositionality). The first key that
/// is not linearizable (or where the search gave up) decides the verdict, whose explanation
/// then names the key; indices always index `history`.
template <PartitionedModel M>
Result<Verdict> check_partitioned(
    const M& model, const std::vector<Operation<typename M::Input, typename M::Output>>& history,
    const CheckOptions& options = {}) {
  using Op = Operation<typename M::Input, typename M::Output>;
  using Key = std::remove_cvref_t<decltype(model.partition(history.front().input))>;
  std::map<Key, std::vector<std::size_t>> by_key;
  for (std::size_t i = 0; i < history.size(); ++i) {
    by_key[model.partition(history[i].input)].push_back(i);
  }
  Verdict total;
  for (const auto& [key, indices] : by_key) {
    std::vector<Op> part;
    part.reserve(indices.size());
    for (std::size_t i : indices)
      part.push_back(history[i]);
    auto verdict = detail::search(model, part, indices, options);
    if (!verdict.ok()) return std::move(verdict).error();
    total.explored += verdict->explored;
    if (!verdict->ok()) {
      verdict->explanation = "key " + model.describe_key(key) + ": " + verdict->explanation;
      verdict->explored = total.explored;
      return verdict;
    }
    total.order.insert(total.order.end(), verdict->order.begin(), verdict->order.end());
  }
  return total;
}

}  // namespace mk::test::lin
