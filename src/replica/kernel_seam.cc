// The replica layer's one reach into the runtime's private side (see kernel_seam.h).
//
// Kernel keeps its KernelCore private and the runtime offers no accessor for the System's SKB
// or the inbox yet, so the pointer is obtained through an explicit template instantiation,
// where the language waives access checks ([temp.spec.general]). Only this file does it; a
// `detail::KernelAccess::core(Kernel&)` in the runtime would replace it one for one.
#include "replica/kernel_seam.h"

#include <utility>

#include "runtime/inbox.h"
#include "runtime/kernel_core.h"

namespace mk::replica {

namespace {

using CoreMember = std::unique_ptr<runtime::KernelCore> Kernel::*;

struct CoreTag {
  friend CoreMember core_member(CoreTag);
};

template <CoreMember Member>
struct CoreAccess {
  friend CoreMember core_member(CoreTag) { return Member; }
};

template struct CoreAccess<&Kernel::core_>;

runtime::KernelCore& core(Kernel& kernel) noexcept {
  return *(kernel.*core_member(CoreTag{}));
}

class WorkItem final : public runtime::InboxItem {
 public:
  explicit WorkItem(std::unique_ptr<RemoteWork> work) : work_(std::move(work)) {}
  void deliver(runtime::KernelCore& kernel) override {
    if (!kernel.stopping()) work_->run(kernel.self);
  }

 private:
  std::unique_ptr<RemoteWork> work_;
};

}  // namespace

const Skb& skb_of(Kernel& kernel) noexcept {
  return *core(kernel).fabric.skb;
}

CoreId core_of(Kernel& kernel, KernelId id) noexcept {
  return core(kernel).fabric.cores[id];
}

void post_work(Kernel& kernel, KernelId to, std::unique_ptr<RemoteWork> work) {
  core(kernel).post_to(to, new WorkItem(std::move(work)));
}

}  // namespace mk::replica
