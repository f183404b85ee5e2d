// The futex waiter: a kernel that sleeps in futex(2) on its doorbell's word, for machines whose
// io_uring has no IORING_OP_FUTEX_WAIT. It cannot watch a descriptor as well (futex(2) waits on
// one word), so make_idle_waiter never gives it to a kernel process, which must watch its
// control socket.
#include <cerrno>
#include <chrono>
#include <ctime>

#include "runtime/idle_waiter.h"
#include "runtime/wake_word.h"

namespace mk::runtime {

namespace {

class FutexWaiter final : public IdleWaiter {
 public:
  explicit FutexWaiter(WakeWord* word) : word_(word != nullptr ? word : &own_word_) {
    shared_ = word_ != &own_word_;
  }
  FutexWaiter(const FutexWaiter&) = delete;
  FutexWaiter& operator=(const FutexWaiter&) = delete;

  void notify() noexcept override { notify_word(*word_, shared_); }

  /// Never called: can_watch() is false, and the waiter is not chosen where a descriptor
  /// must be watched.
  void watch(int) noexcept override {}
  bool can_watch() const noexcept override { return false; }

  bool wait(std::optional<Instant> deadline) noexcept override {
    if (announce_block(*word_)) {
      timespec until{};
      if (deadline) {
        // This executor's clock is the steady clock, which is CLOCK_MONOTONIC: the deadline
        // is an absolute time for FUTEX_WAIT_BITSET as it is.
        const auto ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch())
                .count();
        until.tv_sec = ns / 1'000'000'000;
        until.tv_nsec = ns % 1'000'000'000;
      }
      // EAGAIN (notified before it blocked), EINTR and ETIMEDOUT all end the wait; the loop
      // re-checks for work.
      futex_wait(*word_, kWordAsleep, deadline ? &until : nullptr, shared_);
    }
    end_block(*word_);
    return false;
  }

 private:
  WakeWord own_word_;
  WakeWord* word_;
  bool shared_ = false;
};

}  // namespace

Result<std::unique_ptr<IdleWaiter>> make_futex_waiter(WakeWord* word) {
  return std::unique_ptr<IdleWaiter>(std::make_unique<FutexWaiter>(word));
}

}  // namespace mk::runtime
