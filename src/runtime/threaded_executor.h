// The threaded executor: one pinned thread per kernel, polling then sleeping when idle.
#pragma once

#include <hwloc.h>

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
#include "runtime/idle_waiter.h"

namespace mk::runtime {

/// What the threaded executor needs beyond the kernels themselves.
struct ThreadedOptions {
  std::chrono::nanoseconds poll_budget{0};  ///< How long an idle kernel polls before sleeping.
  WaitBackend wait_backend = WaitBackend::automatic;
  std::vector<int> numa_nodes;  ///< By KernelId: where the kernel's memory should come from.
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

 private:
  enum class Phase { starting, running, aborted };

  void thread_main(std::size_t index, Kernel& kernel);
  Result<std::unique_ptr<IdleWaiter>> prepare(std::size_t index, Kernel& kernel);
  void loop(Kernel& kernel, IdleWaiter& waiter);

  SteadyClock clock_;
  ThreadedOptions options_;
  hwloc_topology_t topology_ = nullptr;
  std::vector<std::unique_ptr<IdleWaiter>> waiters_;
  std::vector<std::thread> threads_;

  // Start-up handshake: every thread reports, then all run or all leave. A thread added later
  // reports the same way and finds the phase already `running`.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t reported_ = 0;
  std::optional<Error> failure_;
  Phase phase_ = Phase::starting;
};

}  // namespace mk::runtime
