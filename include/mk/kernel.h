// mk::Kernel: the per-core event loop, its tasks, timers, messages and handlers.
#pragma once

#include <array>
#include <bit>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "mk/clock.h"
#include "mk/core_id.h"
#include "mk/executor.h"
#include "mk/fan_out.h"
#include "mk/function_ref.h"
#include "mk/kernel_id.h"
#include "mk/kernel_stats.h"
#include "mk/message_codec.h"
#include "mk/result.h"
#include "mk/task.h"

namespace mk {

class Kernel;
class Dispatcher;
class Skb;

namespace runtime {
class KernelCore;
class KernelProcess;
struct Fabric;
}  // namespace runtime

/// What a handler knows besides the message: the kernel running it and the sender.
struct MessageContext {
  Kernel& kernel;  ///< The kernel the handler runs on.
  KernelId from;   ///< The kernel that sent the message.
};

namespace detail {

/// A task suspended inside a kernel, and how the operation it waits for ended.
struct Waiter {
  std::coroutine_handle<> handle;  ///< Resumed (through the ready queue) when done.
  std::optional<Error> error;      ///< Empty on success.
};

/// A call waiting for its reply.
struct PendingCall : Waiter {
  std::span<std::byte> reply;  ///< Where the reply's bytes go.
  /// True when the reply is exactly reply.size() bytes (a Bytewise reply); false when it may
  /// be shorter (an encoded one), its length then going to reply_length.
  bool exact = true;
  std::size_t reply_length = 0;  ///< How many bytes of `reply` the reply filled.
};

/// False for a type whose temporaries GCC 12 destroys twice when they are part of a co_await
/// expression (any type with a destructor; seen with GCC 12.2, while clang is right). The
/// calls that build an awaitable from a value refuse such a temporary at compile time, with a
/// static_assert that names the fix, instead of letting it corrupt the heap.
template <class T>
inline constexpr bool kTemporaryIsSafe =
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
    std::is_trivially_destructible_v<T>;
#else
    true;
#endif

/// invalid_argument for a user's message type in the range mk's layers reserve, naming `what`
/// refused it. (Callers test is_reserved_message_type first, inline: for a type known at
/// compile time the test costs nothing on the send path.)
Error reserved_type_error(MessageType type, const char* what);

/// The runtime's side of a registered handler: decodes one message and runs the user's code.
class HandlerBase {
 public:
  virtual ~HandlerBase() = default;
  /// Handles one message from `from`; `call_id` is nonzero when the sender waits for a reply.
  virtual void on_message(Kernel& kernel, KernelId from, std::uint32_t call_id,
                          std::span<const std::byte> payload) = 0;
};

/// The kernel operations the templates below are built on; defined in the runtime.
struct KernelAccess {
  /// Sends or queues; true when `waiter` was suspended (it is resumed when the message went).
  static bool send(Kernel& kernel, KernelId to, MessageType type,
                   std::span<const std::byte> payload, Waiter& waiter);
  /// Sends without suspending: into the ring when it has room and nothing waits before it,
  /// otherwise queued behind what waits (in order) and sent as room appears. For layers that
  /// send from handlers, which must not wait. Errors at once: as for send; a message queued and
  /// lost later (its receiver failed, the kernel stopped) is counted and logged as a failure
  /// nobody waits for.
  static Result<void> post(Kernel& kernel, KernelId to, MessageType type,
                           std::span<const std::byte> payload);
  /// Posts the same message to each of `fan_out.sends`, in order, as post() does, and tells
  /// the executor where the route wants the buffers (Executor::begin_fan_out).
  /// `on_failure(to, error)` hears each post that failed; the others are unaffected.
  static void post_fan_out(Kernel& kernel, const FanOut& fan_out, MessageType type,
                           std::span<const std::byte> payload,
                           FunctionRef<void(KernelId, const Error&)> on_failure);
  /// Starts a call; true when `call` was suspended until its reply, deadline or shutdown.
  static bool call(Kernel& kernel, KernelId to, MessageType type,
                   std::span<const std::byte> payload, PendingCall& call,
                   const std::optional<Duration>& timeout);
  /// Resumes `waiter` once the kernel's clock reads `when`.
  static void sleep_until(Kernel& kernel, Instant when, Waiter& waiter);
  /// Withdraws the sleep `waiter` is in (its task stays suspended, to be resumed or given a
  /// new sleep by the caller); false when it had none. A withdrawn sleep no longer keeps the
  /// kernel's next deadline.
  static bool cancel_sleep(Kernel& kernel, const Waiter& waiter);
  /// Queues `handle` to run in the kernel's next ready step.
  static void make_ready(Kernel& kernel, std::coroutine_handle<> handle);
  /// Registers `handler` for `type`; already_exists when it has one.
  static Result<void> add_handler(Kernel& kernel, MessageType type,
                                  std::unique_ptr<HandlerBase> handler);
  /// Answers call `call_id` of kernel `to` with `payload`.
  static void reply(Kernel& kernel, KernelId to, std::uint32_t call_id, MessageType type,
                    std::span<const std::byte> payload);
  /// Answers call `call_id` of kernel `to` with `failure`.
  static void reply_error(Kernel& kernel, KernelId to, std::uint32_t call_id, MessageType type,
                          const Error& failure);
  /// The kernel's extension registered under `key`, or nullptr.
  static void* find_extension(Kernel& kernel, const void* key) noexcept;
  /// Gives the kernel an extension under `key`, destroyed by `destroy` after the kernel's tasks.
  static void add_extension(Kernel& kernel, const void* key, void* extension,
                            void (*destroy)(void*));
  /// Counts and logs a failure nobody waits for (a one-way handler that threw).
  static void note_failure(Kernel& kernel, const std::string& what);
  /// Resumes `waiter` once kernel `peer` has failed (with no error), went offline without
  /// failing (`closed`), or this kernel stops (`shutting_down`); at once when it already has.
  /// True when `waiter` was suspended.
  static bool wait_failure(Kernel& kernel, KernelId peer, Waiter& waiter);
  /// Calls `listener(peer)` on the kernel's thread each time it learns that a kernel failed,
  /// after the runtime failed what waited on that kernel. For layers built on the runtime.
  static void add_failure_listener(Kernel& kernel, std::function<void(KernelId)> listener);
  /// The kernel's dispatcher of `domain`, or nullptr.
  static Dispatcher* find_dispatcher(Kernel& kernel, std::uint32_t domain) noexcept;
  /// Gives the kernel a dispatcher.
  static void add_dispatcher(Kernel& kernel, std::unique_ptr<Dispatcher> dispatcher);
};

/// What a layer built on the runtime (replication) does on every kernel before the kernel
/// handles anything: register its message handlers.
using LayerStart = void (*)(Kernel& kernel);
/// Adds `start` to what every kernel runs first; called while the program starts (static
/// initialisation of the layer), before any System boots.
void register_layer(LayerStart start);

/// One address per type, naming that type's kernel extension.
template <class T>
inline constexpr char kExtensionKey = 0;

/// Makes a task from a callable it keeps, so that a lambda's captures outlive the coroutine
/// the lambda returns. (A coroutine template in a header must not hold a lambda in its frame:
/// GCC warns that the frame has a member without linkage; a factory pointer avoids that.)
template <class T>
class TaskFactory {
 public:
  virtual ~TaskFactory() = default;
  /// Calls the callable; once.
  virtual Task<T> make(Kernel& kernel) = 0;
};

template <class T, class F>
class CallableTaskFactory final : public TaskFactory<T> {
 public:
  explicit CallableTaskFactory(F f) : f_(std::move(f)) {}
  Task<T> make(Kernel& kernel) override { return std::invoke(f_, kernel); }

