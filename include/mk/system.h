// mk::System: one multikernel inside a process.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mk/config.h"
#include "mk/core_id.h"
#include "mk/executor.h"
#include "mk/function_ref.h"
#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/kernel_stats.h"
#include "mk/remote.h"
#include "mk/result.h"
#include "mk/skb.h"
#include "mk/task.h"

namespace mk {

class Domain;

namespace detail {

/// Work handed to a kernel from outside it: makes the task the kernel then runs.
class ExternalWork {
 public:
  virtual ~ExternalWork() = default;
  /// Called once, on the kernel's thread.
  virtual Task<void> start(Kernel& kernel) = 0;
};

/// Where a blocking System::run waits for its task's result.
template <class T>
class Completion {
 public:
  /// Stores the first result and wakes the waiter; later ones are ignored.
  void set(Result<T> result) {
    {
      std::lock_guard lock(mutex_);
      if (result_) return;
      result_.emplace(std::move(result));
    }
    ready_.notify_all();
  }
  /// True once a result is set.
  bool ready() {
    std::lock_guard lock(mutex_);
    return result_.has_value();
  }
  /// Blocks until a result is set and returns it.
  Result<T> wait() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return result_.has_value(); });
    return std::move(*result_);
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::optional<Result<T>> result_;
};

/// Completes a Completion exactly once: with the task's result, or with shutting_down when the
/// task (or the work that would start it) is destroyed first.
template <class T>
class CompletionGuard {
 public:
  explicit CompletionGuard(std::shared_ptr<Completion<T>> completion)
      : completion_(std::move(completion)) {}
  CompletionGuard(CompletionGuard&&) noexcept = default;
  CompletionGuard& operator=(CompletionGuard&&) = delete;
  ~CompletionGuard() {
    if (completion_) {
      completion_->set(error(Errc::shutting_down, "the system shut down before the task finished"));
    }
  }
  /// Completes with `result`; once.
  void set(Result<T> result) {
    completion_->set(std::move(result));
    completion_.reset();
  }

 private:
  std::shared_ptr<Completion<T>> completion_;
};

/// The value type of the Task that F makes.
template <class F>
using TaskValue = RunValue<F>;

/// A task that returns `result` at once.
Task<Result<void>> ready_task(Result<void> result);

/// Calls a per-kernel setup F, which returns void or Result<void>.
template <class F>
Result<void> call_setup(F& setup, Kernel& kernel) {
  if constexpr (std::is_same_v<std::invoke_result_t<F&, Kernel&>, Result<void>>) {
    return setup(kernel);
  } else {
    setup(kernel);
    return {};
  }
}

/// Calls a captureless F on the kernel (System::for_each_kernel in a kernel process).
template <class F>
struct CallOnKernel {
  Task<Result<void>> operator()(Kernel& kernel) const {
    F f{};
    return ready_task(call_setup(f, kernel));
  }
};

// GCC warns (-Wsubobject-linkage, on by default) when this coroutine's frame holds a type
// from the caller's anonymous namespace, as it does for a state machine declared there. The
// frame is the compiler's, not a type a program could give linkage to, so the warning says
// nothing a user can act on.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif
/// Runs the task and completes the System::run waiting for it, whatever happens.
template <class T>
Task<void> run_and_complete(std::unique_ptr<TaskFactory<T>> factory, Kernel& kernel,
                            CompletionGuard<T> guard) {
  std::exception_ptr failure;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await factory->make(kernel);
      guard.set(Result<void>());
    } else {
      guard.set(Result<T>(co_await factory->make(kernel)));
    }
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) guard.set(error(Errc::handler_failed, "task threw " + describe_exception(failure)));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// System::spawn's work: a task and what keeps its callable alive.
class SpawnWork final : public ExternalWork {
 public:
  explicit SpawnWork(std::unique_ptr<TaskFactory<void>> factory) : factory_(std::move(factory)) {}
  Task<void> start(Kernel& kernel) override { return own_and_run(std::move(factory_), kernel); }

 private:
  std::unique_ptr<TaskFactory<void>> factory_;
};

