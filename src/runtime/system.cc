// System: boot, hand-over of work from outside, domains and shutdown.
#include "mk/system.h"

#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "mk/domain.h"
#include "runtime/barrier.h"
#include "runtime/boot_plan.h"
#include "runtime/fabric.h"
#include "runtime/kernel_core.h"
#include "runtime/threaded_executor.h"

namespace mk {

struct System::Impl {
  explicit Impl(Skb facts) : skb(std::move(facts)) {}

  Skb skb;
  runtime::BootPlan plan;
  runtime::Fabric fabric;
  std::unique_ptr<Executor> executor;
  std::vector<std::unique_ptr<Kernel>> kernels;
  /// Made at boot so that shutdown cannot fail for want of memory.
  std::vector<std::unique_ptr<runtime::InboxItem>> stop_requests;

  /// Shared by threads handing work to kernels; exclusive while shutdown flips `stopping`,
  /// so no hand-over races with the kernels' teardown. Guards no kernel state.
  std::shared_mutex entry;
  bool stopping = false;
  /// Serialises shutdown() callers; the second waits for the first to finish.
  std::mutex shutdown_mutex;
  bool shut_down = false;

  std::mutex domains_mutex;
  std::vector<std::string> domain_names;  ///< By DomainId.
};

System::System(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

System::~System() {
  if (impl_) (void)shutdown();
}

Result<std::unique_ptr<System>> System::boot(Config config) {
  return boot(std::move(config), nullptr);
}

Result<std::unique_ptr<System>> System::boot(Config config, std::unique_ptr<Executor> executor) {
  auto skb = Skb::discover();
  if (!skb) return std::move(skb).error();
  return boot(std::move(config), std::move(executor), std::move(*skb));
}

Result<std::unique_ptr<System>> System::boot(Config config, std::unique_ptr<Executor> executor,
                                             Skb skb) {
  auto impl = std::make_unique<Impl>(std::move(skb));
  auto plan = runtime::plan_boot(config, impl->skb);
  if (!plan) return std::move(plan).error();
  impl->plan = std::move(*plan);
  runtime::init_barriers();

  if (!executor) {
    executor = std::make_unique<runtime::ThreadedExecutor>(runtime::ThreadedOptions{
        impl->plan.poll_budget, impl->plan.wait_backend, impl->plan.numa_nodes});
  }
  // After the executor exists: it makes the channels, and a simulator's need not live on
  // this machine's NUMA nodes.
  if (auto slots = runtime::check_ring_slots(impl->plan, impl->skb, *executor); !slots) {
    return std::move(slots).error();
  }
  impl->executor = std::move(executor);

  runtime::Fabric& fabric = impl->fabric;
  fabric.cores = impl->plan.cores;
  fabric.numa_nodes = impl->plan.numa_nodes;
  fabric.skb = &impl->skb;
  fabric.executor = impl->executor.get();
  fabric.forced_kind = impl->plan.channel_kind;
  fabric.ring_slots = impl->plan.ring_slots;
  fabric.line_size = impl->plan.line_size;
  fabric.poll_batch = impl->plan.poll_batch;
  fabric.kernels.resize(impl->plan.cores.size());

  std::vector<Kernel*> kernels;
  for (KernelId id = 0; id < impl->plan.cores.size(); ++id) {
    impl->kernels.push_back(
        std::unique_ptr<Kernel>(new Kernel(id, fabric, impl->executor->clock())));
    fabric.kernels[id] = &impl->kernels.back()->core_->shared;
    kernels.push_back(impl->kernels.back().get());
    impl->stop_requests.push_back(runtime::make_stop_request());
  }
  if (auto started = impl->executor->start(kernels); !started) return std::move(started).error();
  return std::unique_ptr<System>(new System(std::move(impl)));
}

std::size_t System::size() const noexcept {
  return impl_->kernels.size();
}

Result<CoreId> System::core_of(KernelId kernel) const {
  if (kernel >= size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) + ": no such kernel");
  }
  return impl_->plan.cores[kernel];
}

