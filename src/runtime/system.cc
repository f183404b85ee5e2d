// System: boot, hand-over of work from outside, domains and shutdown.
#include "mk/system.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "mk/domain.h"
#include "mk/latency_cache.h"
#include "runtime/barrier.h"
#include "runtime/boot_plan.h"
#include "runtime/fabric.h"
#include "runtime/kernel_core.h"
#include "runtime/log.h"
#include "runtime/process_host.h"
#include "runtime/threaded_executor.h"

namespace mk {

struct System::Impl final : FailureSink {
  explicit Impl(Skb facts) : skb(std::move(facts)) {}

  /// The executor's failure detector: declares the kernel failed unless it already is, or is
  /// offline, or the System is stopping.
  void kernel_failed(KernelId kernel, std::string reason) noexcept override {
    std::unique_lock lock(entry);
    if (stopping || kernel >= offline.size() || offline[kernel]) return;
    declare_failed_locked(kernel, reason);
  }

  /// Marks `kernel` failed and tells every other kernel; `entry` held exclusively.
  void declare_failed_locked(KernelId kernel, const std::string& reason) {
    offline[kernel] = true;
    runtime::KernelShared& shared = *fabric.kernels[kernel];
    // Release, failed before offline: whoever sees it offline and reads `failed` knows why.
    shared.failed.store(true, std::memory_order_release);
    shared.offline.store(true, std::memory_order_release);
    // A kernel that is only stuck stops when it next takes its inbox; a crashed one never does.
    fabric.post(kernel, stop_requests[kernel].release());
    for (KernelId other = 0; other < offline.size(); ++other) {
      if (offline[other]) continue;
      fabric.post(other, runtime::make_peer_failed(kernel).release());
    }
    runtime::log_line("kernel " + std::to_string(kernel) + " declared failed: " + reason);
    failures.notify_all();
  }

  Skb skb;
  /// Isolation::processes: the kernel processes. Null when kernels are threads (or simulated);
  /// then everything below the plan is in use instead.
  std::unique_ptr<runtime::ProcessHost> processes;
  /// Config::setup: run on each kernel before it serves, at boot and by add_kernel.
  std::function<Result<void>(Kernel&)> setup;
  runtime::BootPlan plan;
  runtime::Fabric fabric;
  std::unique_ptr<Executor> executor;
  std::vector<std::unique_ptr<Kernel>> kernels;
  /// Made at boot so that shutdown cannot fail for want of memory.
  std::vector<std::unique_ptr<runtime::InboxItem>> stop_requests;

