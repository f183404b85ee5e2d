// ReplicaHost: the replica layer's state on one kernel (Kernel::extension): its replicas by
// object, its one handler, its outgoing queue and its deadlines.
#pragma once

#include <coroutine>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <vector>

#include "mk/clock.h"
#include "mk/kernel.h"
#include "mk/proposal.h"
#include "mk/replica_engine.h"
#include "mk/task.h"
#include "replica/wire.h"

namespace mk::replica {

class Replica;

/// Something with a deadline; checked when the deadline passes, ignored if already over.
struct Deadline {
  enum class Kind : std::uint8_t {
    proposal,
    read,
    change,
    change_wait,
    create,
    wave,
    describe,
    view,  ///< A view change's report is sent again (id: the epoch).
  };
  detail::ObjectId object = 0;
  Kind kind = Kind::proposal;
  /// Proposal, read, change phase, change request, wave or description number.
  std::uint64_t id = 0;
};

/// A creation waiting for every kernel to install the object.
struct CreateWait {
  std::shared_ptr<detail::ProposalState<bool>> latch;
  std::set<KernelId> waiting;  ///< Kernels that have not answered (or failed) yet.
  std::multimap<Instant, Deadline>::iterator deadline;  ///< Cancelled once all have answered.
};

class ReplicaHost {
 public:
  explicit ReplicaHost(Kernel& kernel);
  ~ReplicaHost();
  ReplicaHost(const ReplicaHost&) = delete;
  ReplicaHost& operator=(const ReplicaHost&) = delete;

  /// The host of `kernel`, made (and its handler registered) on first use.
  static ReplicaHost& of(Kernel& kernel) { return kernel.extension<ReplicaHost>(); }

  Kernel& kernel() const noexcept { return kernel_; }

  /// The replica of `object` here, or nullptr when this kernel does not know it.
  Replica* find(detail::ObjectId object) noexcept;
  /// Installs `object` here: a replica when `machine` is set (a member), else its description
  /// only. Returns the existing one when already installed.
  Replica& install(detail::ObjectRef object, std::unique_ptr<detail::ErasedMachine> machine);

  /// Queues a message to `to`; messages leave in the order queued.
  void send(KernelId to, std::vector<std::byte> bytes);
  /// Sends `bytes` to each of `fan_out.sends` in order, as send() does, with the route's
  /// buffers (Executor::begin_fan_out).
  void send_fan_out(const FanOut& fan_out, std::span<const std::byte> bytes);
  /// Sends kernel `to` what it needs to install `object` with `state`: the state in parts, then
  /// the description. It answers the creator (this kernel) with `created`.
  void send_install(KernelId to, const detail::ObjectInfo& object,
                    const std::vector<std::byte>& state);
  /// Runs `replica.after_turn()` once the messages being handled now are done.
  void schedule(Replica& replica);
  /// Names a deadline, to cancel it.
  using DeadlineHandle = std::multimap<Instant, Deadline>::iterator;
  /// Fires `deadline` once the kernel's clock reads `when`.
  DeadlineHandle add_deadline(Instant when, Deadline deadline);
  /// Forgets a deadline that has not fired (what it guarded finished first).
  void cancel_deadline(DeadlineHandle handle);

  /// A fresh object id: this kernel's id, then a count.
  detail::ObjectId next_object_id() noexcept;
  /// Creations this kernel waits for, by object.
  std::unordered_map<detail::ObjectId, CreateWait> creating;

  /// Waits, for at most `timeout`, until kernel `target` knows `object` (installing its
  /// description there when it was added after the object was made): before a join, since
  /// the joiner must recognise the state transferred to it.
  Task<Result<void>> describe_to(detail::ObjectRef object, KernelId target);
  /// A kernel told of an object answers: completes the wait numbered `number`.
  void described(std::uint64_t number);

  /// Handles one message of the layer.
  void on_message(KernelId from, std::span<const std::byte> bytes);

  /// True once this kernel was told that `kernel` failed (and fenced it off).
  bool known_failed(KernelId kernel) const noexcept {
    return kernel < failed_.size() && failed_[kernel];
  }
  /// True once this kernel began to stop: proposals fail at once with shutting_down.
  bool stopping() const noexcept { return stopping_; }

 private:
  /// The steps about whole objects rather than one replica: installing, describing.
  void on_install_part(const Header& header, std::span<const std::byte> body);
  void on_install(KernelId from, const Header& header, std::span<const std::byte> body);
  void on_describe(KernelId from, const Header& header, std::span<const std::byte> body);
  Task<void> pump();
  /// Runs after_turn() of every scheduled replica, until none is; adds to `stable_due` those
  /// whose stable prefix then moved past what they told the others.
  void run_scheduled(std::vector<detail::ObjectId>& stable_due);
  /// Fires due deadlines; sleeps (a sleep withdrawn and renewed as the earliest deadline
  /// changes, so that a finished wait never keeps the kernel's timer armed) in between.
  Task<void> timer();
  /// Gives the timer task's sleep the earliest deadline, or none.
  void arm();
  /// Resumes once this kernel stops, and fails what waits on the layer with shutting_down.
  Task<void> watch_stop();
  void on_stop();
  void on_peer_failed(KernelId peer);
  /// Logs a message to `to` that could not be sent, unless its loss was expected.
  void on_send_failed(KernelId to, const Error& failure);
  void wake_pump();
  void fire(const Deadline& deadline);
  friend struct TimerSleep;

  Kernel& kernel_;
  std::map<detail::ObjectId, std::unique_ptr<Replica>> replicas_;
  std::uint64_t objects_made_ = 0;

  std::vector<detail::ObjectId> scheduled_;
  bool pump_running_ = false;
  std::coroutine_handle<> pump_idle_;

  /// describe_to's waits, by number, each with its deadline.
  struct DescribeWait {
    std::shared_ptr<detail::ProposalState<bool>> latch;
    DeadlineHandle deadline;
    KernelId target = 0;
  };
  std::map<std::uint64_t, DescribeWait> describing_;
  std::uint64_t describes_made_ = 0;
  /// Initial states arriving in parts, by object, until its install step.
  std::map<detail::ObjectId, std::vector<std::byte>> installing_;

  std::multimap<Instant, Deadline> deadlines_;
  detail::Waiter timer_sleep_;    ///< The timer task's, while it is suspended.
  bool timer_suspended_ = false;  ///< The timer task waits in timer_sleep_.
  std::optional<Instant> armed_;  ///< The instant its sleep ends, when it has one.

  std::vector<bool> failed_;  ///< By KernelId: this kernel was told it failed.
  bool stopping_ = false;
};

}  // namespace mk::replica
