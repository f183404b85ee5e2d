#include "runtime/threaded_executor.h"

#include <numa.h>
#include <pthread.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "runtime/log.h"

namespace mk::runtime {

namespace {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Idle turns between two looks at the clock while a kernel spends its poll budget.
constexpr unsigned kSpinsPerClockRead = 32;

/// True when `core` shares its physical core with another usable PU.
bool has_smt_sibling(const Skb& skb, CoreId core) {
  auto info = skb.core_info(core);
  if (!info || info->core < 0) return true;  // Unknown: assume a sibling, and pause.
  for (const CoreInfo& other : skb.cores()) {
    if (other.pu != core && other.core == info->core && other.usable()) return true;
  }
  return false;
}

Result<void> pin_thread(hwloc_topology_t topology, KernelId id, CoreId core) {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (set == nullptr) return error(Errc::io_error, "hwloc_bitmap_alloc failed");
  // hwloc cpusets are indexed by the PU's OS index, which is what a CoreId is.
  hwloc_bitmap_only(set, core);
  const int rc = hwloc_set_cpubind(topology, set, HWLOC_CPUBIND_THREAD);
  const int saved = errno;
  hwloc_bitmap_free(set);
  if (rc != 0) {
    return error(Errc::io_error, "kernel " + std::to_string(id) + ": pinning to core " +
                                     std::to_string(core) + " failed: " + std::strerror(saved));
  }
  return {};
}

}  // namespace

ThreadedExecutor::ThreadedExecutor(ThreadedOptions options) : options_(std::move(options)) {}

ThreadedExecutor::~ThreadedExecutor() {
  join();
  if (topology_ != nullptr) hwloc_topology_destroy(topology_);
}

Result<void> ThreadedExecutor::start(std::span<Kernel* const> kernels) {
  if (hwloc_topology_init(&topology_) != 0 || hwloc_topology_load(topology_) != 0) {
    return error(Errc::io_error, std::string("hwloc topology: ") + std::strerror(errno));
  }
  waiters_.resize(kernels.size());
  threads_.reserve(kernels.size());
  for (std::size_t i = 0; i < kernels.size(); ++i)
    heartbeats_.push_back(std::make_unique<Heartbeat>());
  std::optional<Error> spawn_failure;
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    try {
      threads_.emplace_back([this, i, kernel = kernels[i]] { thread_main(i, *kernel); });
    } catch (const std::system_error& e) {
      spawn_failure = error(
          Errc::io_error, "kernel " + std::to_string(i) + ": cannot start its thread: " + e.what());
      break;
    }
  }
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return reported_ == threads_.size(); });
  if (spawn_failure && !failure_) failure_ = std::move(spawn_failure);
  if (failure_) {
    phase_ = Phase::aborted;
    lock.unlock();
    changed_.notify_all();
    join();
    return std::move(*failure_);
  }
  phase_ = Phase::running;
  lock.unlock();
  changed_.notify_all();
  if (options_.stall_timeout && sink_ != nullptr) {
    try {
      watchdog_ = std::thread([this] { watch_stalls(); });
    } catch (const std::system_error& e) {
      log_line(std::string("stall detector not started: ") + e.what());
    }
  }
  return {};
}

Result<void> ThreadedExecutor::add(Kernel& kernel, int numa_node) {
  std::unique_lock lock(mutex_);
  if (phase_ != Phase::running) {
    return error(Errc::invalid_argument,
                 "kernel " + std::to_string(kernel.id()) + ": the executor is not running kernels");
  }
  const std::size_t index = threads_.size();
  options_.numa_nodes.resize(index + 1, -1);
  options_.numa_nodes[index] = numa_node;
  waiters_.resize(index + 1);
  heartbeats_.push_back(std::make_unique<Heartbeat>());
  try {
    threads_.emplace_back([this, index, &kernel] { thread_main(index, kernel); });
  } catch (const std::system_error& e) {
    return error(Errc::io_error, "kernel " + std::to_string(kernel.id()) +
                                     ": cannot start its thread: " + e.what());
  }
  changed_.wait(lock, [&] { return reported_ == threads_.size(); });
  if (waiters_[index] != nullptr) return {};
  // The thread could not prepare (pinning, its waiter) and is leaving without running.
  Error failure = failure_ ? std::move(*failure_) : error(Errc::io_error, "kernel thread failed");
  failure_.reset();
  std::thread failed = std::move(threads_.back());
  threads_.pop_back();
  waiters_.pop_back();
  heartbeats_.pop_back();
  --reported_;
  lock.unlock();
  failed.join();
  return failure;
}

Result<void> ThreadedExecutor::retire(Kernel& kernel) {
  // Threads are made in KernelId order (start, then add), so the kernel's index is its id.
  std::unique_lock lock(mutex_);
  const std::size_t index = kernel.id();
  if (index >= threads_.size() || !threads_[index].joinable()) {
    return error(Errc::not_found, "kernel " + std::to_string(index) + " has no running thread");
  }
  std::thread thread = std::move(threads_[index]);
  lock.unlock();
  // Its waiter stays: other kernels may still ring the kernel's doorbell.
  thread.join();
  return {};
}

