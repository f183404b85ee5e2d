// The io_uring waiter: one ring per kernel, the notification armed in it by whichever wake
// mechanism the kernel uses (an eventfd read, a futex wait, or nothing: a waker's MSG_RING
// posts the completion itself), beside the watched descriptor's poll and the kernel's timer.
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

#include "runtime/idle_waiter.h"
#include "runtime/wake_word.h"

namespace mk::runtime {

namespace {

constexpr std::uint64_t kWakeTag = 1;
constexpr std::uint64_t kIgnoredTag = 2;
constexpr std::uint64_t kWatchTag = 3;
/// A completion a waker posted with MSG_RING: nothing is armed for it.
constexpr std::uint64_t kPostTag = 4;
/// Timer completions carry their generation above this bit, so a completion of a replaced
/// timer is told from the live one.
constexpr std::uint64_t kTimerTag = std::uint64_t{1} << 32;
constexpr unsigned kEntries = 8;

// IORING_OP_FUTEX_WAIT (Linux 6.7) and its futex2 flags: the kernel ABI's numbers, which the
// io_uring header of Debian 12 (Linux 6.1) does not have yet.
constexpr std::uint8_t kOpFutexWait = 51;
constexpr std::uint32_t kFutex2SizeU32 = 0x02;
constexpr std::uint32_t kFutex2Private = 128;

__kernel_timespec to_timespec(Instant when) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
  __kernel_timespec ts{};
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  return ts;
}

/// A small ring of the calling thread's own, from which it posts MSG_RING completions into
/// sleeping kernels' rings. Made on the thread's first such wake; a process forked from this
/// one forgets it (the mapping is shared with the parent, and the child may have closed the
/// descriptor), so a child never submits into its parent's ring.
class SenderRing {
 public:
  SenderRing() = default;
  SenderRing(const SenderRing&) = delete;
  SenderRing& operator=(const SenderRing&) = delete;
  ~SenderRing() {
    if (state_ == State::ready) io_uring_queue_exit(&ring_);
  }

  /// This thread's ring, or null when the OS refuses one.
  io_uring* get() noexcept {
    if (state_ == State::ready) return &ring_;
    if (state_ == State::refused) return nullptr;
    static std::once_flag registered;
    std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, &SenderRing::forget); });
    state_ = io_uring_queue_init(4, &ring_, 0) == 0 ? State::ready : State::refused;
    return state_ == State::ready ? &ring_ : nullptr;
  }

  static SenderRing& of_this_thread() noexcept {
    thread_local SenderRing ring;
    return ring;
  }

 private:
  enum class State { unmade, ready, refused };
  /// In a forked child, on the thread that forked: never touch the inherited ring.
  static void forget() { of_this_thread().state_ = State::refused; }

  io_uring ring_{};
  State state_ = State::unmade;
};

class UringWaiter final : public IdleWaiter {
 public:
  explicit UringWaiter(const WakeSource& source)
      : mechanism_(source.mechanism), eventfd_(source.eventfd), word_(source.word) {
    if (word_ == nullptr) word_ = &own_word_;
    shared_word_ = word_ != &own_word_;
  }
  UringWaiter(const UringWaiter&) = delete;
  UringWaiter& operator=(const UringWaiter&) = delete;
  ~UringWaiter() override {
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (eventfd_ >= 0) ::close(eventfd_);
  }

