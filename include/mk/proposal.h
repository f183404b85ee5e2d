// mk::Proposal<T>: a split-phase update in flight, awaited for its result.
#pragma once

#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "mk/kernel.h"
#include "mk/result.h"

namespace mk {

/// When an update of Protocol::ordered completes for its proposer. (One-phase and two-phase
/// updates always complete once every member applied them.)
enum class Completion : std::uint8_t {
  local,  ///< Once the proposer's own replica applied it (the default).
  /// Once every member's replica applied it: the sequencer's own commit wave shows it, or,
  /// from another kernel, one more wave over the members (docs/replica.md, step "confirm").
  everywhere,
};

namespace detail {

/// The proposing kernel's record of one proposal: the protocol engine completes it (with a
/// value through the typed state machine, or with an error), and the awaiting task resumes.
/// Touched only by the proposing kernel's thread.
class ProposalStateBase {
 public:
  explicit ProposalStateBase(Kernel& kernel) noexcept : kernel_(&kernel) {}
  virtual ~ProposalStateBase() = default;
  ProposalStateBase(const ProposalStateBase&) = delete;
  ProposalStateBase& operator=(const ProposalStateBase&) = delete;

  /// True once a result or an error is in.
  bool ready() const noexcept { return done_; }
  /// The kernel the proposal was made on.
  Kernel& kernel() const noexcept { return *kernel_; }
  /// Completes with `failure` unless already complete.
  void fail(Error failure) {
    if (done_) return;
    store_error(std::move(failure));
    finish();
  }
  /// Remembers the task to resume when the proposal completes; false (and nothing changes)
  /// when a task already waits.
  bool wait(std::coroutine_handle<> handle) noexcept {
    if (waiter_) return false;
    waiter_ = handle;
    return true;
  }
  /// Keeps a value that arrives from now on, without completing, until release(): the local
  /// replica may apply an update before every other replica has.
  void hold() noexcept { held_ = true; }
  /// Asks that the proposal complete only once every member's replica applied it
  /// (Completion::everywhere); set before the proposal starts.
  void complete_everywhere() noexcept { everywhere_ = true; }
  /// True when complete_everywhere() was asked.
  bool everywhere() const noexcept { return everywhere_; }
  /// Completes with the value kept since hold(), if one arrived; true when it is complete.
  bool release() {
    held_ = false;
    if (kept_ && !done_) finish();
    return done_;
  }

 protected:
  virtual void store_error(Error failure) = 0;
  /// Completes now, or keeps the value for release() while held.
  void complete() {
    if (held_) {
      kept_ = true;
    } else {
      finish();
    }
  }

 private:
  void finish() {
    done_ = true;
    if (waiter_) KernelAccess::make_ready(*kernel_, std::exchange(waiter_, {}));
  }

  Kernel* kernel_;
  std::coroutine_handle<> waiter_;
  bool done_ = false;
  bool held_ = false;
  bool kept_ = false;
  bool everywhere_ = false;
};

/// A proposal whose result is a T.
template <class T>
class ProposalState final : public ProposalStateBase {
 public:
  using ProposalStateBase::ProposalStateBase;

  /// Completes with `value` unless already complete (or keeps it, while held).
  void fulfill(T value) {
    if (ready()) return;
    result_.emplace(std::move(value));
    complete();
  }
  /// The result, moved out; invalid_argument when it was taken before.
  Result<T> take() {
    if (!result_) return error(Errc::invalid_argument, "a Proposal is awaited only once");
    Result<T> out = std::move(*result_);
    result_.reset();
    return out;
  }

 private:
  void store_error(Error failure) override { result_.emplace(std::move(failure)); }

  std::optional<Result<T>> result_;
};

}  // namespace detail

/// A proposal in flight, returned at once by Replicated::propose. `co_await proposal` (on the
/// kernel that proposed, once) gives Result<T>: the result of applying the update on the
/// proposer's replica, or an error: conflict ("aborted: conflict ..."), closed (two_phase:
/// aborted because a member failed before the decision), timed_out, too_large,
/// invalid_argument (not a member, wrong kernel), shutting_down (the kernel stops; also for a
/// task still waiting here then), apply_failed (the state machine or its Codec threw), or the
/// state machine's check() error.
///
/// A Proposal is move-only: it has one result, for one waiter. Awaiting it a second time, from
/// a second task while the first still waits, or after it was moved from gives
/// invalid_argument instead of a result.
template <class T>
class Proposal {
 public:
  /// Wraps the engine's record; made by Replicated::propose.
  explicit Proposal(std::shared_ptr<detail::ProposalState<T>> state) noexcept
      : state_(std::move(state)) {}
  Proposal(const Proposal&) = delete;
  Proposal& operator=(const Proposal&) = delete;
  /// Takes over the proposal; `other` is left empty (awaiting it gives invalid_argument).
  Proposal(Proposal&& other) noexcept = default;
  /// Takes over the proposal; `other` is left empty (awaiting it gives invalid_argument).
  Proposal& operator=(Proposal&& other) noexcept = default;
  ~Proposal() = default;

  /// True once the result (or error) is in, or when this Proposal was moved from; awaiting
  /// then does not suspend.
  bool ready() const noexcept { return !state_ || state_->ready(); }

  /// Suspends until the proposal completes.
  class Awaiter {
   public:
    /// Made by co_await on a Proposal (`state` is null when it was moved from).
    explicit Awaiter(detail::ProposalState<T>* state) noexcept : state_(state) {}
    /// True once the result is in (or there is none to wait for).
    bool await_ready() const noexcept { return state_ == nullptr || state_->ready(); }
    /// Waits for the result; false (no wait) on misuse, reported by await_resume.
    bool await_suspend(std::coroutine_handle<> handle) {
      // Completion resumes through the proposing kernel's ready queue, so a task of another
      // kernel must not wait here.
      if (Kernel::current() != &state_->kernel()) {
        misuse_ = Misuse::other_kernel;
        return false;
      }
      if (!state_->wait(handle)) {
        misuse_ = Misuse::second_waiter;
        return false;
      }
      return true;
    }
    /// The proposal's result, or invalid_argument on misuse.
    Result<T> await_resume() {
      if (state_ == nullptr) {
        return error(Errc::invalid_argument,
                     "this Proposal was moved from; await the one it was moved to");
      }
      switch (misuse_) {
        case Misuse::none:
          break;
        case Misuse::other_kernel:
          return error(Errc::invalid_argument,
                       "a Proposal is awaited on the kernel that proposed it (kernel " +
                           std::to_string(state_->kernel().id()) + ")");
        case Misuse::second_waiter:
          return error(Errc::invalid_argument,
                       "a Proposal has one waiter; another task already awaits it");
      }
      return state_->take();
    }

   private:
    enum class Misuse { none, other_kernel, second_waiter };
    detail::ProposalState<T>* state_;
    Misuse misuse_ = Misuse::none;
  };

  /// `co_await proposal` -> Result<T>.
  Awaiter operator co_await() const noexcept { return Awaiter(state_.get()); }

 private:
  std::shared_ptr<detail::ProposalState<T>> state_;
};

}  // namespace mk
