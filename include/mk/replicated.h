// mk::Replicated<SM>: a user's state machine with a replica on every member kernel.
#pragma once

#include <concepts>
#include <coroutine>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mk/kernel.h"
#include "mk/proposal.h"
#include "mk/protocol.h"
#include "mk/replica_engine.h"
#include "mk/replica_options.h"
#include "mk/result.h"
#include "mk/state_machine.h"
#include "mk/system.h"
#include "mk/task.h"

namespace mk {

template <StateMachine SM>
class Replicated;

namespace detail {

/// Runs user code `f` (a state machine's method, a Codec), turning an exception it throws into
/// apply_failed naming `what`: user code that throws fails its operation, never the kernel.
template <class F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (...) {
    return error(Errc::apply_failed,
                 std::string(what) + " threw " + describe_exception(std::current_exception()));
  }
}

/// The engine's view of one replica of SM. Every call into the user's code is guarded: an
/// exception becomes apply_failed (docs/replica.md, "User code that throws").
template <StateMachine SM>
class TypedMachine final : public ErasedMachine {
 public:
  using Op = typename SM::Op;
  using OpResult = typename SM::Result;

  explicit TypedMachine(SM machine) : machine_(std::move(machine)) {}

  static Result<std::unique_ptr<ErasedMachine>> make(std::span<const std::byte> state) {
    return guarded("decoding the state", [&]() -> Result<std::unique_ptr<ErasedMachine>> {
      auto decoded = Codec<SM>::decode(state);
      if (!decoded) return std::move(decoded).error();
      return std::unique_ptr<ErasedMachine>(new TypedMachine(std::move(*decoded)));
    });
  }

  Result<void> check(std::span<const std::byte> op) const override {
    return guarded("check", [&]() -> Result<void> {
      auto decoded = Codec<Op>::decode(op);
      if (!decoded) return std::move(decoded).error();
      return check_decoded(*decoded);
    });
  }

  Result<void> keys(std::span<const std::byte> op, std::vector<std::uint64_t>& out) const override {
    if constexpr (TwoPhaseStateMachine<SM>) {
      return guarded("keys", [&]() -> Result<void> {
        auto decoded = Codec<Op>::decode(op);
        if (!decoded) return std::move(decoded).error();
        machine_.keys(*decoded, out);
        return {};
      });
    } else {
      return error(Errc::invalid_argument, "the state machine has no keys()");
    }
  }

  Result<void> apply(std::span<const std::byte> op, bool checked,
                     ProposalStateBase* sink) override {
    auto decoded = guarded("decoding the operation", [&]() { return Codec<Op>::decode(op); });
    if (!decoded) return std::move(decoded).error();
    if (checked) {
      auto valid = guarded("check", [&]() { return check_decoded(*decoded); });
      if (!valid) return valid;
    }
    auto result = guarded("apply", [&]() -> Result<OpResult> { return machine_.apply(*decoded); });
    if (!result) return std::move(result).error();
    if (sink != nullptr) static_cast<ProposalState<OpResult>*>(sink)->fulfill(std::move(*result));
    return {};
  }

  Result<void> snapshot(std::vector<std::byte>& out) const override {
    return guarded("encoding the state", [&]() -> Result<void> {
      Codec<SM>::encode(machine_, out);
      return {};
    });
  }
  const void* state() const noexcept override { return &machine_; }

 private:
  Result<void> check_decoded(const Op& op) const {
    if constexpr (CheckedStateMachine<SM>) {
      return machine_.check(op);
    } else {
      (void)op;
      return {};
    }
  }

  SM machine_;
};

/// SM's number (register_machine), given while the program starts.
template <StateMachine SM>
inline const std::uint32_t kMachineTypeId = register_machine(MachineType{&TypedMachine<SM>::make,
                                                                         TwoPhaseStateMachine<SM>});

/// The task Replicated::create runs on a kernel; it captures nothing, so it also runs in a
/// kernel process.
template <StateMachine SM>
struct CreateReplicated {
  Task<Result<Replicated<SM>>> operator()(Kernel& kernel, SM initial,
                                          ReplicaOptions options) const {
    return Replicated<SM>::create_async(kernel, std::move(initial), std::move(options));
  }
};

}  // namespace detail

namespace detail {

/// F is a function of a replica's state, for Replicated::read and local.
template <class F, class SM>
concept ReadsState = requires(std::decay_t<F> f, const SM& state) {
  std::invoke(f, state);
};

}  // namespace detail

