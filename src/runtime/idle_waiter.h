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
  /// Blocks until notified or until `deadline` (steady clock), whichever comes first. May
  /// return early; callers re-check for work. Only the owning kernel's thread calls it.
  virtual void wait(std::optional<Instant> deadline) noexcept = 0;
};

/// A waiter that blocks in io_uring: one read of an eventfd (the notification) and, when the
/// kernel has a timer, one IORING_OP_TIMEOUT. Fails with `unavailable` when the OS refuses
/// io_uring (EPERM: disabled by sysctl or seccomp; ENOSYS: not built in), io_error otherwise.
/// Call on the kernel's own thread: the ring is set up for a single issuer.
Result<std::unique_ptr<IdleWaiter>> make_uring_waiter();

/// A waiter that blocks in ppoll on an eventfd, for machines without io_uring.
Result<std::unique_ptr<IdleWaiter>> make_poll_waiter();

}  // namespace mk::runtime