 private:
  F f_;
};

/// Runs the task `factory` makes, keeping the factory alive as long.
Task<void> own_and_run(std::unique_ptr<TaskFactory<void>> factory, Kernel& kernel);

/// Calls a handler with the context when it takes one.
template <class F, class M>
decltype(auto) invoke_handler(F& f, const M& message, const MessageContext& context) {
  if constexpr (std::is_invocable_v<F&, const M&, const MessageContext&>) {
    return std::invoke(f, message, context);
  } else {
    return std::invoke(f, message);
  }
}

/// What a handler F for M returns.
template <class F, class M>
using HandlerReturn = decltype(invoke_handler(std::declval<F&>(), std::declval<const M&>(),
                                              std::declval<const MessageContext&>()));

/// True for Result<U>.
template <class T>
struct IsResult : std::false_type {};
template <class U>
struct IsResult<Result<U>> : std::true_type {};

template <class M, class F>
class TypedHandler;

}  // namespace detail

/// One kernel: a single-threaded event loop that owns its tasks, timers, handlers and the
/// receiving ends of its channels. Everything in it runs on its own thread (or, under a
/// simulator, in its own turns), so none of it takes locks. Use it from tasks and handlers
/// running on it; from other threads, go through System.
class Kernel {
 public:
  /// Waits in the kernel until `duration` has passed on the kernel's clock.
  class SleepAwaiter;
  /// Waits until another kernel has failed (Kernel::until_failed).
  class FailureAwaiter;
  /// Lets the kernel's channels and other ready tasks run before this task continues.
  class YieldAwaiter;
  /// Sends a one-way message (Kernel::send).
  template <Message M>
  class SendAwaiter;
  /// Sends a request and waits for its reply (Kernel::call).
  template <Request R>
  class CallAwaiter;

  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;
  ~Kernel();

