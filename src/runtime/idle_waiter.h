// How a kernel blocks when idle, and how other kernels wake it.
#pragma once

#include <memory>
#include <optional>

#include "mk/clock.h"
#include "mk/config.h"
#include "mk/executor.h"
#include "mk/result.h"
#include "mk/wake.h"

namespace mk::runtime {

struct WakeWord;

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
  /// it, or the next wait ends at once). One descriptor; the caller keeps it open. Only for a
  /// waiter whose can_watch() is true.
  virtual void watch(int fd) noexcept = 0;
  /// False for a waiter that cannot watch a descriptor (futex(2) alone): make_idle_waiter
  /// never gives one to a kernel that must watch.
  virtual bool can_watch() const noexcept { return true; }
};

/// How a kernel's waiter is woken, and with what it was set up before the kernel ran.
struct WakeSource {
  WakeMechanism mechanism = WakeMechanism::eventfd;
  /// eventfd: the kernel's eventfd, which the waiter then owns (a kernel process's, made
  /// before the fork so that other processes can write it); -1: a new one.
  int eventfd = -1;
  /// futex: the kernel's word in memory other processes map; null: a word of the waiter's own.
  WakeWord* word = nullptr;
};

/// A waiter that blocks in io_uring: the notification (one read of an eventfd, one
/// IORING_OP_FUTEX_WAIT on the futex word, or a completion another thread posts with
/// IORING_OP_MSG_RING), one poll of the watched descriptor if any, and, when the kernel has a
/// timer, one IORING_OP_TIMEOUT. Fails with `unavailable` when the OS refuses io_uring (EPERM:
/// disabled by sysctl or seccomp; ENOSYS: not built in) or the operation the mechanism needs,
/// io_error otherwise. Call on the kernel's own thread: the ring is set up for a single issuer.
Result<std::unique_ptr<IdleWaiter>> make_uring_waiter(WakeSource source = {});

/// A waiter that blocks in ppoll on an eventfd (and the watched descriptor), for machines
/// without io_uring. `eventfd` as in WakeSource.
Result<std::unique_ptr<IdleWaiter>> make_poll_waiter(int eventfd = -1);

/// A waiter that blocks in futex(2) on its word, with the kernel's next deadline as timeout.
/// It cannot watch a descriptor (can_watch() is false). `word` as in WakeSource.
Result<std::unique_ptr<IdleWaiter>> make_futex_waiter(WakeWord* word = nullptr);

/// The waiter a kernel sleeps in when woken by `source.mechanism`, in the place `backend`
/// allows (docs/runtime.md, "Wake mechanisms"): io_uring when it can, else ppoll (eventfd) or
/// futex(2) (futex; not when `must_watch`, since a kernel process must also watch its control
/// descriptor). `unavailable`, naming the mechanism and what refused it, when none fits.
Result<std::unique_ptr<IdleWaiter>> make_idle_waiter(const WakeSource& source, WaitBackend backend,
                                                     bool must_watch);

/// Whether kernels isolated as `isolation` can be woken by `mechanism` with `backend` on this
/// machine: a waiter is made and notified once on the calling thread. Ok, or `unavailable`
/// saying why (the OS refused what the mechanism needs, or the isolation cannot use it).
Result<void> check_wake_mechanism(WakeMechanism mechanism, WaitBackend backend,
                                  Isolation isolation);

/// check_wake_mechanism's test of MSG_RING: one posted from this thread into a new waiter's
/// ring must complete there.
Result<void> check_msg_ring();

}  // namespace mk::runtime