/// System::run's work: also completes the caller's wait, whatever happens to the task.
template <class T>
class RunWork final : public ExternalWork {
 public:
  RunWork(std::unique_ptr<TaskFactory<T>> factory, CompletionGuard<T> guard)
      : factory_(std::move(factory)), guard_(std::move(guard)) {}
  Task<void> start(Kernel& kernel) override {
    return run_and_complete<T>(std::move(factory_), kernel, std::move(guard_));
  }

 private:
  std::unique_ptr<TaskFactory<T>> factory_;
  CompletionGuard<T> guard_;
};

}  // namespace detail

/// One multikernel instance inside a process: it boots one kernel per chosen core (pinned,
/// with memory on the core's NUMA node), owns the SKB and the channels, and shuts down
/// cleanly. Its methods may be called from any thread that is not one of its kernels (those
/// use their Kernel), and not concurrently with its destruction.
class System {
 public:
  /// Validates `config` against the live machine (the SKB) and starts the kernels on the
  /// threaded executor. A bad field gives invalid_argument naming it; a kernel that cannot
  /// start (pinning, io_uring, memory) gives its error, after everything started was undone.
  static Result<std::unique_ptr<System>> boot(Config config);
  /// Like boot(config), with kernels run by `executor` instead (e.g. a simulator).
  static Result<std::unique_ptr<System>> boot(Config config, std::unique_ptr<Executor> executor);
  /// Like boot(config, executor) (null: the threaded one), on the machine `skb` describes
  /// instead of the live one: Config::cores are then that topology's cores. Only a simulator
  /// can run kernels on a topology other than this machine's; the threaded executor fails to
  /// pin to cores the host lacks.
  static Result<std::unique_ptr<System>> boot(Config config, std::unique_ptr<Executor> executor,
                                              Skb skb);

  System(const System&) = delete;
  System& operator=(const System&) = delete;
  /// Shuts down, if shutdown() was not called.
  ~System();

  /// Number of kernels, online or not; their ids are 0 to size() - 1. Grows with add_kernel;
  /// remove_kernel leaves it (ids are never reused).
  std::size_t size() const noexcept;
  /// True when kernel `kernel` exists and has not been taken offline.
  bool is_online(KernelId kernel) const;
  /// Starts one more kernel, on `core`, while the System runs (a core comes online), and
  /// returns its id: the old size(). It runs tasks and exchanges messages like a booted
  /// kernel; replicated objects gain it through Replicated::join. From outside the kernels.
  /// At most kernels_per_core kernels share a core, counting the booted ones. Errors:
  /// invalid_argument (core not usable or already at kernels_per_core, a core shared while
  /// kernels poll, a call from a kernel's thread), unavailable (the executor cannot add
  /// kernels), shutting_down, or why the kernel could not start.
  Result<KernelId> add_kernel(CoreId core);
  /// Takes kernel `kernel` offline (its core goes offline) and returns once its thread has
  /// ended. The kernel stops as at shutdown: its own calls and sends in flight fail with
  /// shutting_down and its ready tasks run until none is left. Afterwards every other
  /// kernel's send or call to it fails with `closed` (those queued or awaiting its reply
  /// too), run/spawn on it give not_found, and for_each_kernel skips it. It stays a member of
  /// any replicated object it did not leave first (Replicated::leave). From outside the
  /// kernels. Errors: not_found (no such kernel, or already offline), invalid_argument (the
  /// last online kernel, a call from a kernel's thread), shutting_down, unavailable (the
  /// executor cannot retire kernels).
  Result<void> remove_kernel(KernelId kernel);
  /// Declares kernel `kernel` failed, as the failure detector does for a crashed or stalled
  /// kernel: every other kernel fails what it has queued for it and the calls awaiting its
  /// replies (`closed`), drops whatever it sends from then on, and tells the layers above
  /// (replicated objects install a view without it; docs/replica.md). The kernel is told to
  /// stop; a thread stuck in user code is joined at shutdown. From outside the kernels. A
  /// kernel that already failed is not an error. Errors: not_found (no such kernel, or taken
  /// offline by remove_kernel), invalid_argument (the last online kernel; a call from a
  /// kernel's thread), shutting_down.
  Result<void> declare_failed(KernelId kernel);
  /// True once kernel `kernel` has been declared failed (by declare_failed or the executor's
  /// failure detector).
  bool has_failed(KernelId kernel) const;
  /// Blocks until kernel `kernel` has been declared failed, for at most `timeout`. From
  /// outside the kernels (under a simulator it drives the simulation meanwhile). Errors:
  /// timed_out, not_found (no such kernel), closed (taken offline without failing),
  /// invalid_argument (from a kernel's thread), shutting_down.
  Result<void> wait_until_failed(KernelId kernel, std::chrono::nanoseconds timeout);
  /// The core kernel `kernel` runs on; not_found for an id out of range.
  Result<CoreId> core_of(KernelId kernel) const;
  /// The facts the System was booted with.
  const Skb& skb() const noexcept;
  /// How its kernels wake each other: Config::wake_mechanism, else the SKB's choice among the
  /// mechanisms that work here (docs/runtime.md, "Wake mechanisms").
  WakeMechanism wake_mechanism() const noexcept;
  /// How long idle kernels poll before sleeping (the SKB's budget or the config's).
  std::chrono::nanoseconds poll_budget() const noexcept;
  /// Kernel `kernel`'s counters; not_found for an id out of range.
  Result<KernelStats> stats(KernelId kernel) const;