  /// This kernel's id, its index in boot order.
  KernelId id() const noexcept { return id_; }
  /// True when kernel `kernel` exists and has not been taken offline (System::remove_kernel).
  bool is_online(KernelId kernel) const noexcept;
  /// True once kernel `kernel` has been declared failed: its process died, it stalled past
  /// Config::stall_timeout, System::declare_failed named it, or the simulator crashed it. A
  /// failed kernel is also not online.
  bool has_failed(KernelId kernel) const noexcept;
  /// The core this kernel is pinned to.
  CoreId core() const noexcept;
  /// The core kernel `kernel` of this System runs on; `kernel` < system_size().
  CoreId core_of(KernelId kernel) const noexcept;
  /// The facts about the machine this kernel's System runs on (its SKB).
  const Skb& skb() const noexcept;
  /// Names this kernel's System among the Systems of the program's run: the same on all its
  /// kernels (in each kernel process too), never another System's.
  std::uint64_t system_id() const noexcept;
  /// How many kernels the System has had; ids are 0 to size() - 1 (some may be offline).
  std::size_t system_size() const noexcept;
  /// The time on this kernel's clock (the executor's).
  Instant now() const noexcept;
  /// This kernel's counters.
  KernelStats stats() const noexcept;
  /// The kernel whose turn runs on the calling thread, or nullptr outside any kernel.
  static Kernel* current() noexcept;

  /// Runs `task` on this kernel as a task of its own. From another thread it is handed over
  /// through the kernel's inbox. An exception escaping it is counted and logged.
  void spawn(Task<void> task);
  /// Runs `f(*this)`, which returns a Task<void>, keeping `f` (and its captures) alive as long.
  template <class F>
  requires std::is_invocable_r_v<Task<void>, F&, Kernel&> void spawn(F f) {
    spawn(detail::own_and_run(std::make_unique<detail::CallableTaskFactory<void, F>>(std::move(f)),
                              *this));
  }

  /// `co_await k.until_failed(peer)` -> Result<void>: resumes once this kernel has learnt that
  /// `peer` failed (at once if it already has), after the calls and sends waiting on `peer`
  /// were failed. Errors: not_found (no such kernel), closed (`peer` went offline without
  /// failing, System::remove_kernel), shutting_down (this kernel stops first).
  FailureAwaiter until_failed(KernelId peer) noexcept;

  /// `co_await k.yield()`: long computations call it so that one task cannot starve others.
  YieldAwaiter yield() noexcept;
  /// `co_await k.sleep_for(d)`: resumes after `d` on the kernel's clock.
  SleepAwaiter sleep_for(Duration duration) noexcept;
  /// `co_await k.sleep_until(t)`: resumes once the kernel's clock reads `t` or later.
  SleepAwaiter sleep_until(Instant when) noexcept;

