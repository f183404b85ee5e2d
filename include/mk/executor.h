// mk::Executor and mk::Notifier: what runs kernels, and how a sleeping kernel is woken.
#pragma once

#include <span>
#include <string>

#include "mk/channel.h"
#include "mk/clock.h"
#include "mk/fan_out.h"
#include "mk/function_ref.h"
#include "mk/kernel_id.h"
#include "mk/result.h"

namespace mk {

class Kernel;

/// Wakes one kernel that went to sleep. Called from any thread (other kernels, the System);
/// must be cheap, must not block, and may be called when the kernel is already awake.
class Notifier {
 public:
  virtual ~Notifier() = default;
  /// Makes the kernel's executor run it again soon.
  virtual void notify() noexcept = 0;
};

/// Where an executor reports a kernel it found dead or stuck (a simulated crash, a stalled
/// thread, an exited process); the System then declares the kernel failed on every other
/// kernel. Called from any thread, possibly more than once for one kernel (later calls are
/// ignored), never while the executor holds a lock the System takes.
class FailureSink {
 public:
  virtual ~FailureSink() = default;
  /// Kernel `kernel` failed; `reason` says how, for the log and for errors.
  virtual void kernel_failed(KernelId kernel, std::string reason) noexcept = 0;
};

/// What runs kernels: the seam between kernel code and the way it is driven. The threaded
/// executor (the default) gives each kernel a pinned thread; a simulator drives the same
/// kernels one turn at a time on virtual time. An executor drives each kernel like this:
///
///     kernel.set_notifier(notifier);          // once, before the kernel runs
///     while (!kernel.stopped()) {
///       if (kernel.run_turn()) continue;      // did some work
///       ... optionally poll a little longer ...
///       if (kernel.prepare_to_sleep())        // announced sleep, nothing arrived since
///         block until notifier.notify() or kernel.next_deadline();
///       kernel.end_sleep();
///     }
///
/// Kernel code never blocks and never reads time except through clock(), so nothing in a
/// kernel or a protocol changes between executors.
class Executor {
 public:
  virtual ~Executor() = default;

  /// The clock every kernel run by this executor reads.
  virtual const Clock& clock() const noexcept = 0;

  /// Starts running `kernels` (the System's, in KernelId order). On failure, stops whatever it
  /// started, releases it, and returns the error; the kernels are then never run.
  virtual Result<void> start(std::span<Kernel* const> kernels) = 0;

  /// Returns once every kernel has stopped and no executor thread runs kernel code any more.
  /// Called once, after every kernel was asked to stop.
  virtual void join() = 0;
  /// Starts running one more kernel after start (System::add_kernel), its memory preferably
  /// from `numa_node` (-1: any). On failure nothing of it runs. The default refuses
  /// (unavailable): an executor that cannot grow need not support it.
  virtual Result<void> add(Kernel& kernel, int numa_node) {
    (void)kernel;
    (void)numa_node;
    return error(Errc::unavailable, "this executor cannot add kernels to a running system");
  }
  /// Returns once `kernel`, asked to stop while the others run (System::remove_kernel), has
  /// stopped and no executor thread runs its code. The default refuses (unavailable).
  virtual Result<void> retire(Kernel& kernel) {
    (void)kernel;
    return error(Errc::unavailable, "this executor cannot take kernels offline");
  }

  /// Gives the executor the place to report failed kernels; called once, before start. The
  /// default ignores it: an executor that detects nothing reports nothing.
  virtual void watch_failures(FailureSink& sink) { (void)sink; }

  /// Makes the channel that carries kernel `from`'s messages to kernel `to` (`from == to` for
  /// a kernel's channel to itself), of the `kind` the SKB or the Config chose. Called on the
  /// receiving kernel's thread when the pair binds, and once per kind at boot with from ==
  /// to == 0 to check the options. The default is mk::make_channel(kind, options); a
  /// simulator returns channels of its own that carry virtual time, whatever the kind.
  virtual Result<ChannelEnds> make_channel(KernelId from, KernelId to, ChannelKind kind,
                                           const ChannelOptions& options) {
    (void)from;
    (void)to;
    return mk::make_channel(kind, options);
  }

  /// Called by a thread outside the kernels that is about to wait for them (System::run): an
  /// executor that runs kernels on the caller's thread runs them here until `done()` holds,
  /// and fails (timed_out) rather than return with `done()` false, since the caller would then
  /// wait for ever. The default returns at once: kernels on threads of their own need no help.
  virtual Result<void> drive(FunctionRef<bool()> done) {
    (void)done;
    return {};
  }

  /// Kernel `from`, in its turn, is about to post one message to each of `fan_out.sends`, in
  /// that order; end_fan_out(from) follows its last post. An executor that models where
  /// buffers live (the simulator's cache-line model) prices those posts by the fan-out's
  /// buffers: one shared buffer, or each on its send's node. A post that the ring has no room
  /// for is queued and sent later, outside the fan-out, as any message. The default ignores
  /// the fan-out: rings stay where boot put them, each on its receiver's node. (With the
  /// default threaded executor the runtime itself writes a shared buffer once: docs/runtime.md,
  /// "Shared buffers".) `fan_out` and the sends it refers to stay valid until end_fan_out(from).
  virtual void begin_fan_out(KernelId from, const FanOut& fan_out) {
    (void)from;
    (void)fan_out;
  }
  /// Kernel `from` has posted the fan-out begun last.
  virtual void end_fan_out(KernelId from) { (void)from; }
};

}  // namespace mk