const Skb& System::skb() const noexcept {
  return impl_->skb;
}

std::chrono::nanoseconds System::poll_budget() const noexcept {
  return impl_->plan.poll_budget;
}

Result<KernelStats> System::stats(KernelId kernel) const {
  if (kernel >= size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) + ": no such kernel");
  }
  return impl_->kernels[kernel]->stats();
}

Result<void> System::post(KernelId kernel, std::unique_ptr<detail::ExternalWork> work) {
  std::shared_lock lock(impl_->entry);
  if (impl_->stopping) return error(Errc::shutting_down, "the system is shutting down");
  if (kernel >= size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) +
                                      ": no such kernel (the system has " + std::to_string(size()) +
                                      ")");
  }
  impl_->fabric.kernels[kernel]->inbox.push(runtime::make_external_item(std::move(work)).release());
  impl_->fabric.ring(kernel);
  return {};
}

Result<void> System::drive(FunctionRef<bool()> done) {
  return impl_->executor->drive(done);
}

Result<void> System::for_each_kernel(const std::function<void(Kernel&)>& setup) {
  for (KernelId id = 0; id < size(); ++id) {
    auto done = run(id, [&setup](Kernel& kernel) -> Task<void> {
      setup(kernel);
      co_return;
    });
    if (!done) return done;
  }
  return {};
}

Result<Domain> System::create_domain(std::string name, std::vector<KernelId> kernels) {
  if (name.empty()) return error(Errc::invalid_argument, "domain name: empty");
  if (kernels.empty()) {
    return error(Errc::invalid_argument, "domain '" + name + "': kernels: empty");
  }
  std::vector<bool> seen(size(), false);
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    if (kernels[i] >= size()) {
      return error(Errc::not_found, "domain '" + name + "': kernels[" + std::to_string(i) +
                                        "]: no kernel " + std::to_string(kernels[i]));
    }
    if (seen[kernels[i]]) {
      return error(Errc::invalid_argument, "domain '" + name + "': kernels[" + std::to_string(i) +
                                               "]: kernel " + std::to_string(kernels[i]) +
                                               " listed twice");
    }
    seen[kernels[i]] = true;
  }
  DomainId id;
  {
    std::lock_guard lock(impl_->domains_mutex);
    for (const auto& existing : impl_->domain_names) {
      if (existing == name) {
        return error(Errc::invalid_argument, "domain name: '" + name + "' already exists");
      }
    }
    id = static_cast<DomainId>(impl_->domain_names.size());
    impl_->domain_names.push_back(name);
  }
  for (KernelId kernel : kernels) {
    auto made = run(kernel, [id, &name](Kernel& k) -> Task<void> {
      detail::KernelAccess::add_dispatcher(
          k, std::unique_ptr<Dispatcher>(new Dispatcher(k, id, name)));
      co_return;
    });
    if (!made) return std::move(made).error();
  }
  return Domain(*this, id, std::move(name), std::move(kernels));
}

Result<void> System::shutdown() {
  if (Kernel::current() != nullptr) {
    return error(Errc::invalid_argument,
                 "System::shutdown called from a kernel's thread, which cannot join itself");
  }
  std::lock_guard serial(impl_->shutdown_mutex);
  if (impl_->shut_down) return {};
  {
    std::unique_lock lock(impl_->entry);
    impl_->stopping = true;
  }
  for (KernelId id = 0; id < size(); ++id) {
    impl_->fabric.kernels[id]->inbox.push(impl_->stop_requests[id].release());
    impl_->fabric.ring(id);
  }
  impl_->executor->join();
  // Every kernel thread has ended: destroy every unfinished task before any kernel, since a
  // task's frame may refer to other kernels through its channels' ends.
  for (auto& kernel : impl_->kernels)
    kernel->core_->teardown();
  impl_->kernels.clear();
  impl_->shut_down = true;
  return {};
}

Dispatcher* Dispatcher::of(Kernel& kernel, DomainId domain) noexcept {
  return detail::KernelAccess::find_dispatcher(kernel, domain);
}

}  // namespace mk