  /// Shared by threads handing work to kernels or reading the kernel table; exclusive while
  /// shutdown flips `stopping` (so no hand-over races with the kernels' teardown) and while
  /// add_kernel grows the table. Guards no kernel state.
  std::shared_mutex entry;
  bool stopping = false;
  /// By KernelId: taken offline (or being taken), or failed; guarded by `entry`.
  std::vector<bool> offline;
  /// Notified, under `entry`, whenever a kernel is declared failed or taken offline.
  std::condition_variable_any failures;
  /// Serialises add_kernel, remove_kernel and shutdown: each changes which kernels run.
  std::mutex membership;
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
  // What `mk-skb measure` measured on this machine (round trips per channel kind, which pick
  // each pair's transport, and the prefetch pair distance). Boot measures nothing itself: that
  // is quadratic in the cores. A cache it cannot read leaves the SKB's defaults, and says so.
  if (auto cached = load_cached_measurements(*skb); !cached) {
    runtime::log_line("boot: measured facts not used: " + cached.error().describe());
  }
  return boot(std::move(config), std::move(executor), std::move(*skb));
}

Result<std::unique_ptr<System>> System::boot(Config config, std::unique_ptr<Executor> executor,
                                             Skb skb) {
  auto impl = std::make_unique<Impl>(std::move(skb));
  auto plan = runtime::plan_boot(config, impl->skb);
  if (!plan) return std::move(plan).error();
  impl->plan = std::move(*plan);
  impl->setup = std::move(config.setup);
  if (config.isolation == Isolation::processes) {
    if (executor) {
      return error(Errc::invalid_argument,
                   "isolation: processes runs each kernel in a process of its own, not on a given "
                   "executor (the simulator runs kernels as threads)");
    }
    if (impl->plan.stall_timeout) {
      return error(Errc::invalid_argument,
                   "stall_timeout: the stall detector watches kernel threads; with isolation "
                   "processes a stuck kernel is declared failed (and killed) by declare_failed");
    }
    if (impl->plan.channel_kind && *impl->plan.channel_kind != ChannelKind::urpc) {
      return error(Errc::invalid_argument,
                   "channel_kind: kernel processes share urpc rings only (a lockfree queue "
                   "cannot live in memory two processes map at different addresses)");
    }
    if (auto woken = runtime::plan_wake(config, impl->skb, impl->plan); !woken) {
      return std::move(woken).error();
    }
    runtime::plan_answers(impl->skb, impl->plan);
    auto host = runtime::ProcessHost::boot(impl->plan, impl->skb, impl->setup);
    if (!host) return std::move(host).error();
    impl->processes = std::move(*host);
    return std::unique_ptr<System>(new System(std::move(impl)));
  }
  runtime::init_barriers();

  // Only the default executor's kernels are threads of this process reading ordinary memory;
  // another executor (the simulator) prices shared buffers itself.
  const bool threads_of_this_process = !executor;
  if (!executor) {
    if (auto woken = runtime::plan_wake(config, impl->skb, impl->plan); !woken) {
      return std::move(woken).error();
    }
    runtime::plan_answers(impl->skb, impl->plan);
    executor = std::make_unique<runtime::ThreadedExecutor>(runtime::ThreadedOptions{
        impl->plan.poll_budget, impl->plan.wait_backend, impl->plan.wake_mechanism,
        impl->plan.numa_nodes, impl->plan.stall_timeout});
  }
  impl->executor = std::move(executor);

  runtime::Fabric& fabric = impl->fabric;
  const std::size_t capacity = impl->plan.capacity;
  fabric.cores = impl->plan.cores;
  fabric.cores.resize(capacity);
  fabric.numa_nodes = impl->plan.numa_nodes;
  fabric.numa_nodes.resize(capacity, -1);
  fabric.skb = &impl->skb;
  fabric.executor = impl->executor.get();
  fabric.forced_kind = impl->plan.channel_kind;
  fabric.forced_answer_path = impl->plan.answer_path;
  fabric.ring_slots = impl->plan.ring_slots;
  fabric.poll_batch = impl->plan.poll_batch;
  fabric.system_id = impl->plan.system_id;
  fabric.shared_buffers = threads_of_this_process;
  fabric.kernels.resize(capacity);

  std::vector<Kernel*> kernels;
  for (KernelId id = 0; id < impl->plan.cores.size(); ++id) {
    impl->kernels.push_back(
        std::unique_ptr<Kernel>(new Kernel(id, fabric, impl->executor->clock())));
    fabric.kernels[id] = &impl->kernels.back()->core_->shared;
    kernels.push_back(impl->kernels.back().get());
    impl->stop_requests.push_back(runtime::make_stop_request());
  }
  impl->offline.assign(kernels.size(), false);
  // Release: kernel threads start after this and load it with acquire (Fabric::size).
  fabric.count.store(kernels.size(), std::memory_order_release);
  impl->executor->watch_failures(*impl);
  if (auto started = impl->executor->start(kernels); !started) return std::move(started).error();
  auto system = std::unique_ptr<System>(new System(std::move(impl)));
  for (KernelId id = 0; id < system->size(); ++id) {
    if (auto ready = system->run_setup(id); !ready) {
      (void)system->shutdown();
      return std::move(ready).error();
    }
  }
  return system;
}

Result<void> System::run_setup(KernelId kernel) {
  if (!impl_->setup) return {};
  auto outcome = run(
      kernel, [setup = &impl_->setup](Kernel& k) -> Task<Result<void>> { co_return (*setup)(k); });
  if (outcome && *outcome) return {};
  const Error& failure = outcome ? outcome->error() : outcome.error();
  return error(failure.code,
               "kernel " + std::to_string(kernel) + ": setup failed: " + failure.message);
}

Isolation System::isolation() const noexcept {
  return impl_->processes ? Isolation::processes : Isolation::threads;
}

Result<int> System::pid_of(KernelId kernel) const {
  if (!impl_->processes) {
    return error(Errc::unavailable, "pid_of: kernels are threads of this process");
  }
  return impl_->processes->pid_of(kernel);
}

Result<std::vector<std::byte>> System::call_remote(KernelId kernel, std::uint32_t id,
                                                   std::vector<std::byte> arguments, bool wait) {
  if (!impl_->processes) {
    return error(Errc::internal, "call_remote: kernels are threads of this process");
  }
  return impl_->processes->call(kernel, id, std::move(arguments), wait);
}

std::size_t System::size() const noexcept {
  if (impl_->processes) return impl_->processes->size();
  return impl_->fabric.size();
}

namespace {

/// invalid_argument when called from a kernel's thread: `what` waits for kernels to start or
/// stop, which a kernel's own thread must not.
std::optional<Error> refuse_on_kernel_thread(const char* what) {
  if (Kernel::current() == nullptr) return std::nullopt;
  return error(Errc::invalid_argument, std::string("System::") + what +
                                           " called from a kernel's thread; call it from "
                                           "outside the kernels, like System::run");
}

}  // namespace

Result<KernelId> System::add_kernel(CoreId core) {
  if (auto refused = refuse_on_kernel_thread("add_kernel")) return std::move(*refused);
  if (impl_->processes) return impl_->processes->add_kernel(core);
  std::unique_lock membership(impl_->membership);
  // Exclusive: no hand-over (post) reads the kernel table while it grows.
  std::unique_lock lock(impl_->entry);
  if (impl_->stopping) return error(Errc::shutting_down, "the system is shutting down");
  auto node = runtime::plan_added_kernel(impl_->plan, impl_->skb, core);
  if (!node) return std::move(node).error();
  runtime::BootPlan grown = impl_->plan;
  grown.cores.push_back(core);
  grown.numa_nodes.push_back(*node);

  runtime::Fabric& fabric = impl_->fabric;
  const KernelId id = static_cast<KernelId>(impl_->kernels.size());
  auto kernel = std::unique_ptr<Kernel>(new Kernel(id, fabric, impl_->executor->clock()));
  auto stop_request = runtime::make_stop_request();
  // Entries above size() are read by nobody until the store to count below publishes them.
  fabric.kernels[id] = &kernel->core_->shared;
  fabric.cores[id] = core;
  fabric.numa_nodes[id] = *node;
  if (auto started = impl_->executor->add(*kernel, *node); !started) {
    return std::move(started).error();
  }
  impl_->plan = std::move(grown);
  impl_->offline.push_back(false);
  impl_->kernels.push_back(std::move(kernel));
  impl_->stop_requests.push_back(std::move(stop_request));
  // Release: pairs with Fabric::size's acquire, so a kernel that sees the new id sees its
  // entries. The new kernel itself started before this and cannot yet be reached.
  fabric.count.store(id + 1, std::memory_order_release);
  lock.unlock();
  if (auto ready = run_setup(id); !ready) {
    // It never served anything: it goes offline again, and its id stays taken.
    membership.unlock();
    (void)remove_kernel(id);
    return std::move(ready).error();
  }
  return id;
}

Result<void> System::remove_kernel(KernelId kernel) {
  if (auto refused = refuse_on_kernel_thread("remove_kernel")) return std::move(*refused);
  if (impl_->processes) return impl_->processes->remove_kernel(kernel);
  std::lock_guard membership(impl_->membership);
  runtime::Fabric& fabric = impl_->fabric;
  {
    std::unique_lock lock(impl_->entry);
    if (impl_->stopping) return error(Errc::shutting_down, "the system is shutting down");
    // A failed kernel is already out of the System; removing it again asks for nothing more.
    if (kernel < size() && fabric.failed(kernel)) return {};
    if (kernel >= size() || impl_->offline[kernel]) {
      return error(Errc::not_found, "remove_kernel: kernel " + std::to_string(kernel) +
                                        (kernel >= size() ? ": no such kernel" : " is offline"));
    }
    if (std::count(impl_->offline.begin(), impl_->offline.end(), false) == 1) {
      return error(Errc::invalid_argument, "remove_kernel: kernel " + std::to_string(kernel) +
                                               " is the last online kernel");
    }
    // From here on hand-overs to it are refused; what it already has, it runs as it stops.
    impl_->offline[kernel] = true;
    fabric.post(kernel, impl_->stop_requests[kernel].release());
  }
  // Not under `entry`: the stopping kernel's tasks may still hand work to other kernels.
  auto retired = impl_->executor->retire(*impl_->kernels[kernel]);
  // Release: pairs with Fabric::online's acquire.
  fabric.kernels[kernel]->offline.store(true, std::memory_order_release);
  // Every other running kernel fails what it still has for it. After the flag: anything a
  // kernel sends before taking this notice is failed by it, anything after is refused.
  {
    std::unique_lock lock(impl_->entry);
    for (KernelId other = 0; other < size(); ++other) {
      if (impl_->offline[other]) continue;
      fabric.post(other, runtime::make_peer_offline(kernel).release());
    }
    impl_->failures.notify_all();
  }
  return retired;
}

Result<void> System::declare_failed(KernelId kernel) {
  if (auto refused = refuse_on_kernel_thread("declare_failed")) return std::move(*refused);
  if (impl_->processes) return impl_->processes->declare_failed(kernel);
  std::unique_lock lock(impl_->entry);
  if (impl_->stopping) return error(Errc::shutting_down, "the system is shutting down");
  if (kernel >= size()) {
    return error(Errc::not_found, "declare_failed: no kernel " + std::to_string(kernel));
  }
  if (impl_->fabric.failed(kernel)) return {};
  if (impl_->offline[kernel]) {
    return error(Errc::not_found,
                 "declare_failed: kernel " + std::to_string(kernel) + " was taken offline");
  }
  if (std::count(impl_->offline.begin(), impl_->offline.end(), false) == 1) {
    return error(Errc::invalid_argument,
                 "declare_failed: kernel " + std::to_string(kernel) + " is the last online kernel");
  }
  impl_->declare_failed_locked(kernel, "System::declare_failed");
  return {};
}

bool System::has_failed(KernelId kernel) const {
  if (impl_->processes) return impl_->processes->has_failed(kernel);
  return kernel < size() && impl_->fabric.failed(kernel);
}

Result<void> System::wait_until_failed(KernelId kernel, std::chrono::nanoseconds timeout) {
  if (auto refused = refuse_on_kernel_thread("wait_until_failed")) return std::move(*refused);
  if (impl_->processes) return impl_->processes->wait_until_failed(kernel, timeout);
  if (kernel >= size()) {
    return error(Errc::not_found, "wait_until_failed: no kernel " + std::to_string(kernel));
  }
  auto settled = [&] { return impl_->fabric.offline(kernel); };
  // A simulator runs the kernels here, until the failure or its time limit.
  (void)drive(settled);
  {
    std::unique_lock lock(impl_->entry);
    impl_->failures.wait_for(lock, timeout, [&] { return settled() || impl_->stopping; });
    if (!settled() && impl_->stopping) {
      return error(Errc::shutting_down, "the system is shutting down");
    }
  }
  if (impl_->fabric.failed(kernel)) return {};
  if (settled()) {
    return error(Errc::closed,
                 "kernel " + std::to_string(kernel) + " was taken offline without failing");
  }
  return error(Errc::timed_out, "kernel " + std::to_string(kernel) + " has not failed within " +
                                    std::to_string(timeout.count()) + " ns");
}

bool System::is_online(KernelId kernel) const {
  if (impl_->processes) return impl_->processes->is_online(kernel);
  return impl_->fabric.online(kernel);
}

Result<CoreId> System::core_of(KernelId kernel) const {
  if (impl_->processes) return impl_->processes->core_of(kernel);
  std::shared_lock lock(impl_->entry);
  if (kernel >= size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) + ": no such kernel");
  }
  return impl_->plan.cores[kernel];
}