  /// Threads or processes, as booted.
  Isolation isolation() const noexcept;
  /// The operating-system process of kernel `kernel` under Isolation::processes (for tools and
  /// tests that signal it). Errors: unavailable under Isolation::threads, not_found.
  Result<int> pid_of(KernelId kernel) const;

  /// Runs `f(kernel, args...)`, which returns a Task<void>, as a task on kernel `kernel`.
  /// Returns at once. Under Isolation::processes `f` must capture nothing and each argument
  /// have a mk::Codec (they are encoded, sent, and decoded in the kernel's process); otherwise
  /// invalid_argument says why. Errors: not_found, shutting_down.
  template <class F, class... Args>
  requires std::is_invocable_r_v<Task<void>, F&, Kernel&, Args&...> Result<void> spawn(
      KernelId kernel, F f, Args... args) {
    if (isolation() == Isolation::processes) {
      if constexpr (detail::RemoteCallable<F, Args...>) {
        auto started =
            call_remote(kernel, detail::kRemoteId<F, Args...>, detail::encode_all(args...), false);
        if (!started) return std::move(started).error();
        return {};
      } else {
        return error(Errc::invalid_argument,
                     "System::spawn: " + detail::why_not_remote<F, Args...>());
      }
    }
    auto bound = [f = std::move(f), ... args = std::move(args)](Kernel& k) mutable {
      return std::invoke(f, k, args...);
    };
    return post(kernel, std::make_unique<detail::SpawnWork>(
                            std::make_unique<detail::CallableTaskFactory<void, decltype(bound)>>(
                                std::move(bound))));
  }

