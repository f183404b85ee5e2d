// The threaded executor: one pinned thread per kernel, polling then sleeping when idle.
#pragma once

#include <hwloc.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "mk/clock.h"
#include "mk/config.h"
#include "mk/executor.h"
#include "mk/kernel.h"
#include "runtime/fabric.h"
#include "runtime/idle_waiter.h"

namespace mk::runtime {

/// What the threaded executor needs beyond the kernels themselves.
struct ThreadedOptions {
  std::chrono::nanoseconds poll_budget{0};  ///< How long an idle kernel polls before sleeping.
  WaitBackend wait_backend = WaitBackend::automatic;
  WakeMechanism wake_mechanism = WakeMechanism::eventfd;  ///< How kernels wake each other.
  std::vector<int> numa_nodes;  ///< By KernelId: where the kernel's memory should come from.
  /// Awake without finishing a loop iteration for this long: reported failed. Empty: never.
  std::optional<std::chrono::nanoseconds> stall_timeout;
};

/// Runs each kernel on its own thread, pinned to the kernel's core with hwloc, allocating from
/// the core's NUMA node, and sleeping in an IdleWaiter once its poll budget is spent.
class ThreadedExecutor final : public Executor {
 public:
  explicit ThreadedExecutor(ThreadedOptions options);
  ThreadedExecutor(const ThreadedExecutor&) = delete;
  ThreadedExecutor& operator=(const ThreadedExecutor&) = delete;
  ~ThreadedExecutor() override;

  const Clock& clock() const noexcept override { return clock_; }
  Result<void> start(std::span<Kernel* const> kernels) override;
  void join() override;
  Result<void> add(Kernel& kernel, int numa_node) override;
  Result<void> retire(Kernel& kernel) override;
  void watch_failures(FailureSink& sink) override { sink_ = &sink; }

 private:
  enum class Phase { starting, running, aborted };

  /// What the stall detector reads of one kernel thread. Each on its own lines: the kernel
  /// writes it on every loop iteration, so it must not share a line with its neighbour's.
  struct alignas(kSeparation) Heartbeat {
    std::atomic<std::uint64_t> beats{0};  ///< Loop iterations finished.
    std::atomic<bool> blocked{false};     ///< Sleeping in its waiter: idle, not stalled.
  };

  void thread_main(std::size_t index, Kernel& kernel);
  Result<std::unique_ptr<IdleWaiter>> prepare(std::size_t index, Kernel& kernel);
  void loop(Kernel& kernel, IdleWaiter& waiter, Heartbeat& heartbeat);
  /// The stall detector's thread: samples every kernel's heartbeat a few times per timeout.
  void watch_stalls();

  SteadyClock clock_;
  ThreadedOptions options_;
  hwloc_topology_t topology_ = nullptr;
  std::vector<std::unique_ptr<IdleWaiter>> waiters_;
  std::vector<std::thread> threads_;
  /// By index (KernelId); grows under `mutex_`, and the elements never move.
  std::vector<std::unique_ptr<Heartbeat>> heartbeats_;
  FailureSink* sink_ = nullptr;
  std::thread watchdog_;
  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool watchdog_stop_ = false;

  // Start-up handshake: every thread reports, then all run or all leave. A thread added later
  // reports the same way and finds the phase already `running`.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t reported_ = 0;
  std::optional<Error> failure_;
  Phase phase_ = Phase::starting;
};

}  // namespace mk::runtime