WakeMechanism System::wake_mechanism() const noexcept {
  return impl_->plan.wake_mechanism;
}

const Skb& System::skb() const noexcept {
  return impl_->skb;
}

std::chrono::nanoseconds System::poll_budget() const noexcept {
  return impl_->plan.poll_budget;
}

Result<KernelStats> System::stats(KernelId kernel) const {
  if (impl_->processes) return impl_->processes->stats(kernel);
  std::shared_lock lock(impl_->entry);
  if (kernel >= size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) + ": no such kernel");
  }
  return impl_->kernels[kernel]->stats();
}

Result<void> System::post(KernelId kernel, std::unique_ptr<detail::ExternalWork> work) {
  if (impl_->processes) {
    return error(Errc::internal, "System::post: kernels are processes; work crosses by message");
  }
  std::shared_lock lock(impl_->entry);
  if (impl_->stopping) return error(Errc::shutting_down, "the system is shutting down");
  if (kernel >= size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) +
                                      ": no such kernel (the system has " + std::to_string(size()) +
                                      ")");
  }
  if (impl_->offline[kernel]) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) + " is offline");
  }
  impl_->fabric.post(kernel, runtime::make_external_item(std::move(work)).release());
  return {};
}

Result<void> System::drive(FunctionRef<bool()> done) {
  if (!impl_->executor) return {};
  return impl_->executor->drive(done);
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
    auto made = run(kernel, detail::AddDispatcher{}, id, name);
    if (!made) return std::move(made).error();
  }
  return Domain(*this, id, std::move(name), std::move(kernels));
}

