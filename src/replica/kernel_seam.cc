// The replica layer's one reach into the runtime's private side (see kernel_seam.h), through
// detail::KernelAccess: the System's SKB, other kernels' cores, and their inboxes.
#include "replica/kernel_seam.h"

#include <utility>

#include "runtime/inbox.h"
#include "runtime/kernel_core.h"

namespace mk::replica {

namespace {

runtime::KernelCore& core(Kernel& kernel) noexcept {
  return detail::KernelAccess::core(kernel);
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
