// Which waiter a kernel sleeps in for its wake mechanism, and whether a mechanism works here.
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "runtime/idle_waiter.h"
#include "runtime/log.h"

namespace mk::runtime {

namespace {

Error refused(WakeMechanism mechanism, const std::string& why) {
  return error(Errc::unavailable,
               "wake mechanism " + std::string(to_string(mechanism)) + ": " + why);
}

}  // namespace

Result<std::unique_ptr<IdleWaiter>> make_idle_waiter(const WakeSource& source, WaitBackend backend,
                                                     bool must_watch) {
  const WakeMechanism mechanism = source.mechanism;
  if (mechanism == WakeMechanism::msg_ring && backend == WaitBackend::poll) {
    return refused(mechanism, "it posts into an io_uring, and wait_backend is poll");
  }
  std::optional<Error> uring_failure;
  if (backend != WaitBackend::poll) {
    auto uring = make_uring_waiter(source);
    if (uring || uring.error().code != Errc::unavailable) return uring;
    if (backend == WaitBackend::io_uring || mechanism == WakeMechanism::msg_ring) {
      return refused(mechanism, uring.error().message);
    }
    uring_failure = std::move(uring).error();
  }
  if (mechanism == WakeMechanism::eventfd) {
    if (uring_failure) {
      static std::once_flag logged;
      std::call_once(logged, [&] {
        log_line("io_uring unavailable (" + uring_failure->message +
                 "); idle kernels sleep in ppoll on an eventfd instead");
      });
    }
    return make_poll_waiter(source.eventfd);
  }
  // futex without io_uring's futex wait: futex(2) alone, which watches no descriptor.
  if (must_watch) {
    return refused(mechanism,
                   (uring_failure ? uring_failure->message : std::string("wait_backend is poll")) +
                       ", and futex(2) alone cannot also watch the kernel's control descriptor "
                       "(kernels as processes)");
  }
  static std::once_flag logged;
  std::call_once(logged, [&] {
    log_line("futex wakes without io_uring (" +
             (uring_failure ? uring_failure->message : std::string("wait_backend is poll")) +
             "): idle kernels sleep in futex(2)");
  });
  return make_futex_waiter(source.word);
}

Result<void> check_wake_mechanism(WakeMechanism mechanism, WaitBackend backend,
                                  Isolation isolation) {
  if (mechanism == WakeMechanism::msg_ring && isolation == Isolation::processes) {
    return refused(mechanism,
                   "kernels as processes cannot use it: a waker needs the sleeper's ring "
                   "descriptor, which a kernel added after boot could not get");
  }
  // The answer does not change while a process runs: ask the OS once per question and
  // process (a forked child may run under another seccomp policy than its parent).
  static std::mutex mutex;
  static std::map<std::tuple<pid_t, WakeMechanism, WaitBackend, bool>, Result<void>> answers;
  const bool must_watch = isolation == Isolation::processes;
  const auto key = std::make_tuple(::getpid(), mechanism, backend, must_watch);
  std::lock_guard lock(mutex);
  if (auto known = answers.find(key); known != answers.end()) return known->second;
  Result<void> answer = [&]() -> Result<void> {
    auto waiter = make_idle_waiter(WakeSource{mechanism, -1, nullptr}, backend, must_watch);
    if (!waiter) return std::move(waiter).error();
    if (mechanism == WakeMechanism::msg_ring) {
      if (auto posted = check_msg_ring(); !posted) return posted;
    }
    // A notification before the wait ends it at once; a mechanism that lost it would block
    // until this deadline, which still returns.
    (*waiter)->notify();
    (void)(*waiter)->wait(std::chrono::steady_clock::now() + std::chrono::seconds(1));
    return {};
  }();
  answers.emplace(key, answer);
  return answer;
}

}  // namespace mk::runtime
