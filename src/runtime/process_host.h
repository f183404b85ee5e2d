// The host's side of Isolation::processes: the program that booted the System forks one
// process per kernel, and from then on reaches them only by control datagrams. It runs no
// thread of its own: whichever of its threads waits for an answer reads the control socket and
// watches the kernels' pidfds meanwhile (one at a time; the others wait for it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/kernel_stats.h"
#include "mk/result.h"
#include "mk/skb.h"
#include "runtime/boot_plan.h"
#include "runtime/control.h"

namespace mk::runtime {

struct WakeWord;

/// The kernel processes of one System, as the host sees and drives them.
class ProcessHost {
 public:
  /// Forks a kernel process for each kernel of `plan`, starts them, and returns once every one
  /// has run `setup`. invalid_argument when the program runs other threads (fork would copy
  /// their locks in whatever state they are in); a kernel's failure (its setup's error, its
  /// death) after every process was killed and reaped.
  static Result<std::unique_ptr<ProcessHost>> boot(BootPlan plan, const Skb& skb,
                                                   std::function<Result<void>(Kernel&)> setup);

  ProcessHost(const ProcessHost&) = delete;
  ProcessHost& operator=(const ProcessHost&) = delete;
  /// Shuts down, if shutdown() was not called.
  ~ProcessHost();

  std::size_t size() const;
  bool is_online(KernelId kernel);
  bool has_failed(KernelId kernel);
  Result<int> pid_of(KernelId kernel) const;
  Result<CoreId> core_of(KernelId kernel) const;
  const BootPlan& plan() const noexcept { return plan_; }
  Result<KernelStats> stats(KernelId kernel);
  /// System::call_remote: asks kernel `kernel` to run task `task` with `arguments`.
  Result<std::vector<std::byte>> call(KernelId kernel, std::uint32_t task,
                                      std::vector<std::byte> arguments, bool wait);
  Result<KernelId> add_kernel(CoreId core);
  Result<void> remove_kernel(KernelId kernel);
  Result<void> declare_failed(KernelId kernel);
  Result<void> wait_until_failed(KernelId kernel, std::chrono::nanoseconds timeout);
  Result<void> shutdown();

 private:
  enum class State { starting, running, leaving, offline, failed };
  struct Child {
    pid_t pid = 0;
    int pidfd = -1;    ///< -1 once reaped.
    int reader = -1;   ///< Its socket's receiving end, until its process has it.
    int writer = -1;   ///< Sends to its monitor; kept for kernels forked later.
    int eventfd = -1;  ///< Its wake-up; kept for kernels forked later.
    State state = State::starting;
    std::optional<Error> setup_failure;
  };
  /// A request waiting for its answer.
  struct Pending {
    KernelId kernel = 0;
    ControlKind answer{};
    std::optional<Result<std::vector<std::byte>>> result;
  };
  using Lock = std::unique_lock<std::mutex>;

  ProcessHost(BootPlan plan, const Skb& skb, std::function<Result<void>(Kernel&)> setup);

  /// Makes the next kernel's socket and eventfd, and its entry.
  Result<void> add_endpoints();
  /// Forks kernel `id`'s process and opens its pidfd. `plan_` and the endpoints already list
  /// it. On failure its entry stays, failed.
  Result<void> fork_kernel(KernelId id);
  /// Sends `start` to kernel `id` with what the host knows of every kernel.
  Result<void> send_start(Lock& lock, KernelId id);
  /// Sends to kernel `kernel`, waiting while its queue is full; closed once it is dead.
  Result<void> send_to(Lock& lock, KernelId kernel, const ControlOut& out);
  /// Sends a request to kernel `kernel` and waits for its answer of kind `answer`.
  Result<std::vector<std::byte>> request(Lock& lock, KernelId kernel, ControlOut out,
                                         ControlKind answer);
  /// Waits, with `lock` held on entry and exit, until `done()` or `deadline`; meanwhile reads
  /// the control socket and watches the pidfds unless another thread does. False at the
  /// deadline.
  template <class Done>
  bool wait_for(Lock& lock, Done done,
                std::optional<std::chrono::steady_clock::time_point> deadline);
  /// One look at the control socket and the pidfds, for at most `timeout`.
  void pump(Lock& lock, std::chrono::milliseconds timeout);
  void on_message(ControlMessage& message);
  /// Reaps kernel `kernel`'s process once its pidfd says it has exited.
  void on_exit(KernelId kernel);
  /// Tells every other running kernel that `kernel` goes offline (peer_offline) and waits for
  /// each one's acknowledgement.
  void announce_offline(Lock& lock, KernelId kernel);
  /// Fails every pending request to `kernel` with `failure`.
  void fail_pending(KernelId kernel, const Error& failure);
  bool alive(KernelId kernel) const { return children_[kernel].pidfd >= 0; }
  Error not_running(KernelId kernel) const;
  /// Kills every kernel process still alive and waits for each.
  void kill_all(Lock& lock);
  void close_all();

  BootPlan plan_;
  const Skb& skb_;
  std::function<Result<void>(Kernel&)> setup_;
  const pid_t self_;

  mutable std::mutex mutex_;  ///< Guards everything below.
  std::condition_variable changed_;
  bool pumping_ = false;
  bool stopping_ = false;
  bool shut_down_ = false;
  ControlSocket socket_;  ///< The host's: kernels hold its writer.
  /// By KernelId, plan_.capacity of them: the kernels' futex words (wake mechanism futex),
  /// in memory shared with every kernel process.
  WakeWord* wake_words_ = nullptr;
  std::vector<Child> children_;
  std::map<std::uint64_t, Pending> pending_;
  std::uint64_t next_request_ = 1;
  std::uint64_t rejected_ = 0;
  /// Serialises add_kernel, remove_kernel and shutdown.
  std::mutex membership_;
};

}  // namespace mk::runtime