/// A user's deterministic state machine SM (mk/state_machine.h) kept on every member kernel
/// of a System. Updates go through the agreement protocol of ReplicaOptions::protocol and are
/// split-phase (propose returns at once, the result arrives later); reads are served from the
/// calling kernel's replica without sending a message. docs/replica.md has the protocols, their
/// guarantees and membership.
///
/// A Replicated is a small copyable handle (the object's id and its immutable description),
/// safe to copy into tasks on any kernel of its System; valid while the System is.
template <StateMachine SM>
class Replicated {
 public:
  /// The operation type.
  using Op = typename SM::Op;
  /// What applying an operation returns to its proposer.
  using OpResult = typename SM::Result;

  /// What a read with `f` gives: f's result, by value.
  template <class F>
  using ReadResult = std::decay_t<std::invoke_result_t<F&, const SM&>>;

  /// `co_await r.read(k, f)` -> Result<ReadResult<F>>.
  template <class F>
  class ReadAwaiter {
   public:
    // The object by reference: the handle outlives the co_await expression, and copying its
    // shared_ptr would make every read bounce the count's cache line between kernels.
    /// Made by Replicated::read.
    ReadAwaiter(Kernel& kernel, const detail::ObjectInfo& object, F f)
        : kernel_(kernel), object_(object), f_(std::move(f)) {}
    /// True when the replica can be read at once.
    bool await_ready() { return detail::read_now(kernel_, object_, waiter_); }
    /// Waits until the replica has applied what the read must see.
    void await_suspend(std::coroutine_handle<> handle) {
      waiter_.handle = handle;
      detail::wait_read(kernel_, object_, waiter_);
    }
    /// f's result on the replica, or the read's error.
    Result<ReadResult<F>> await_resume() {
      if (waiter_.error) return std::move(*waiter_.error);
      // f runs now, in the reading task's turn, so the state cannot change under it.
      if constexpr (std::is_void_v<ReadResult<F>>) {
        std::invoke(f_, *static_cast<const SM*>(waiter_.state));
        return {};
      } else {
        return std::invoke(f_, *static_cast<const SM*>(waiter_.state));
      }
    }

   private:
    Kernel& kernel_;
    const detail::ObjectInfo& object_;
    F f_;
    detail::ReadWaiter waiter_;
  };

  /// From outside the kernels (blocks, like System::run): puts a copy of `initial` on every
  /// member kernel. Errors name the bad option (invalid_argument), or are System::run's.
  static Result<Replicated> create(System& system, SM initial, ReplicaOptions options = {}) {
    KernelId host = 0;
    if (!options.kernels.empty() && options.kernels.front() < system.size()) {
      host = options.kernels.front();
    }
    auto made =
        system.run(host, detail::CreateReplicated<SM>{}, std::move(initial), std::move(options));
    if (!made) return std::move(made).error();
    return std::move(*made);
  }

  /// Same as create, from a task on any kernel of the system; nothing blocks (usable under the
  /// simulator).
  static Task<Result<Replicated>> create_async(Kernel& k, SM initial, ReplicaOptions options = {}) {
    detail::ObjectSpec spec;
    spec.options = std::move(options);
    spec.machine_type = detail::kMachineTypeId<SM>;
    auto encoded = detail::guarded("encoding the initial state", [&]() -> Result<void> {
      Codec<SM>::encode(initial, spec.state);
      return {};
    });
    if (!encoded) co_return std::move(encoded).error();
    auto made = co_await detail::create_object(k, std::move(spec));
    if (!made) co_return std::move(made).error();
    co_return Replicated(std::move(*made));
  }

  /// Split-phase update from a task on member kernel `k`: starts agreement and returns at
  /// once. An operation whose encoding is over max_op_size() gives too_large at once, one
  /// whose Codec throws apply_failed.
  Proposal<OpResult> propose(Kernel& k, const Op& op) const {
    return start(k, op, Completion::local);
  }
  /// propose(k, op), completing as `completion` says (Protocol::ordered; the other protocols
  /// complete once every member applied the update either way).
  Proposal<OpResult> propose(Kernel& k, const Op& op, Completion completion) const {
    return start(k, op, completion);
  }
  /// propose(k, op) for a temporary operation (refused when the compiler is GCC 12 and Op has a
  /// destructor: see detail::kTemporaryIsSafe).
  Proposal<OpResult> propose(Kernel& k, Op&& op) const
      requires(!std::is_trivially_destructible_v<Op>) {
    static_assert(detail::kTemporaryIsSafe<Op>,
                  "GCC 12 destroys this temporary twice inside co_await: put the operation in a "
                  "variable first (docs/runtime.md, \"GCC 12 and co_await\")");
    return start(k, op, Completion::local);
  }

