// Replica: one object's state on one kernel, and the protocol steps run there. Every method
// runs on the kernel's own thread. The protocols are written as named steps (docs/replica.md
// lists them); this header is their shared state.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mk/kernel.h"
#include "mk/proposal.h"
#include "mk/replica_engine.h"
#include "replica/host.h"
#include "replica/tree.h"
#include "replica/wire.h"

namespace mk::replica {

/// A vote: empty for yes, else why not.
using Vote = std::optional<Error>;

class Replica {
 public:
  Replica(ReplicaHost& host, detail::ObjectRef object,
          std::unique_ptr<detail::ErasedMachine> machine);

  const detail::ObjectInfo& object() const noexcept { return *object_; }
  Kernel& kernel() const noexcept { return kernel_; }
  bool member() const noexcept { return member_; }
  const std::vector<KernelId>& members() const noexcept { return members_; }
  const detail::ErasedMachine* machine() const noexcept {
    return member_ ? machine_.get() : nullptr;
  }
  std::uint64_t applied() const noexcept { return applied_; }
  const std::vector<OpId>& history() const noexcept { return history_; }
  /// invalid_argument "kernel N is not a member of object X" unless a member.
  std::optional<Error> not_member(const char* what) const;

  // Entry points (api.cc).
  void propose(std::vector<std::byte> op, std::shared_ptr<detail::ProposalStateBase> state);
  bool read_now(detail::ReadWaiter& waiter);
  void wait_read(detail::ReadWaiter& waiter);
  void request_change(bool join, KernelId target, std::shared_ptr<detail::ProposalStateBase> latch);

  // From the host.
  void on_message(KernelId from, const Header& header, std::span<const std::byte> body);
  void on_deadline(const Deadline& deadline);
  /// Deferred work: flush the sequencer's batch, start proposals queued by a freeze, replay
  /// messages that arrived ahead of their epoch.
  void after_turn();

 private:
  // --- waves (waves.cc) ----------------------------------------------------------------------
  /// A wave's progress on this kernel.
  struct WaveState {
    WaveKind kind{};
    std::optional<KernelId> parent;  ///< Empty at the root.
    std::size_t remaining = 0;       ///< Children and the local step still to answer.
    Vote vote;                       ///< The first failure below.
    std::uint64_t id = 0;            ///< Root only: proposal or change number, or first seq.
    std::uint64_t last = 0;          ///< Root only, sequence waves: the last seq.
    std::optional<ReplicaHost::DeadlineHandle> deadline;  ///< Root only, decision waves.
  };
  using WaveKey = std::pair<KernelId, std::uint64_t>;

  /// Starts a wave from this kernel over `set` (defaults to the members): runs the local step,
  /// sends down; on_wave_done hears when every node has answered.
  void start_wave(WaveKind kind, Header header, std::vector<std::byte> body,
                  std::span<const KernelId> set, std::uint64_t id, std::uint64_t last);
  void on_wave_down(KernelId from, const Header& header, std::span<const std::byte> body);
  void on_wave_up(const Header& header, std::span<const std::byte> body);
  /// The local step of a wave; empty optional-of-optional means "answer later" (freeze).
  std::optional<Vote> local_step(const Header& header, std::span<const std::byte> body,
                                 bool at_root);
  /// One answer (local or a child's) for wave `key`.
  void answer(const WaveKey& key, Vote vote);
  void on_wave_done(WaveKind kind, const WaveState& state);
  /// Waves carrying a decision made at the root; re-sent directly when stuck (a relay died).
  static bool decision(WaveKind kind) {
    return kind == WaveKind::sequence || kind == WaveKind::commit_up_to ||
           kind == WaveKind::commit || kind == WaveKind::abort;
  }
  /// A decision wave did not complete in time: send its decision to every member directly.
  void repair(const WaveState& state);
  void on_repair(const Header& header);
  const KernelTree& tree_for(KernelId root, std::uint32_t epoch);
  std::optional<std::vector<KernelId>> members_at(std::uint32_t epoch) const;

  // --- proposals (proposals.cc) --------------------------------------------------------------
  enum class Phase : std::uint8_t { queued, running, deciding };
  struct Pending {
    std::shared_ptr<detail::ProposalStateBase> state;
    std::vector<std::byte> op;
    Phase phase = Phase::queued;
    Vote abort_reason;  ///< two_phase: why it is being aborted.
    std::optional<ReplicaHost::DeadlineHandle> deadline;
  };
  void begin(std::uint64_t number);
  /// Completes proposal `number` with `failure`, or with its held result when empty.
  void finish(std::uint64_t number, Vote failure);
  /// A proposal's deadline passed.
  void expire(std::uint64_t number);
  /// Nothing this replica started is still travelling (the condition for a freeze ack).
  bool quiescent() const;
  /// Acknowledges a waiting freeze once quiescent.
  void on_idle_maybe();

  // --- two-phase commit (two_phase.cc) -------------------------------------------------------
  Vote prepare(const OpId& txn, std::span<const std::byte> op);
  Vote commit(const OpId& txn, detail::ProposalStateBase* sink);
  void release(const OpId& txn);
  struct Prepared {
    std::vector<std::byte> op;
    std::vector<std::uint64_t> keys;
    std::uint64_t local = 0;  ///< Its place among this replica's prepares, for reads.
  };

