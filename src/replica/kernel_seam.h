// What the replica layer needs from the runtime beyond the public Kernel API: the SKB and
// kernel placement (to build routes from inside a kernel, where System is out of reach), and
// the monitor's inbox (to install an object's replica on another kernel, which runs no
// replica code until it has one).
#pragma once

#include <memory>

#include "mk/core_id.h"
#include "mk/kernel.h"
#include "mk/skb.h"

namespace mk::replica {

/// The SKB of `kernel`'s System.
const Skb& skb_of(Kernel& kernel) noexcept;

/// The core kernel `id` of `kernel`'s System runs on (id < kernel.system_size()).
CoreId core_of(Kernel& kernel, KernelId id) noexcept;

/// Work run on another kernel's own thread, through its monitor's inbox.
class RemoteWork {
 public:
  virtual ~RemoteWork() = default;
  /// Runs on the target kernel's thread, once.
  virtual void run(Kernel& target) = 0;
};

/// Hands `work` to kernel `to`'s inbox and wakes it; from `kernel`'s thread.
void post_work(Kernel& kernel, KernelId to, std::unique_ptr<RemoteWork> work);

}  // namespace mk::replica
