// mk::Task<T>: the coroutine type that kernels run.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace mk {

template <class T = void>
class Task;

namespace detail {

/// What every Task's promise shares: who to resume when it finishes, and how it failed.
struct TaskPromiseBase {
  /// Resumes the awaiter by symmetric transfer, so deep chains of tasks use no stack.
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      std::coroutine_handle<> next = self.promise().continuation_;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  /// Tasks are lazy: nothing runs until the task is awaited or spawned.
  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  std::coroutine_handle<> continuation_;
  std::exception_ptr exception_;
};

template <class T>
struct TaskPromise final : TaskPromiseBase {
  Task<T> get_return_object() noexcept;

  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) { value_.emplace(std::forward<U>(value)); }

  T take() {
    if (exception_) std::rethrow_exception(exception_);
    return std::move(*value_);
  }

  std::optional<T> value_;
};

template <>
struct TaskPromise<void> final : TaskPromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void take() const {
    if (exception_) std::rethrow_exception(exception_);
  }
};

}  // namespace detail

/// A C++20 coroutine run by a kernel: the user-level thread of mk. A Task is lazy and owns
/// its coroutine frame. `co_await task` starts it and transfers control to it directly
/// (symmetric transfer); when it finishes, its awaiter resumes with its value, or with its
/// exception rethrown. Spawn a Task<void> on a kernel to run it on its own (Kernel::spawn).
template <class T>
class [[nodiscard]] Task {
 public:
  /// The coroutine promise; not used directly.
  using promise_type = detail::TaskPromise<T>;

  /// An empty task; awaiting it throws std::logic_error.
  Task() noexcept = default;
  /// Takes over `other`'s coroutine.
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  /// Destroys the owned coroutine, then takes over `other`'s.
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  /// Destroys the coroutine frame, started or not.
  ~Task() { reset(); }

  /// Starts the task and suspends the awaiter until it finishes; yields its value or rethrows.
  auto operator co_await() && noexcept { return Awaiter{handle_}; }
  /// Same as awaiting the moved task; the Task still owns the frame afterwards.
  auto operator co_await() & noexcept { return Awaiter{handle_}; }

  /// True when this task holds a coroutine.
  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

 private:
  friend promise_type;
  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}

  struct Awaiter {
    std::coroutine_handle<promise_type> handle;
    bool await_ready() const noexcept { return !handle || handle.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
      handle.promise().continuation_ = awaiter;
      return handle;
    }
    T await_resume() {
      if (!handle) throw std::logic_error("mk::Task: awaiting an empty task");
      return handle.promise().take();
    }
  };

  void reset() noexcept {
    if (handle_) std::exchange(handle_, {}).destroy();
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

/// True for Task<U>: lets templates tell coroutine handlers from plain ones.
template <class T>
struct IsTask : std::false_type {};
template <class U>
struct IsTask<Task<U>> : std::true_type {};

/// What awaiting a T gives when T is a Task; T itself otherwise.
template <class T>
struct TaskResult {
  using type = T;
};
template <class U>
struct TaskResult<Task<U>> {
  using type = U;
};

}  // namespace detail

}  // namespace mk