  // --- ordered broadcast (ordered.cc) --------------------------------------------------------
  void submit(KernelId origin, std::uint64_t number, std::span<const std::byte> op);
  void flush_sequencer();
  Vote stash(std::span<const std::byte> body);
  void commit_through(std::uint64_t seq);
  void sequence_done(std::uint64_t first, std::uint64_t last);
  struct Entry {
    OpId id;
    std::vector<std::byte> op;
  };

  // --- reads (reads.cc) ----------------------------------------------------------------------
  bool read_ready(std::uint64_t target) const;
  std::uint64_t read_target() const;
  void wake_reads();

  // --- membership (membership.cc) ------------------------------------------------------------
  struct Change {
    std::uint64_t number = 0;
    KernelId requester = 0;
    bool join = false;
    KernelId target = 0;
  };
  void on_change_request(const Header& header);
  void start_next_change();
  void reply_change(const Change& change, Vote outcome);
  void change_phase_done(Vote outcome);
  void send_state(KernelId joiner);
  void on_state_chunk(const Header& header, std::span<const std::byte> body);
  void on_state_done(KernelId from, const Header& header, std::span<const std::byte> body);
  void start_install(std::vector<KernelId> next);
  Vote install(const Header& header, std::span<const std::byte> body);
  /// Freezes; the vote now, or empty when it comes later (once quiescent).
  std::optional<Vote> freeze(const WaveKey& key);
  KernelId pick_coordinator() const;
  ReplicaHost::DeadlineHandle deadline_in(Deadline::Kind kind, std::uint64_t id);

  void record_apply(const OpId& id);

  ReplicaHost& host_;
  Kernel& kernel_;
  detail::ObjectRef object_;
  const KernelId self_;
  std::unique_ptr<detail::ErasedMachine> machine_;
  bool member_ = false;
  std::vector<KernelId> members_;  ///< Sorted.
  std::uint32_t epoch_ = 0;
  std::map<std::uint32_t, std::vector<KernelId>> past_members_;
  KernelId coordinator_ = 0;
  std::map<std::pair<KernelId, std::uint32_t>, KernelTree> trees_;

  std::uint64_t applied_ = 0;
  std::vector<OpId> history_;

  std::uint64_t proposals_made_ = 0;
  std::map<std::uint64_t, Pending> pending_;
  std::deque<std::uint64_t> queued_;
  std::size_t in_flight_ = 0;
  bool frozen_ = false;
  std::optional<WaveKey> freeze_wave_;

  std::uint64_t waves_started_ = 0;
  std::map<WaveKey, WaveState> waves_;
  std::size_t root_waves_ = 0;  ///< Acked update waves rooted here and not yet complete.
  std::vector<std::pair<KernelId, std::vector<std::byte>>> ahead_;  ///< Messages of later epochs.

  std::unordered_map<std::uint64_t, OpId> reserved_;  ///< two_phase: key -> transaction.
  std::map<OpId, Prepared> prepared_;
  std::uint64_t prepares_ = 0;
  std::set<std::uint64_t> unresolved_;  ///< Local numbers of prepared, undecided transactions.

  std::map<std::uint64_t, Entry> stash_;  ///< ordered: by sequence number.
  std::uint64_t applied_seq_ = 0;
  std::uint64_t stashed_seq_ = 0;  ///< Highest sequence number stashed.
  std::uint64_t commit_seen_ = 0;

  // The sequencer's side of ordered broadcast.
  std::uint64_t next_seq_ = 1;
  std::vector<std::byte> batch_;  ///< Entries waiting for the next sequence wave.
  std::size_t batch_count_ = 0;
  std::map<std::uint64_t, std::uint64_t> sequenced_;  ///< Completed waves: first -> last.
  std::uint64_t committed_ = 0;
  std::uint64_t commit_sent_ = 0;

  struct ReadWait {
    detail::ReadWaiter* waiter;
    std::uint64_t target;
    ReplicaHost::DeadlineHandle deadline;
  };
  std::map<std::uint64_t, ReadWait> reads_;
  std::uint64_t reads_made_ = 0;

  // The coordinator's side of membership changes.
  std::deque<Change> changes_;
  std::optional<Change> active_;
  enum class ChangePhase : std::uint8_t { freezing, transferring, installing, undoing };
  ChangePhase phase_ = ChangePhase::freezing;
  std::uint64_t phase_serial_ = 0;  ///< Which phase a change deadline belongs to.
  /// The current phase's deadline, cancelled when the phase ends so that no timer outlives
  /// the change (a simulation would otherwise never go idle).
  std::optional<ReplicaHost::DeadlineHandle> phase_deadline_;
  /// Starts a new phase's deadline in place of the previous one.
  void arm_phase_deadline();
  /// Cancels the current phase's deadline, if any.
  void disarm_phase_deadline();
  // The requester's side.
  struct ChangeWait {
    std::shared_ptr<detail::ProposalStateBase> latch;
    ReplicaHost::DeadlineHandle deadline;
  };
  std::map<std::uint64_t, ChangeWait> change_waits_;
  std::uint64_t changes_made_ = 0;
  // The joiner's side.
  std::vector<std::byte> incoming_;

  bool scheduled_ = false;
  friend class ReplicaHost;
};

}  // namespace mk::replica