  /// `co_await k.send(to, message)` -> Result<void>: one-way. Completes at once when the
  /// channel has room; otherwise the task waits until it has (back-pressure), keeping this
  /// kernel's messages to `to` in order. Errors: not_found (no such kernel), shutting_down,
  /// invalid_argument (used from another kernel's thread), closed, too_large.
  template <Message M>
  SendAwaiter<M> send(KernelId to, const M& message) {
    return SendAwaiter<M>(*this, to, message);
  }
  /// send(to, message) for a temporary message (refused when the compiler is GCC 12 and M has
  /// a destructor: see detail::kTemporaryIsSafe).
  template <Message M>
  requires(!std::is_trivially_destructible_v<M>) SendAwaiter<M> send(KernelId to, M&& message) {
    static_assert(detail::kTemporaryIsSafe<M>,
                  "GCC 12 destroys this temporary twice inside co_await: put the message in a "
                  "variable first (docs/runtime.md, \"GCC 12 and co_await\")");
    return SendAwaiter<M>(*this, to, message);
  }

  /// `co_await k.call(to, request)` -> Result<R::Reply>: sends the request and waits for its
  /// reply. Errors besides send's: no_handler (the receiver has no handler for R),
  /// handler_failed (it threw or returned an error; the message has its text), parse_error.
  template <Request R>
  CallAwaiter<R> call(KernelId to, const R& request) {
    return CallAwaiter<R>(*this, to, request, std::nullopt);
  }
  /// Like call(to, request), failing with timed_out if no reply came within `timeout`.
  template <Request R>
  CallAwaiter<R> call(KernelId to, const R& request, Duration timeout) {
    return CallAwaiter<R>(*this, to, request, timeout);
  }
  /// call(to, request) for a temporary request (refused when the compiler is GCC 12 and R has
  /// a destructor: see detail::kTemporaryIsSafe).
  template <Request R>
  requires(!std::is_trivially_destructible_v<R>) CallAwaiter<R> call(KernelId to, R&& request) {
    static_assert(detail::kTemporaryIsSafe<R>,
                  "GCC 12 destroys this temporary twice inside co_await: put the request in a "
                  "variable first (docs/runtime.md, \"GCC 12 and co_await\")");
    return CallAwaiter<R>(*this, to, request, std::nullopt);
  }
  /// call(to, request, timeout) for a temporary request (as above).
  template <Request R>
  requires(!std::is_trivially_destructible_v<R>) CallAwaiter<R> call(KernelId to, R&& request,
                                                                     Duration timeout) {
    static_assert(detail::kTemporaryIsSafe<R>,
                  "GCC 12 destroys this temporary twice inside co_await: put the request in a "
                  "variable first (docs/runtime.md, \"GCC 12 and co_await\")");
    return CallAwaiter<R>(*this, to, request, timeout);
  }

  /// Registers `handler` for messages of type M on this kernel; already_exists if M::kType has
  /// one. The handler is called as `handler(const M&)` or `handler(const M&, const
  /// MessageContext&)`. For a Request it returns R::Reply or Result<R::Reply>; for a one-way
  /// message void or Result<void>; or it is a coroutine returning Task of those.
  template <Message M, class F>
  Result<void> handle(F handler) {
    if (is_reserved_message_type(M::kType)) {
      return detail::reserved_type_error(M::kType, "Kernel::handle");
    }
    return detail::KernelAccess::add_handler(
        *this, M::kType, std::make_unique<detail::TypedHandler<M, F>>(std::move(handler)));
  }

  /// This kernel's one T, made as `T(*this)` on first use: per-kernel state of a layer built on
  /// the runtime (replication, services), touched only by this kernel's thread. It lives until
  /// the kernel is torn down, after every task of the kernel was destroyed. Only from this
  /// kernel's own tasks and handlers.
  template <class T>
  requires std::is_constructible_v<T, Kernel&> T& extension() {
    const void* key = &detail::kExtensionKey<T>;
    if (void* found = detail::KernelAccess::find_extension(*this, key)) {
      return *static_cast<T*>(found);
    }
    auto made = std::make_unique<T>(*this);
    T& ref = *made;
    detail::KernelAccess::add_extension(*this, key, made.release(),
                                        [](void* p) { delete static_cast<T*>(p); });
    return ref;
  }

  // The executor's side (see mk/executor.h). Called only by the executor running this kernel.