  /// `f(state)` on the calling kernel's replica as it is now, by value (no message; the state
  /// may not yet show updates agreed but not yet applied here). invalid_argument when `k` is
  /// not a member. f's result is copied out, so it must not point into the state: the replica
  /// changes as soon as the calling task lets the kernel run anything else.
  template <detail::ReadsState<SM> F>
  Result<ReadResult<F>> local(Kernel& k, F f) const {
    static_assert(!std::is_pointer_v<ReadResult<F>>,
                  "a read returns a value: a pointer into the replica dangles once the task "
                  "suspends");
    auto state = detail::local_state(k, *object_);
    if (!state) return std::move(state).error();
    if constexpr (std::is_void_v<ReadResult<F>>) {
      std::invoke(f, *static_cast<const SM*>(*state));
      return {};
    } else {
      return std::invoke(f, *static_cast<const SM*>(*state));
    }
  }

  /// `co_await r.read(k, f)` -> Result<ReadResult<F>>: `f(state)` on the local replica once it
  /// has applied every update it had seen prepared when the read began; no message is sent.
  /// With ordered and two_phase this makes reads linearizable (docs/replica.md says why); with
  /// one_phase it is local(k, f). f runs in the reading task and its result is copied out (as
  /// for local). Errors: invalid_argument (not a member), timed_out.
  template <detail::ReadsState<SM> F>
  ReadAwaiter<std::decay_t<F>> read(Kernel& k, F&& f) const {
    static_assert(!std::is_pointer_v<ReadResult<std::decay_t<F>>>,
                  "a read returns a value: a pointer into the replica dangles once the task "
                  "suspends");
    static_assert(std::is_lvalue_reference_v<F> || detail::kTemporaryIsSafe<std::decay_t<F>>,
                  "GCC 12 destroys a temporary with a destructor twice inside co_await: capture "
                  "by reference in the read's function, or put it in a variable first "
                  "(docs/runtime.md, \"GCC 12 and co_await\")");
    return ReadAwaiter<std::decay_t<F>>(k, *object_, std::forward<F>(f));
  }

  /// Adds kernel `joiner`, from a task on any kernel: it gets a copy of the state, then serves
  /// reads and takes part in agreement. Proposals in flight finish first; new ones wait.
  Task<Result<void>> join(Kernel& k, KernelId joiner) const {
    return detail::change_membership(k, object_, true, joiner);
  }
  /// Removes kernel `leaver`, from a task on any kernel, once what it started has finished.
  /// Afterwards, proposals and reads on it fail with invalid_argument.
  Task<Result<void>> leave(Kernel& k, KernelId leaver) const {
    return detail::change_membership(k, object_, false, leaver);
  }
  /// Current members as `k`'s replica knows them, in increasing order.
  std::vector<KernelId> members(Kernel& k) const { return detail::members(k, *object_); }

  /// Number of updates `k`'s replica has applied.
  std::uint64_t applied(Kernel& k) const { return detail::applied_count(k, *object_); }
  /// The updates `k`'s replica applied, in order; empty unless options.record_history.
  std::vector<OpId> history(Kernel& k) const { return detail::history(k, *object_); }

  /// The options the object was created with (validated; kernels sorted).
  const ReplicaOptions& options() const noexcept { return object_->options; }
  /// The largest encoded operation a proposal may carry.
  static std::size_t max_op_size() noexcept { return detail::max_op_size(); }

 private:
  friend struct Codec<Replicated>;

  Proposal<OpResult> start(Kernel& k, const Op& op, Completion completion) const {
    auto state = std::make_shared<detail::ProposalState<OpResult>>(k);
    if (completion == Completion::everywhere) state->complete_everywhere();
    std::vector<std::byte> bytes;
    auto encoded = detail::guarded("encoding the operation", [&]() -> Result<void> {
      Codec<Op>::encode(op, bytes);
      return {};
    });
    if (encoded) {
      detail::propose(k, *object_, std::move(bytes), state);
    } else {
      state->fail(std::move(encoded).error());
    }
    return Proposal<OpResult>(std::move(state));
  }

  explicit Replicated(detail::ObjectRef object) noexcept : object_(std::move(object)) {}

  detail::ObjectRef object_;
};

/// A handle in messages: a kernel process receives it as an argument of System::run, and
/// the program gets it back as the value of Replicated::create. It names the object; decoded in
/// a kernel it is that kernel's own view of the object (detail::decode_handle).
template <StateMachine SM>
struct Codec<Replicated<SM>> {
  /// Appends the object's id, type and options.
  static void encode(const Replicated<SM>& handle, std::vector<std::byte>& out) {
    detail::encode_handle(*handle.object_, out);
  }
  /// The handle; parse_error for bytes naming no object of SM, not_found for an object the
  /// decoding kernel has not installed.
  static Result<Replicated<SM>> decode(std::span<const std::byte> bytes) {
    auto object = detail::decode_handle(bytes, detail::kMachineTypeId<SM>);
    if (!object) return std::move(object).error();
    return Replicated<SM>(std::move(object).value());
  }
};

}  // namespace mk
