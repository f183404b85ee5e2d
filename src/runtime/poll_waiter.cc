#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "runtime/idle_waiter.h"

namespace mk::runtime {

namespace {

class PollWaiter final : public IdleWaiter {
 public:
  explicit PollWaiter(int eventfd) : eventfd_(eventfd) {}
  PollWaiter(const PollWaiter&) = delete;
  PollWaiter& operator=(const PollWaiter&) = delete;
  ~PollWaiter() override { ::close(eventfd_); }

  void notify() noexcept override {
    const std::uint64_t one = 1;
    // A failed write means the counter is saturated: a wakeup is pending anyway.
    [[maybe_unused]] ssize_t written = ::write(eventfd_, &one, sizeof one);
  }

  void watch(int fd) noexcept override { watched_ = fd; }

  bool wait(std::optional<Instant> deadline) noexcept override {
    pollfd fds[2] = {{eventfd_, POLLIN, 0}, {watched_, POLLIN, 0}};
    timespec timeout{};
    if (deadline) {
      // This executor's clock is the steady clock, so the deadline compares with it directly.
      const auto left = std::max(*deadline - std::chrono::steady_clock::now(),
                                 std::chrono::steady_clock::duration::zero());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timeout.tv_sec = ns / 1'000'000'000;
      timeout.tv_nsec = ns % 1'000'000'000;
    }
    // EINTR just ends the wait early; the loop re-checks for work.
    const nfds_t count = watched_ >= 0 ? 2 : 1;
    if (::ppoll(fds, count, deadline ? &timeout : nullptr, nullptr) <= 0) return false;
    if (fds[0].revents & POLLIN) {
      std::uint64_t counter = 0;
      [[maybe_unused]] ssize_t got = ::read(eventfd_, &counter, sizeof counter);
    }
    return count == 2 && (fds[1].revents & POLLIN) != 0;
  }

 private:
  int eventfd_;
  int watched_ = -1;
};

}  // namespace

Result<std::unique_ptr<IdleWaiter>> make_poll_waiter(int eventfd) {
  if (eventfd < 0) eventfd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (eventfd < 0) return error(Errc::io_error, std::string("eventfd: ") + std::strerror(errno));
  return std::unique_ptr<IdleWaiter>(std::make_unique<PollWaiter>(eventfd));
}

}  // namespace mk::runtime