  /// Sets up the ring in place (it must not move afterwards) and the mechanism's parts.
  Result<void> init() {
    // Completions are only ever reaped by this thread, inside its own wait: let the kernel
    // defer their work until then (fewer interrupts), when it supports that.
    int rc = io_uring_queue_init(kEntries, &ring_,
                                 IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
    if (rc == -EINVAL) rc = io_uring_queue_init(kEntries, &ring_, 0);
    if (rc < 0) {
      const Errc code = (rc == -EPERM || rc == -ENOSYS) ? Errc::unavailable : Errc::io_error;
      return error(code, std::string("io_uring_queue_init: ") + std::strerror(-rc));
    }
    ring_ready_ = true;
    switch (mechanism_) {
      case WakeMechanism::eventfd:
        return make_eventfd();
      case WakeMechanism::futex:
        return require(kOpFutexWait, "futex: this io_uring has no IORING_OP_FUTEX_WAIT");
      case WakeMechanism::msg_ring:
        if (auto supported =
                require(IORING_OP_MSG_RING, "msg_ring: this io_uring has no IORING_OP_MSG_RING");
            !supported) {
          return supported;
        }
        // The way in for a waker whose thread the OS refuses a ring of its own.
        return make_eventfd();
    }
    return error(Errc::invalid_argument, "unknown wake mechanism");
  }

  /// One MSG_RING from this thread into this waiter's ring, then one wait that must take its
  /// completion (and not the eventfd's): ok when both happen.
  Result<void> check_post() {
    if (!post_wake()) {
      return error(Errc::unavailable, "msg_ring: the OS refused IORING_OP_MSG_RING here");
    }
    took_post_ = false;
    // A few waits at most: a timer that is already due may complete before the post does.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!took_post_ && std::chrono::steady_clock::now() < until)
      (void)wait(until);
    if (!took_post_) {
      return error(Errc::unavailable, "msg_ring: the posted completion did not arrive");
    }
    return {};
  }

  void notify() noexcept override {
    switch (mechanism_) {
      case WakeMechanism::eventfd:
        write_eventfd();
        return;
      case WakeMechanism::futex:
        notify_word(*word_, shared_word_);
        return;
      case WakeMechanism::msg_ring:
        if (!post_wake()) write_eventfd();
        return;
    }
  }

  void watch(int fd) noexcept override { watched_ = fd; }

  bool wait(std::optional<Instant> deadline) noexcept override {
    // A futex notification that came while awake is taken without blocking.
    const bool block = mechanism_ != WakeMechanism::futex || announce_block(*word_);
    if (watched_ >= 0 && !watch_armed_) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_poll_add(sqe, watched_, POLLIN);
      io_uring_sqe_set_data64(sqe, kWatchTag);
      watch_armed_ = true;
    }
    if (!wake_armed_) arm_wake();
    if (deadline && (!timer_armed_ || *deadline != timer_deadline_)) {
      if (timer_armed_) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_timeout_remove(sqe, kTimerTag | timer_generation_, 0);
        io_uring_sqe_set_data64(sqe, kIgnoredTag);
      }
      ++timer_generation_;
      timespec_ = to_timespec(*deadline);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_timeout(sqe, &timespec_, 0, IORING_TIMEOUT_ABS);
      io_uring_sqe_set_data64(sqe, kTimerTag | timer_generation_);
      timer_armed_ = true;
      timer_deadline_ = *deadline;
    }
    // EINTR and the like just end the wait early; the loop re-checks for work.
    io_uring_submit_and_wait(&ring_, block ? 1 : 0);
    const bool watched_ready = reap();
    if (mechanism_ == WakeMechanism::futex) end_block(*word_);
    return watched_ready;
  }

 private:
  Result<void> require(int opcode, const char* missing) {
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    const bool supported = probe != nullptr && io_uring_opcode_supported(probe, opcode);
    if (probe != nullptr) io_uring_free_probe(probe);
    if (!supported) return error(Errc::unavailable, missing);
    return {};
  }

  Result<void> make_eventfd() {
    if (eventfd_ >= 0) return {};
    eventfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (eventfd_ < 0) return error(Errc::io_error, std::string("eventfd: ") + std::strerror(errno));
    return {};
  }

  void write_eventfd() noexcept {
    const std::uint64_t one = 1;
    // A failed write means the counter is saturated: a wakeup is pending anyway.
    [[maybe_unused]] ssize_t written = ::write(eventfd_, &one, sizeof one);
  }

  /// Arms what the notification completes. For MSG_RING the waker posts the completion
  /// itself; what is armed is the eventfd read a waker without a ring falls back to.
  void arm_wake() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (mechanism_ != WakeMechanism::futex) {
      io_uring_prep_read(sqe, eventfd_, &counter_, sizeof counter_, 0);
    } else {
      // What liburing 2.5's io_uring_prep_futex_wait fills in: the futex2 flags in `fd`, the
      // word's address, the value to wait on in `off`, the bitset in `addr3`. It completes at
      // once (EAGAIN) when the word no longer says asleep.
      io_uring_prep_rw(kOpFutexWait, sqe,
                       static_cast<int>(kFutex2SizeU32 | (shared_word_ ? 0 : kFutex2Private)),
                       &word_->state, 0, kWordAsleep);
      sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
    }
    io_uring_sqe_set_data64(sqe, kWakeTag);
    wake_armed_ = true;
  }

  /// MSG_RING from this thread's own small ring into this waiter's ring; false when the OS
  /// refuses it here (no ring for this thread, or the message failed).
  bool post_wake() noexcept {
    io_uring* sender = SenderRing::of_this_thread().get();
    if (sender == nullptr) return false;
    io_uring_sqe* sqe = io_uring_get_sqe(sender);
    if (sqe == nullptr) return false;
    io_uring_prep_msg_ring(sqe, ring_.ring_fd, 0, kPostTag, 0);
    // MSG_RING runs inline: its own completion is ready when submit returns.
    if (io_uring_submit_and_wait(sender, 1) < 0) return false;
    bool posted = false;
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(sender, &cqe) == 0) {
      posted = posted || cqe->res >= 0;
      io_uring_cqe_seen(sender, cqe);
    }
    return posted;
  }

  /// Takes the completions; true when the watched descriptor's poll completed.
  bool reap() noexcept {
    io_uring_cqe* cqe = nullptr;
    unsigned head = 0;
    unsigned seen = 0;
    bool watched_ready = false;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      const std::uint64_t tag = io_uring_cqe_get_data64(cqe);
      if (tag == kWakeTag) {
        wake_armed_ = false;
      } else if (tag == kPostTag) {
        took_post_ = true;
      } else if (tag == kWatchTag) {
        watch_armed_ = false;
        watched_ready = true;
      } else if (tag == (kTimerTag | timer_generation_)) {
        timer_armed_ = false;
      }
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
    return watched_ready;
  }

  const WakeMechanism mechanism_;
  io_uring ring_{};
  bool ring_ready_ = false;
  int eventfd_ = -1;
  WakeWord own_word_;
  WakeWord* word_ = nullptr;
  bool shared_word_ = false;
  std::uint64_t counter_ = 0;
  bool wake_armed_ = false;
  int watched_ = -1;
  bool watch_armed_ = false;
  bool timer_armed_ = false;
  Instant timer_deadline_{};
  std::uint64_t timer_generation_ = 0;
  __kernel_timespec timespec_{};
  bool took_post_ = false;  ///< A MSG_RING completion was reaped (check_post).
};

}  // namespace

Result<void> check_msg_ring() {
  auto waiter = std::make_unique<UringWaiter>(WakeSource{WakeMechanism::msg_ring, -1, nullptr});
  if (auto ready = waiter->init(); !ready) return ready;
  return waiter->check_post();
}

Result<std::unique_ptr<IdleWaiter>> make_uring_waiter(WakeSource source) {
  auto waiter = std::make_unique<UringWaiter>(source);
  if (auto ready = waiter->init(); !ready) return std::move(ready).error();
  return std::unique_ptr<IdleWaiter>(std::move(waiter));
}

}  // namespace mk::runtime
