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
#include "replica/record.h"
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
  /// Deferred work: flush the sequencer's batch, start proposals queued by a freeze or a view
  /// change, replay messages that arrived ahead of their epoch.
  void after_turn();
  /// True when the stable prefix has moved past what the others were told (send_stable).
  bool stable_unsent() const;
  /// Tells the others the stable prefix directly, unless a wave already carried it.
  void send_stable();
  /// Kernel `peer` failed (the runtime told this kernel): a view change without it, when it
  /// mattered to this object (view.cc).
  void on_failure(KernelId peer);
  /// Called once the replica is installed: an object may be made with a member that already
  /// failed.
  void on_installed();
  /// The kernel stops: everything waiting here fails with shutting_down.
  void on_stop();

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
    std::uint32_t epoch = 0;                              ///< The epoch it travels in.
  };
  using WaveKey = std::pair<KernelId, std::uint64_t>;

  /// Starts a wave from this kernel over `set` (defaults to the members): runs the local step,
  /// sends down; on_wave_done hears when every node has answered.
  std::uint64_t start_wave(WaveKind kind, Header header, std::vector<std::byte> body,
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
  const KernelTree& tree_for(KernelId root);
  /// Answers the parent of a finished wave (or, at the root, ends it).
  void wave_finished(const WaveKey& key, WaveState done);
  /// Waves that carry a proposal's operation or decision, and the proposer's stable prefix.
  static bool proposal_wave(WaveKind kind) {
    return kind == WaveKind::one_phase_apply || kind == WaveKind::prepare ||
           kind == WaveKind::commit || kind == WaveKind::abort;
  }
  /// Starts a wave for proposal `number`: its body is the stable prefix, then `op`.
  void start_proposal_wave(WaveKind kind, std::uint64_t number, std::span<const std::byte> op);

  // --- proposals (proposals.cc) --------------------------------------------------------------
  /// queued (frozen or a view change), running (agreement under way), deciding (two_phase:
  /// decided, the decision travelling), confirming (resolved by a view change's record: done
  /// once a confirm wave shows every member installed it, so that no survivor can miss it).
  enum class Phase : std::uint8_t { queued, running, deciding, confirming };
  struct Pending {
    std::shared_ptr<detail::ProposalStateBase> state;
    std::vector<std::byte> op;  ///< Kept until done: ordered submits it again after a view change.
    Phase phase = Phase::queued;
    Vote abort_reason;   ///< two_phase: why it is being aborted.
    Vote local_failure;  ///< Its apply here failed (user code threw): the proposal's error.
    std::optional<ReplicaHost::DeadlineHandle> deadline;
    std::uint64_t confirm = 0;  ///< confirming: the wave whose completion completes it.
  };
  void begin(std::uint64_t number);
  /// ordered: sends proposal `number` to the sequencer (this epoch's).
  void submit_pending(std::uint64_t number);
  /// The highest proposal number such that every proposal of this kernel up to it is done
  /// everywhere (one_phase: applied; two_phase: decided): what replicas may forget.
  std::uint64_t stable_prefix() const;
  /// Completes proposal `number` with `failure`, or with its held result when empty.
  void finish(std::uint64_t number, Vote failure);
  /// A proposal's deadline passed.
  void expire(std::uint64_t number);
  /// Proposal `number` is decided: from now on it waits for its outcome to be everywhere,
  /// not for a deadline (whose expiry could not honestly say what happened).
  void drop_deadline(std::uint64_t number);
  /// Nothing this replica started is still travelling (the condition for a freeze ack).
  bool quiescent() const;
  /// Acknowledges a waiting freeze once quiescent.
  void on_idle_maybe();

  // --- two-phase commit (two_phase.cc) -------------------------------------------------------
  Vote prepare(const OpId& txn, std::span<const std::byte> op);
  Vote commit(const OpId& txn, detail::ProposalStateBase* sink);
  void release(const OpId& txn);
  /// The pending proposal's state when `id` is one of this kernel's, else nullptr.
  detail::ProposalStateBase* sink_for(const OpId& id);
  /// Proposal `number`'s apply failed on its own replica.
  void note_local_failure(std::uint64_t number, const Error& failure);
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
  /// Completion::everywhere: this kernel's proposals `numbers`, applied here, complete once a
  /// wave shows every member applied as far: the sequencer's commit wave under way, or a
  /// confirm wave started after the turn.
  void confirm_applied(const std::vector<std::uint64_t>& numbers);
  /// Starts the confirm wave for the proposals confirm_applied left waiting for one.
  void start_confirms();
  /// Completes the proposals confirming with wave `wave` (rooted here), which every member
  /// answered: a confirm wave, or the sequencer's commit-carrying wave.
  void confirmed_by(std::uint64_t wave);
  /// A confirm wave's local step: answered now, or once this replica applied the sequence
  /// number the wave carries.
  std::optional<Vote> sync(const WaveKey& key, std::span<const std::byte> body);
  /// Answers the confirm waves waiting for what this replica has now applied.
  void answer_syncs();
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
    bool retry = false;  ///< Sent or run again after a view change: done already counts.
  };
  void on_change_request(const Header& header);
  void start_next_change();
  void reply_change(const Change& change, Vote outcome);
  void change_phase_done(Vote outcome);
  void send_state(KernelId joiner);
  void on_state_chunk(const Header& header, std::span<const std::byte> body);
  void on_state_done(KernelId from, const Header& header, std::span<const std::byte> body);
  void start_install(std::vector<KernelId> next);
  /// Freezes for the change the wave names; the vote now, or empty when it comes later (once
  /// quiescent).
  std::optional<Vote> freeze(const WaveKey& key, std::span<const std::byte> body);
  /// Sends the change requests waiting here again, to the coordinator of this view, when the
  /// one they went to failed.
  void resend_change_requests();
  /// Sends change request `number` again (it may have been lost with a kernel that failed).
  void resend_change_request(std::uint64_t number);
  /// Where a change request goes: the coordinator, or (when it is gone) a live member that
  /// passes it on once it knows the next one.
  KernelId change_route() const;
  void send_change_request(const Change& change, KernelId to, std::uint8_t extra_flags);
  KernelId pick_coordinator() const;
  ReplicaHost::DeadlineHandle deadline_in(Deadline::Kind kind, std::uint64_t id);

  void record_apply(const OpId& id);

  // --- view changes without failed members (view.cc) -------------------------------------------
  /// True when `kernel` failed (as this kernel was told) or went offline.
  bool gone(KernelId kernel) const;
  /// True when the failure of `kernel` concerns this object here: a member, or the target of
  /// the change this replica is frozen for.
  bool relevant(KernelId kernel) const;
  /// The view change's leader for this epoch: the lowest member not gone.
  std::optional<KernelId> pick_leader() const;
  /// Who the leader waits for: the members and the targets of pending changes, not gone.
  std::vector<KernelId> wait_set() const;
  /// Stops taking part in this epoch and reports to the leader.
  void close();
  Report make_report() const;
  /// Sends this replica's report to the leader, or (the leader) asks for the missing ones.
  void announce();
  void try_decide();
  void on_bulk(KernelId from, const Header& header, std::span<const std::byte> body);
  void on_report(KernelId from, std::span<const std::byte> bytes);
  void on_record(KernelId from, std::span<const std::byte> bytes);
  void on_view_notice(KernelId from, const Header& header);
  /// Sends the record that installed epoch `base` + 1, when kept, to `to`.
  void send_record_for(std::uint32_t base, KernelId to);
  void send_blob(KernelId to, Blob kind, std::span<const std::byte> bytes);
  void send_view_notice(KernelId to);
  /// Installs an encoded record (membership or view change); false when it does not apply here.
  bool apply_record(std::span<const std::byte> bytes, KernelId from);
  /// After a view change's record: each proposal of this kernel that was under way completes,
  /// fails, or (ordered, when dropped) is submitted again. `votes` holds the first failure
  /// each proposal's own wave had seen.
  void resolve_pending(const InstallRecord& record, const std::map<std::uint64_t, Vote>& votes);
  void arm_view_retry();
  void disarm_view_retry();
  /// What this replica applied or decided that may not be everywhere yet, by proposer.
  void log_op(const OpId& id, std::span<const std::byte> op);
  void log_commit(const OpId& id);
  void learn_stable(KernelId origin, std::uint64_t stable);

  ReplicaHost& host_;
  Kernel& kernel_;
  detail::ObjectRef object_;
  const KernelId self_;
  std::unique_ptr<detail::ErasedMachine> machine_;
  bool member_ = false;
  std::vector<KernelId> members_;  ///< Sorted.
  std::uint32_t epoch_ = 0;
  KernelId coordinator_ = 0;
  std::map<KernelId, KernelTree> trees_;  ///< This epoch's, by root.

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

  // What a view change needs to know that replicas may not share (one_phase, two_phase).
  struct Logged {
    std::vector<std::byte> op;  ///< one_phase: the operation; two_phase: empty (committed).
  };
  std::map<OpId, Logged> recent_;  ///< Applied or committed, not yet known to be everywhere.
  std::unordered_map<KernelId, std::uint64_t> stable_of_;     ///< Each proposer's stable prefix.
  std::unordered_map<KernelId, std::uint64_t> applied_from_;  ///< one_phase: highest applied.
  std::multiset<std::uint64_t> open_waves_;  ///< Own proposals whose waves are under way.
  std::uint64_t stable_sent_ = 0;            ///< The stable prefix the others were told.

  std::map<std::uint64_t, Entry> stash_;  ///< ordered: by sequence number.
  std::uint64_t applied_seq_ = 0;
  std::uint64_t stashed_seq_ = 0;  ///< Highest sequence number stashed.
  std::uint64_t commit_seen_ = 0;
  std::multimap<std::uint64_t, WaveKey> syncs_;  ///< Confirm waves waiting, by the seq they need.
  bool confirm_due_ = false;  ///< confirm_applied left proposals waiting for a confirm wave.
  /// The sequencer's commit-carrying wave whose local step runs now, or 0.
  std::uint64_t committing_wave_ = 0;

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
  /// Requests this coordinator took, by (requester, number), with their outcome once sent: a
  /// request sent again is answered again, not run twice. The oldest are forgotten.
  std::map<std::pair<KernelId, std::uint64_t>, std::optional<Vote>> requests_;
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
    ReplicaHost::DeadlineHandle deadline;  ///< The next resend, or the last: timed_out.
    Change change;                         ///< What was asked.
    KernelId sent_to = 0;                  ///< Where it went last.
    int resends = 0;
  };
  std::map<std::uint64_t, ChangeWait> change_waits_;
  std::uint64_t changes_made_ = 0;
  // The joiner's side.
  std::vector<std::byte> incoming_;
  /// The change this replica is frozen for (or, on a joiner, its own join) until an install.
  std::optional<PendingChange> pending_change_;

  // A view change in progress (view.cc).
  bool closed_ = false;                 ///< Reported; takes no part in this epoch any more.
  std::optional<KernelId> leader_;      ///< Whom this replica's report went to.
  std::map<KernelId, Report> reports_;  ///< Reports for this epoch held here, by reporter.
  /// The records that installed recent epochs, by the epoch they apply to: what a replica
  /// that missed one is sent.
  std::map<std::uint32_t, std::vector<std::byte>> records_;
  std::optional<ReplicaHost::DeadlineHandle> view_retry_;
  std::map<KernelId, std::vector<std::byte>> blobs_;  ///< Bulk transfers arriving, by sender.

  bool scheduled_ = false;
  friend class ReplicaHost;
};

}  // namespace mk::replica
