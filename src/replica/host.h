// ReplicaHost: the replica layer's state on one kernel (Kernel::extension): its replicas by
// object, its one handler, its outgoing queue and its deadlines.
#pragma once

#include <coroutine>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
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
  enum class Kind : std::uint8_t { proposal, read, change, change_wait, create, wave, describe };
  detail::ObjectId object = 0;
  Kind kind = Kind::proposal;
  /// Proposal, read, change phase, change request, wave or description number.
  std::uint64_t id = 0;
};

/// A creation waiting for every kernel to install the object.
struct CreateWait {
  std::shared_ptr<detail::ProposalState<bool>> latch;
  std::size_t remaining = 0;
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
  void cancel_deadline(DeadlineHandle handle) { deadlines_.erase(handle); }

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

 private:
  /// Messages to one destination, in order, and the task sending them.
  struct Lane {
    std::deque<std::vector<std::byte>> queue;
    bool running = false;
    std::coroutine_handle<> idle;
  };
  Task<void> drain(KernelId to, Lane& lane);
  /// The steps about whole objects rather than one replica: installing, describing.
  void on_install_part(const Header& header, std::span<const std::byte> body);
  void on_install(KernelId from, const Header& header, std::span<const std::byte> body);
  void on_describe(KernelId from, const Header& header, std::span<const std::byte> body);
  Task<void> pump();
  Task<void> sweep(std::uint64_t generation);
  void wake_pump();
  void fire(const Deadline& deadline);

  Kernel& kernel_;
  std::map<detail::ObjectId, std::unique_ptr<Replica>> replicas_;
  std::uint64_t objects_made_ = 0;

  std::map<KernelId, Lane> lanes_;  ///< Nodes never move: each drain task holds its lane.
  std::vector<detail::ObjectId> scheduled_;
  bool pump_running_ = false;
  std::coroutine_handle<> pump_idle_;

  /// describe_to's waits, by number, each with its deadline.
  struct DescribeWait {
    std::shared_ptr<detail::ProposalState<bool>> latch;
    DeadlineHandle deadline;
  };
  std::map<std::uint64_t, DescribeWait> describing_;
  std::uint64_t describes_made_ = 0;
  /// Initial states arriving in parts, by object, until its install step.
  std::map<detail::ObjectId, std::vector<std::byte>> installing_;

  std::multimap<Instant, Deadline> deadlines_;
  std::uint64_t sweep_generation_ = 0;
  std::optional<Instant> sweep_target_;
};

}  // namespace mk::replica
