// How a kernel thread blocks when idle, and how other threads wake it.
#pragma once

#include <memory>
#include <optional>

#include "mk/clock.h"
#include "mk/executor.h"
#include "mk/result.h"

namespace mk::runtime {

/// One kernel's place to sleep. notify() may come from any thread, before, during or after
/// wait(); a notification that arrives while the kernel is awake makes its next wait return
/// at once, so none is lost.
class IdleWaiter : public Notifier {
 public:
  /// Blocks until notified, until `deadline` (steady clock), or until the watched descriptor
  /// is readable, whichever comes first. May return early; callers re-check for work. Returns
  /// true when the watched descriptor was found readable. Only the owning kernel's thread
  /// calls it.
  virtual bool wait(std::optional<Instant> deadline) noexcept = 0;
  /// Makes every later wait also end when `fd` is readable (level-triggered: the caller drains
  /// it, or the next wait ends at once). One descriptor; the caller keeps it open.
  virtual void watch(int fd) noexcept = 0;
};

/// A waiter that blocks in io_uring: one read of an eventfd (the notification), one poll of the
/// watched descriptor if any, and, when the kernel has a timer, one IORING_OP_TIMEOUT. Fails
/// with `unavailable` when the OS refuses io_uring (EPERM: disabled by sysctl or seccomp;
/// ENOSYS: not built in), io_error otherwise. Call on the kernel's own thread: the ring is set
/// up for a single issuer. `eventfd`: the notification's eventfd, which the waiter then owns
/// (a kernel process's, made before the fork so that other processes can write it); -1: a new
/// one.
Result<std::unique_ptr<IdleWaiter>> make_uring_waiter(int eventfd = -1);

/// A waiter that blocks in ppoll on an eventfd (and the watched descriptor), for machines
/// without io_uring. `eventfd` as for make_uring_waiter.
Result<std::unique_ptr<IdleWaiter>> make_poll_waiter(int eventfd = -1);

}  // namespace mk::runtime