  /// Gives the kernel the means to be woken; once, before it first runs.
  void set_notifier(Notifier& notifier) noexcept;
  /// One turn: system messages, then a batch from each channel, due timers, then the tasks that
  /// were ready when the turn began. Returns true when it did anything.
  bool run_turn();
  /// The earliest pending timer (sleep or call deadline), if any.
  std::optional<Instant> next_deadline() const noexcept;
  /// Announces that the kernel is about to sleep, then looks once more for work. Returns true
  /// when the executor may block until notified or next_deadline(); false when work arrived.
  bool prepare_to_sleep() noexcept;
  /// Ends a sleep announced by prepare_to_sleep (whatever it returned).
  void end_sleep() noexcept;
  /// True once the kernel has finished stopping; the executor then stops running it.
  bool stopped() const noexcept;

 private:
  friend class System;
  friend struct detail::KernelAccess;
  friend class runtime::KernelCore;
  friend class runtime::KernelProcess;
  Kernel(KernelId id, runtime::Fabric& fabric, const Clock& clock);

  // Also in core_; kept here so that id(), on every replicated read, is inline.
  KernelId id_;
  std::unique_ptr<runtime::KernelCore> core_;
};

/// Lets the kernel's channels and other ready tasks run before this task continues.
class Kernel::YieldAwaiter {
 public:
  /// Made by Kernel::yield.
  explicit YieldAwaiter(Kernel& kernel) noexcept : kernel_(kernel) {}
  /// Always suspends: the point is to let others run.
  bool await_ready() const noexcept { return false; }
  /// Queues the task behind what is ready now.
  void await_suspend(std::coroutine_handle<> handle) {
    detail::KernelAccess::make_ready(kernel_, handle);
  }
  /// Nothing to return.
  void await_resume() const noexcept {}

 private:
  Kernel& kernel_;
};

/// Waits until another kernel has failed (Kernel::until_failed).
class Kernel::FailureAwaiter {
 public:
  /// Made by Kernel::until_failed.
  FailureAwaiter(Kernel& kernel, KernelId peer) noexcept : kernel_(kernel), peer_(peer) {}
  /// Asks the kernel in await_suspend, which knows whether `peer` already failed.
  bool await_ready() const noexcept { return false; }
  /// Waits unless the answer is known at once; false then.
  bool await_suspend(std::coroutine_handle<> handle) {
    waiter_.handle = handle;
    return detail::KernelAccess::wait_failure(kernel_, peer_, waiter_);
  }
  /// Ok once `peer` failed; the errors of Kernel::until_failed otherwise.
  Result<void> await_resume() {
    if (waiter_.error) return std::move(*waiter_.error);
    return {};
  }

 private:
  Kernel& kernel_;
  KernelId peer_;
  detail::Waiter waiter_;
};

/// Waits in the kernel until a time on the kernel's clock (Kernel::sleep_for).
class Kernel::SleepAwaiter {
 public:
  /// Made by Kernel::sleep_for and Kernel::sleep_until.
  SleepAwaiter(Kernel& kernel, Instant when) noexcept : kernel_(kernel), when_(when) {}
  /// True when the time has come already.
  bool await_ready() const noexcept { return kernel_.now() >= when_; }
  /// Arms the kernel's timer for the task.
  void await_suspend(std::coroutine_handle<> handle) {
    waiter_.handle = handle;
    detail::KernelAccess::sleep_until(kernel_, when_, waiter_);
  }
  /// Nothing to return.
  void await_resume() const noexcept {}

 private:
  Kernel& kernel_;
  Instant when_;
  detail::Waiter waiter_;
};

template <Message M>
/// Sends a one-way message, waiting for room in the channel (Kernel::send).
class Kernel::SendAwaiter {
 public:
  /// Made by Kernel::send; keeps its own copy of the message.
  SendAwaiter(Kernel& kernel, KernelId to, const M& message) noexcept
      : kernel_(kernel), to_(to), message_(message) {}
  /// Sending happens in await_suspend.
  bool await_ready() const noexcept { return false; }
  /// Encodes and sends; true when the task waits for room in the channel.
  bool await_suspend(std::coroutine_handle<> handle) {
    waiter_.handle = handle;
    if (is_reserved_message_type(M::kType)) {
      waiter_.error = detail::reserved_type_error(M::kType, "Kernel::send");
      return false;
    }
    detail::EncodedPayload<M> payload(message_);
    if (payload.failure()) {
      waiter_.error = std::move(payload.failure());
      return false;
    }
    return detail::KernelAccess::send(kernel_, to_, M::kType, payload.bytes(), waiter_);
  }
  /// Ok once the message is in the channel; the errors of Kernel::send otherwise.
  Result<void> await_resume() {
    if (waiter_.error) return std::move(*waiter_.error);
    return {};
  }