Result<void> System::shutdown() {
  if (Kernel::current() != nullptr) {
    return error(Errc::invalid_argument,
                 "System::shutdown called from a kernel's thread, which cannot join itself");
  }
  if (impl_->processes) return impl_->processes->shutdown();
  std::lock_guard serial(impl_->shutdown_mutex);
  if (impl_->shut_down) return {};
  // After any add_kernel or remove_kernel in progress; none starts from here on.
  std::lock_guard membership(impl_->membership);
  {
    std::unique_lock lock(impl_->entry);
    impl_->stopping = true;
    impl_->failures.notify_all();
  }
  for (KernelId id = 0; id < size(); ++id) {
    // An offline kernel already took its stop request, and its thread has ended.
    if (impl_->offline[id]) continue;
    impl_->fabric.post(id, impl_->stop_requests[id].release());
  }
  impl_->executor->join();
  // Every kernel thread has ended: destroy every unfinished task before any kernel, since a
  // task's frame may refer to other kernels through its channels' ends.
  for (auto& kernel : impl_->kernels)
    kernel->core_->teardown();
  impl_->kernels.clear();
  // Every kernel is gone: size() is 0 from here on, as no id reaches a kernel any more.
  impl_->fabric.count.store(0, std::memory_order_release);
  impl_->shut_down = true;
  return {};
}

Task<void> detail::AddDispatcher::operator()(Kernel& kernel, DomainId domain,
                                             std::string name) const {
  KernelAccess::add_dispatcher(kernel,
                               std::unique_ptr<Dispatcher>(new Dispatcher(kernel, domain, name)));
  co_return;
}

Dispatcher* Dispatcher::of(Kernel& kernel, DomainId domain) noexcept {
  return detail::KernelAccess::find_dispatcher(kernel, domain);
}

}  // namespace mk
