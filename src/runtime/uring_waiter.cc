#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "runtime/idle_waiter.h"

namespace mk::runtime {

namespace {

constexpr std::uint64_t kWakeTag = 1;
constexpr std::uint64_t kIgnoredTag = 2;
constexpr std::uint64_t kWatchTag = 3;
/// Timer completions carry their generation above this bit, so a completion of a replaced
/// timer is told from the live one.
constexpr std::uint64_t kTimerTag = std::uint64_t{1} << 32;
constexpr unsigned kEntries = 8;

__kernel_timespec to_timespec(Instant when) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
  __kernel_timespec ts{};
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  return ts;
}

class UringWaiter final : public IdleWaiter {
 public:
  explicit UringWaiter(int eventfd) : eventfd_(eventfd) {}
  UringWaiter(const UringWaiter&) = delete;
  UringWaiter& operator=(const UringWaiter&) = delete;
  ~UringWaiter() override {
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (eventfd_ >= 0) ::close(eventfd_);
  }

  /// Sets up the ring in place (it must not move afterwards) and the eventfd.
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
    if (eventfd_ >= 0) return {};
    eventfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (eventfd_ < 0) return error(Errc::io_error, std::string("eventfd: ") + std::strerror(errno));
    return {};
  }

  void notify() noexcept override {
    const std::uint64_t one = 1;
    // A failed write means the counter is saturated: a wakeup is pending anyway.
    [[maybe_unused]] ssize_t written = ::write(eventfd_, &one, sizeof one);
  }

  void watch(int fd) noexcept override { watched_ = fd; }

  bool wait(std::optional<Instant> deadline) noexcept override {
    if (watched_ >= 0 && !watch_armed_) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_poll_add(sqe, watched_, POLLIN);
      io_uring_sqe_set_data64(sqe, kWatchTag);
      watch_armed_ = true;
    }
    if (!read_armed_) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_read(sqe, eventfd_, &counter_, sizeof counter_, 0);
      io_uring_sqe_set_data64(sqe, kWakeTag);
      read_armed_ = true;
    }
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
    io_uring_submit_and_wait(&ring_, 1);
    return reap();
  }

 private:
  /// Takes the completions; true when the watched descriptor's poll completed.
  bool reap() noexcept {
    io_uring_cqe* cqe = nullptr;
    unsigned head = 0;
    unsigned seen = 0;
    bool watched_ready = false;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      const std::uint64_t tag = io_uring_cqe_get_data64(cqe);
      if (tag == kWakeTag) {
        read_armed_ = false;
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

  io_uring ring_{};
  bool ring_ready_ = false;
  int eventfd_ = -1;
  std::uint64_t counter_ = 0;
  bool read_armed_ = false;
  int watched_ = -1;
  bool watch_armed_ = false;
  bool timer_armed_ = false;
  Instant timer_deadline_{};
  std::uint64_t timer_generation_ = 0;
  __kernel_timespec timespec_{};
};

}  // namespace

Result<std::unique_ptr<IdleWaiter>> make_uring_waiter(int eventfd) {
  auto waiter = std::make_unique<UringWaiter>(eventfd);
  if (auto ready = waiter->init(); !ready) return std::move(ready).error();
  return std::unique_ptr<IdleWaiter>(std::move(waiter));
}

}  // namespace mk::runtime