 private:
  Kernel& kernel_;
  KernelId to_;
  M message_;
  detail::Waiter waiter_;
};

template <Request R>
/// Sends a request and waits for its reply (Kernel::call).
class Kernel::CallAwaiter {
 public:
  /// The reply type.
  using Reply = typename R::Reply;

  /// Made by Kernel::call; keeps its own copy of the request.
  CallAwaiter(Kernel& kernel, KernelId to, const R& request,
              std::optional<Duration> timeout) noexcept
      : kernel_(kernel), to_(to), request_(request), timeout_(timeout) {}
  /// The request goes out in await_suspend.
  bool await_ready() const noexcept { return false; }
  /// Encodes and sends the request; true when the task waits for the reply.
  bool await_suspend(std::coroutine_handle<> handle) {
    call_.handle = handle;
    if (is_reserved_message_type(R::kType)) {
      call_.error = detail::reserved_type_error(R::kType, "Kernel::call");
      return false;
    }
    detail::EncodedPayload<R> payload(request_);
    if (payload.failure()) {
      call_.error = std::move(payload.failure());
      return false;
    }
    if constexpr (detail::Bytewise<Reply>) {
      call_.reply = reply_;
    } else {
      reply_.resize(kMaxMessageBody);
      call_.reply = reply_;
      call_.exact = false;
    }
    return detail::KernelAccess::call(kernel_, to_, R::kType, payload.bytes(), call_, timeout_);
  }
  /// The decoded reply, or the errors of Kernel::call.
  Result<Reply> await_resume() {
    if (call_.error) return std::move(*call_.error);
    if constexpr (detail::Bytewise<Reply>) {
      return std::bit_cast<Reply>(reply_);
    } else {
      return detail::decode_payload<Reply>(std::span(reply_).first(call_.reply_length), R::kType);
    }
  }

 private:
  Kernel& kernel_;
  KernelId to_;
  R request_;
  std::optional<Duration> timeout_;
  detail::PendingCall call_;
  // A Bytewise reply lands in place; an encoded one in a buffer sized when the call starts.
  std::conditional_t<detail::Bytewise<Reply>, std::array<std::byte, sizeof(Reply)>,
                     std::vector<std::byte>>
      reply_{};
};

inline Kernel::YieldAwaiter Kernel::yield() noexcept {
  return YieldAwaiter(*this);
}
inline Kernel::FailureAwaiter Kernel::until_failed(KernelId peer) noexcept {
  return FailureAwaiter(*this, peer);
}
inline Kernel::SleepAwaiter Kernel::sleep_for(Duration duration) noexcept {
  return SleepAwaiter(*this, now() + duration);
}
inline Kernel::SleepAwaiter Kernel::sleep_until(Instant when) noexcept {
  return SleepAwaiter(*this, when);
}

namespace detail {

/// How a handler for M answers: a reply, an error reply, or (one-way) nothing. Depends on M
/// only, so coroutines built on it never hold the user's callable type.
template <class M>
struct Answer {
  static void done(Kernel& kernel, KernelId from, std::uint32_t call_id) {
    if (call_id != 0) KernelAccess::reply(kernel, from, call_id, M::kType, {});
  }

  template <class V>
  static void with(Kernel& kernel, KernelId from, std::uint32_t call_id, V&& value) {
    if constexpr (IsResult<std::remove_cvref_t<V>>::value) {
      if (!value.ok()) {
        failed(kernel, from, call_id,
               error(Errc::handler_failed, "handler for message type " + std::to_string(M::kType) +
                                               " returned " + value.error().describe()));
      } else if constexpr (std::is_same_v<std::remove_cvref_t<V>, Result<void>>) {
        done(kernel, from, call_id);
      } else {
        with(kernel, from, call_id, std::move(value).value());
      }
    } else if (call_id != 0) {
      detail::EncodedPayload<typename M::Reply> reply(value);
      if (reply.failure()) {
        KernelAccess::reply_error(kernel, from, call_id, M::kType, *reply.failure());
      } else {
        KernelAccess::reply(kernel, from, call_id, M::kType, reply.bytes());
      }
    }
  }