void ThreadedExecutor::join() {
  if (watchdog_.joinable()) {
    {
      std::lock_guard lock(watchdog_mutex_);
      watchdog_stop_ = true;
    }
    watchdog_wake_.notify_all();
    watchdog_.join();
  }
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
  waiters_.clear();
}

Result<std::unique_ptr<IdleWaiter>> ThreadedExecutor::prepare(std::size_t index, Kernel& kernel) {
  const std::string name = "mk-kernel-" + std::to_string(index);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (auto pinned = pin_thread(topology_, kernel.id(), kernel.core()); !pinned) {
    return std::move(pinned).error();
  }
  // From here on this thread's allocations (its rings' receiving side, its task frames) come
  // from its core's node when possible.
  if (numa_available() >= 0 && options_.numa_nodes[index] >= 0) {
    numa_set_preferred(options_.numa_nodes[index]);
  }
  return make_idle_waiter(WakeSource{options_.wake_mechanism, -1, nullptr}, options_.wait_backend,
                          false);
}

void ThreadedExecutor::thread_main(std::size_t index, Kernel& kernel) {
  auto waiter = prepare(index, kernel);
  IdleWaiter* ready = nullptr;
  Heartbeat* heartbeat = nullptr;
  {
    std::unique_lock lock(mutex_);
    if (waiter) {
      waiters_[index] = std::move(*waiter);
      ready = waiters_[index].get();
      kernel.set_notifier(*ready);
    } else if (!failure_) {
      failure_ = std::move(waiter).error();
    }
    heartbeat = heartbeats_[index].get();
    ++reported_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return phase_ != Phase::starting; });
    if (phase_ == Phase::aborted || ready == nullptr) return;
  }
  loop(kernel, *ready, *heartbeat);
}

void ThreadedExecutor::loop(Kernel& kernel, IdleWaiter& waiter, Heartbeat& heartbeat) {
  const auto budget = options_.poll_budget;
  // A pause while spinning gives the core's other hardware threads the pipeline; without
  // another one it only delays the turn that finds the message (about 80 cycles on Zen 4).
  const bool relax = has_smt_sibling(kernel.skb(), kernel.core());
  // Relaxed, all of it: the stall detector only samples whether the count moves, and a
  // stale view delays its verdict by one sample at most.
  auto beat = [&heartbeat] {
    heartbeat.beats.store(heartbeat.beats.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
  };
  while (!kernel.stopped()) {
    beat();
    if (kernel.run_turn()) continue;
    if (budget > std::chrono::nanoseconds::zero()) {
      const Instant idle_since = clock_.now();
      bool worked = false;
      // A look at the clock costs about what an idle turn does, and each turn spent spinning
      // past a message's arrival is latency: the clock is read every kSpinsPerClockRead turns.
      for (unsigned spins = 1; !worked; ++spins) {
        if (spins % kSpinsPerClockRead == 0 && clock_.now() - idle_since >= budget) break;
        if (relax) cpu_relax();
        beat();
        worked = kernel.run_turn();
      }
      if (worked || kernel.stopped()) continue;
    }
    if (kernel.prepare_to_sleep()) {
      heartbeat.blocked.store(true, std::memory_order_relaxed);
      waiter.wait(kernel.next_deadline());
      heartbeat.blocked.store(false, std::memory_order_relaxed);
    }
    kernel.end_sleep();
  }
  // Gone for good: never again a candidate for a stall.
  heartbeat.blocked.store(true, std::memory_order_relaxed);
}

void ThreadedExecutor::watch_stalls() {
  const std::chrono::nanoseconds timeout = *options_.stall_timeout;
  // A few samples per timeout: a stall is reported between 1 and 1.25 timeouts after it began.
  const auto period = timeout / 4;
  struct Seen {
    std::uint64_t beats = 0;
    Instant since{};
    bool reported = false;
  };
  std::vector<Seen> seen;
  std::vector<Heartbeat*> beats;
  std::unique_lock wake(watchdog_mutex_);
  while (!watchdog_wake_.wait_for(wake, period, [this] { return watchdog_stop_; })) {
    {
      std::lock_guard lock(mutex_);
      beats.clear();
      for (auto& heartbeat : heartbeats_)
        beats.push_back(heartbeat.get());
    }
    const Instant now = clock_.now();
    seen.resize(beats.size(), Seen{0, now, false});
    for (std::size_t id = 0; id < beats.size(); ++id) {
      // Relaxed: see loop().
      const std::uint64_t count = beats[id]->beats.load(std::memory_order_relaxed);
      if (beats[id]->blocked.load(std::memory_order_relaxed) || count != seen[id].beats) {
        seen[id] = Seen{count, now, false};
        continue;
      }
      if (seen[id].reported || now - seen[id].since < timeout) continue;
      seen[id].reported = true;
      const auto stuck_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - seen[id].since).count();
      // Not under the detector's lock: the System takes its own locks and may call join().
      wake.unlock();
      sink_->kernel_failed(
          static_cast<KernelId>(id),
          "stalled: awake without finishing a turn for " + std::to_string(stuck_ms) + " ms");
      wake.lock();
    }
  }
}

}  // namespace mk::runtime
