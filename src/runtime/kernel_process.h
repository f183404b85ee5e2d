// A kernel in a process of its own (Isolation::processes): what the host gives it when it
// forks it, and the function the child runs instead of returning into the program.
#pragma once

#include <sys/types.h>

#include <functional>
#include <vector>

#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/result.h"
#include "mk/skb.h"
#include "runtime/boot_plan.h"

namespace mk::runtime {

struct WakeWord;

/// What a kernel process needs, in its copy of the host's memory (made by fork). Descriptors
/// are the child's copies of the host's; it closes every other descriptor it inherited.
struct KernelLaunch {
  KernelId id = 0;
  const BootPlan* plan = nullptr;  ///< Cores and nodes of every kernel so far, and the limits.
  const Skb* skb = nullptr;
  const std::function<Result<void>(Kernel&)>* setup = nullptr;  ///< Config::setup; may be empty.
  pid_t host = 0;
  int control_reader = -1;         ///< Where this kernel receives control datagrams.
  int host_writer = -1;            ///< Sends to the host.
  std::vector<int> peer_writers;   ///< By KernelId: sends to that kernel's monitor.
  std::vector<int> peer_eventfds;  ///< By KernelId: wakes that kernel; its own is its waiter's.
  /// By KernelId, for the plan's capacity: the kernels' futex words, in shared memory.
  WakeWord* wake_words = nullptr;
};

/// Runs kernel `launch.id` in the calling process, a child just forked from the host, until it
/// is told to stop; then exits the process (_exit: the host's atexit handlers and buffers are
/// the host's). Never returns.
[[noreturn]] void run_kernel_process(const KernelLaunch& launch) noexcept;

}  // namespace mk::runtime