  static void threw(Kernel& kernel, KernelId from, std::uint32_t call_id,
                    std::exception_ptr failure) {
    failed(kernel, from, call_id,
           error(Errc::handler_failed, "handler for message type " + std::to_string(M::kType) +
                                           " threw " + describe_exception(std::move(failure))));
  }

  static void failed(Kernel& kernel, KernelId from, std::uint32_t call_id, const Error& failure) {
    if (call_id != 0) {
      KernelAccess::reply_error(kernel, from, call_id, M::kType, failure);
    } else {
      KernelAccess::note_failure(kernel, failure.describe());
    }
  }
};

/// The part of a coroutine handler that runs it as a task of its own and answers when it ends.
template <class M, class Produced>
class CoroutineHandler : public HandlerBase {
 protected:
  /// Calls the user's coroutine.
  virtual Task<Produced> start(const M& message, const MessageContext& context) = 0;

  static Task<void> serve(CoroutineHandler& self, Kernel& kernel, KernelId from,
                          std::uint32_t call_id, M message) {
    const MessageContext context{kernel, from};
    std::exception_ptr failure;
    std::optional<std::conditional_t<std::is_void_v<Produced>, bool, Produced>> produced;
    try {
      if constexpr (std::is_void_v<Produced>) {
        co_await self.start(message, context);
      } else {
        produced.emplace(co_await self.start(message, context));
      }
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      Answer<M>::threw(kernel, from, call_id, failure);
    } else if constexpr (std::is_void_v<Produced>) {
      Answer<M>::done(kernel, from, call_id);
    } else {
      Answer<M>::with(kernel, from, call_id, std::move(*produced));
    }
  }
};

template <class F, class M>
using Produced = typename TaskResult<HandlerReturn<F, M>>::type;

/// Runs a user's handler for M: decodes, calls it, and answers the caller when there is one.
template <class M, class F>
class TypedHandler final
    : public std::conditional_t<IsTask<HandlerReturn<F, M>>::value,
                                CoroutineHandler<M, Produced<F, M>>, HandlerBase> {
  static constexpr bool kCoroutine = IsTask<HandlerReturn<F, M>>::value;
  using Value = Produced<F, M>;

 public:
  explicit TypedHandler(F f) : f_(std::move(f)) {
    if constexpr (Request<M>) {
      using Reply = typename M::Reply;
      static_assert(std::is_same_v<Value, Reply> || std::is_same_v<Value, Result<Reply>>,
                    "a handler for a Request returns its Reply or Result<Reply> (or a Task of it)");
    } else {
      static_assert(std::is_void_v<Value> || std::is_same_v<Value, Result<void>>,
                    "a handler for a one-way message returns void or Result<void> (or a Task)");
    }
  }

  // No `override` on these two: `start` overrides only for coroutine handlers, and clang
  // wants all or none marked.
  void on_message(Kernel& kernel, KernelId from, std::uint32_t call_id,
                  std::span<const std::byte> payload) {
    auto decoded = decode_payload<M>(payload, M::kType);
    if (!decoded) {
      Answer<M>::failed(kernel, from, call_id, decoded.error());
      return;
    }
    if constexpr (kCoroutine) {
      kernel.spawn(this->serve(*this, kernel, from, call_id, *decoded));
    } else {
      const MessageContext context{kernel, from};
      try {
        if constexpr (std::is_void_v<Value>) {
          invoke_handler(f_, *decoded, context);
          Answer<M>::done(kernel, from, call_id);
        } else {
          Answer<M>::with(kernel, from, call_id, invoke_handler(f_, *decoded, context));
        }
      } catch (...) {
        Answer<M>::threw(kernel, from, call_id, std::current_exception());
      }
    }
  }

 private:
  Task<Value> start(const M& message, const MessageContext& context) {
    return invoke_handler(f_, message, context);
  }

  F f_;
};

}  // namespace detail

}  // namespace mk