  /// Runs `f(kernel, args...)`, which returns a Task<T>, on kernel `kernel` and waits for its
  /// result. Under Isolation::processes the rules of spawn apply, and T too needs a mk::Codec
  /// (it comes back encoded). Errors: not_found, shutting_down (also when the System stops
  /// before the task ends), handler_failed (the task threw), closed (its kernel died first),
  /// invalid_argument (called from a kernel's thread, where blocking would stall the kernel:
  /// co_await the task there instead; or a callable that cannot cross into a kernel process),
  /// and under a simulator timed_out when the simulation ends or reaches its time limit
  /// before the task does.
  template <class F, class... Args>
  requires detail::IsTask<std::invoke_result_t<F&, Kernel&, Args&...>>::value
      Result<detail::RunValue<F, Args...>>
      run(KernelId kernel, F f, Args... args) {
    using T = detail::RunValue<F, Args...>;
    if (Kernel::current() != nullptr) {
      return error(Errc::invalid_argument,
                   "System::run called from a kernel's thread; co_await the task there instead");
    }
    if (isolation() == Isolation::processes) {
      if constexpr (detail::RemoteCallable<F, Args...>) {
        auto reply =
            call_remote(kernel, detail::kRemoteId<F, Args...>, detail::encode_all(args...), true);
        if (!reply) return std::move(reply).error();
        if constexpr (std::is_void_v<T>) {
          return {};
        } else {
          auto value = Codec<T>::decode(*reply);
          if (!value) {
            return error(Errc::parse_error, "System::run: the task's value from kernel " +
                                                std::to_string(kernel) + ": " +
                                                value.error().message);
          }
          return std::move(value).value();
        }
      } else {
        return error(Errc::invalid_argument,
                     "System::run: " + detail::why_not_remote<F, Args...>());
      }
    }
    auto bound = [f = std::move(f), ... args = std::move(args)](Kernel& k) mutable {
      return std::invoke(f, k, args...);
    };
    auto completion = std::make_shared<detail::Completion<T>>();
    auto posted = post(
        kernel,
        std::make_unique<detail::RunWork<T>>(
            std::make_unique<detail::CallableTaskFactory<T, decltype(bound)>>(std::move(bound)),
            detail::CompletionGuard<T>(completion)));
    if (!posted) return std::move(posted).error();
    if (auto driven = drive([&completion] { return completion->ready(); }); !driven) {
      return std::move(driven).error();
    }
    return completion->wait();
  }

  /// Calls `setup(kernel)` on every online kernel's own thread (or in its process), in id
  /// order, and returns once all have. `setup` returns void or Result<void>; the first error
  /// it returns stops the walk and is returned (kernels before it have run it, kernels after
  /// it have not). Under Isolation::processes `setup` must capture nothing. Prefer
  /// Config::setup for handlers: it also runs on kernels added later, and its errors fail
  /// boot. Errors otherwise as for run.
  template <class F>
  requires std::is_invocable_v<F&, Kernel&> Result<void> for_each_kernel(F setup) {
    for (KernelId id = 0; id < size(); ++id) {
      if (!is_online(id)) continue;
      Result<Result<void>> done = error(Errc::internal, "");
      if (isolation() == Isolation::threads) {
        done = run(id, [&setup](Kernel& kernel) {
          return detail::ready_task(detail::call_setup(setup, kernel));
        });
      } else if constexpr (std::is_empty_v<F> && std::is_default_constructible_v<F>) {
        done = run(id, detail::CallOnKernel<F>{});
      } else {
        return error(Errc::invalid_argument,
                     "System::for_each_kernel: " + detail::why_not_remote<F>());
      }
      if (!done) return std::move(done).error();
      if (!*done) return std::move(*done).error();
    }
    return {};
  }

  /// Makes a domain: an application on `kernels`, with one Dispatcher on each. Errors:
  /// invalid_argument (empty or duplicate name, no kernels, a kernel twice), not_found.
  Result<Domain> create_domain(std::string name, std::vector<KernelId> kernels);

  /// Stops every kernel, joins every thread and frees every channel. Calls in flight end with
  /// shutting_down; later spawns and runs fail with it. Idempotent. invalid_argument when
  /// called from a kernel's thread, which cannot join itself.
  Result<void> shutdown();

 private:
  struct Impl;
  explicit System(std::unique_ptr<Impl> impl);
  Result<void> post(KernelId kernel, std::unique_ptr<detail::ExternalWork> work);
  /// Under Isolation::processes: starts the task registered as `id` on `kernel` with
  /// `arguments`, and (`wait`) blocks until it ends, returning its encoded value.
  Result<std::vector<std::byte>> call_remote(KernelId kernel, std::uint32_t id,
                                             std::vector<std::byte> arguments, bool wait);
  /// Lets the executor run the kernels on this thread until `done()` (Executor::drive).
  Result<void> drive(FunctionRef<bool()> done);
  /// Runs Config::setup on kernel `kernel` (threads), naming the kernel in its error.
  Result<void> run_setup(KernelId kernel);

  std::unique_ptr<Impl> impl_;
};

}  // namespace mk
