// View changes without the failed members. When the runtime tells a kernel that a member of an
// object failed, its replica "closes": it takes no further part in the epoch (it drops the
// epoch's waves and submits, and decides nothing), and reports its state to the leader, the
// lowest member it does not know to have failed. The leader waits for a report from every
// member (and the target of a membership change in progress) not known to have failed, then
// writes an install record for the next epoch: the members without the failed ones, and how
// what they left half done ends (ordered: the committed prefix, the smallest sequence number
// every reporter holds; two_phase: commit a transaction any reporter saw committed, abort the
// others; one_phase: every operation any reporter applied). Every replica installs the record
// and so reaches the same view and the same state. docs/replica.md says why this is safe.
//
// Knowledge of failures spreads unevenly, so the protocol tolerates replicas at neighbouring
// epochs and leaders that change: a report carries the record that installed its epoch (so a
// replica behind catches up), a replica answers a report from an older epoch with the record
// that ends that epoch, and a replica that reported takes a record only from the leader it
// reported to (the leader's decision may rest on that report). A report is sent again while
// no record arrives, so nothing waits on a message that was lost.
#include <algorithm>
#include <limits>
#include <set>

#include "replica/replica.h"

namespace mk::replica {

bool Replica::gone(KernelId kernel) const {
  return host_.known_failed(kernel) || !kernel_.is_online(kernel);
}

bool Replica::relevant(KernelId kernel) const {
  return std::binary_search(members_.begin(), members_.end(), kernel) ||
         (pending_change_ && pending_change_->target == kernel);
}

std::optional<KernelId> Replica::pick_leader() const {
  // The lowest id, not the SKB's central core: of two kernels that each think they lead, the
  // higher one believes the lower failed, which the failure detector never says falsely.
  for (KernelId member : members_) {
    if (member == self_ || !gone(member)) return member;
  }
  return std::nullopt;
}

std::vector<KernelId> Replica::wait_set() const {
  std::vector<KernelId> set = members_;
  if (pending_change_) set.push_back(pending_change_->target);
  for (const auto& [from, report] : reports_) {
    if (report.change) set.push_back(report.change->target);
  }
  std::sort(set.begin(), set.end());
  set.erase(std::unique(set.begin(), set.end()), set.end());
  std::erase_if(set, [this](KernelId kernel) { return kernel != self_ && gone(kernel); });
  return set;
}

void Replica::on_failure(KernelId peer) {
  if (active_ && active_->target == peer &&
      (phase_ == ChangePhase::installing || phase_ == ChangePhase::undoing) &&
      !std::binary_search(members_.begin(), members_.end(), peer)) {
    // The change's target, outside the view being installed, will never acknowledge it: the
    // others have, or hear of it through a view change, so the change is as done as it gets.
    change_phase_done(Vote{});
  }
  if (closed_) {
    // Its leader, or whom the leader waits for, may have changed.
    auto leader = pick_leader();
    if (leader != leader_) {
      leader_ = leader;
      announce();
    }
    try_decide();
    return;
  }
  if (relevant(peer)) close();
}

void Replica::close() {
  // A copy that never was a member, or left, has nothing to report.
  if (closed_ || (!member_ && !pending_change_)) return;
  closed_ = true;
  if (active_) {
    // The membership change stops here; it runs again on the view that comes out of this one.
    Change again = *active_;
    again.retry = true;
    changes_.push_front(again);
    active_.reset();
    disarm_phase_deadline();
  }
  reports_[self_] = make_report();
  leader_ = pick_leader();
  announce();
  arm_view_retry();
  try_decide();
}

Report Replica::make_report() const {
  Report report;
  report.epoch = epoch_;
  report.from = self_;
  report.member = member_;
  report.change = pending_change_;
  if (member_) {
    switch (object_->options.protocol) {
      case Protocol::ordered: {
        std::uint64_t known = applied_seq_;
        while (stash_.contains(known + 1))
          ++known;
        report.known = known;
        break;
      }
      case Protocol::two_phase:
        for (const auto& [id, prepared] : prepared_)
          report.undecided.push_back(id);
        for (const auto& [id, logged] : recent_)
          report.decided.push_back(Decision{id, true});
        break;
      case Protocol::one_phase:
        for (const auto& [id, logged] : recent_)
          report.ops.push_back(LoggedOp{id, logged.op});
        break;
    }
  }
  if (epoch_ > 0) {
    if (auto it = records_.find(epoch_ - 1); it != records_.end()) report.record = it->second;
  }
  return report;
}

void Replica::announce() {
  if (!closed_ || !leader_) return;
  if (*leader_ != self_) {
    send_blob(*leader_, Blob::report, encode(reports_.at(self_)));
    return;
  }
  // The leader asks those that have not reported: they may not have heard of the failure (a
  // joiner's failure concerns only the members frozen for its join).
  for (KernelId kernel : wait_set()) {
    if (!reports_.contains(kernel)) send_view_notice(kernel);
  }
}

void Replica::try_decide() {
  if (!closed_ || leader_ != self_) return;
  for (KernelId kernel : wait_set()) {
    if (!reports_.contains(kernel)) return;
  }
  InstallRecord record;
  record.base = epoch_;
  record.failure = true;
  for (KernelId member : members_)
    (member != self_ && gone(member) ? record.failed : record.members).push_back(member);
  // Every report counts, also one its sender made before it failed: what it held or applied,
  // it held or applied for this epoch like the others.
  switch (object_->options.protocol) {
    case Protocol::ordered: {
      // Nothing was committed that some member had not stashed, so this is at least every
      // replica's applied prefix, and every reporter holds the operations up to it.
      std::uint64_t through = std::numeric_limits<std::uint64_t>::max();
      for (const auto& [from, report] : reports_) {
        if (report.member) through = std::min(through, report.known);
      }
      record.through =
          through == std::numeric_limits<std::uint64_t>::max() ? applied_seq_ : through;
      break;
    }
    case Protocol::two_phase: {
      std::set<OpId> committed;
      std::set<OpId> undecided;
      for (const auto& [from, report] : reports_) {
        for (const Decision& decision : report.decided)
          committed.insert(decision.id);
        undecided.insert(report.undecided.begin(), report.undecided.end());
      }
      for (const OpId& id : undecided)
        record.decisions.push_back(Decision{id, committed.contains(id)});
      break;
    }
    case Protocol::one_phase: {
      std::map<OpId, const std::vector<std::byte>*> ops;
      for (const auto& [from, report] : reports_) {
        for (const LoggedOp& op : report.ops)
          ops.emplace(op.id, &op.op);
      }
      for (const auto& [id, op] : ops)
        record.ops.push_back(LoggedOp{id, *op});
      break;
    }
  }
  // Installing it here also sends it to every kernel that reported.
  (void)apply_record(encode(record), self_);
}

bool Replica::apply_record(std::span<const std::byte> bytes, KernelId from) {
  auto decoded = decode_record(bytes);
  if (!decoded) {
    detail::KernelAccess::note_failure(kernel_, "replica install record from kernel " +
                                                    std::to_string(from) + ": " +
                                                    decoded.error().describe());
    return false;
  }
  const InstallRecord& record = *decoded;
  const bool stays = std::binary_search(record.members.begin(), record.members.end(), self_);
  // Only a kernel the new view leaves out may skip epochs: it has nothing to bring up to date.
  if (record.base != epoch_ && (record.base < epoch_ || stays)) return false;
  std::vector<std::byte> kept(bytes.begin(), bytes.end());

  std::map<std::uint64_t, Vote> votes;
  if (record.failure) {
    // The epoch's waves end here; their outcome is the record's. (A membership change's own
    // install wave is still travelling, and nothing else was.)
    for (auto& [key, wave] : waves_) {
      if (wave.deadline) host_.cancel_deadline(*wave.deadline);
      if (key.first == self_ && proposal_wave(wave.kind) && wave.vote) {
        votes.emplace(wave.id, wave.vote);
      }
    }
    waves_.clear();
    syncs_.clear();
    root_waves_ = 0;
    open_waves_.clear();
    if (active_) {
      Change again = *active_;
      again.retry = true;
      changes_.push_front(again);
      active_.reset();
      disarm_phase_deadline();
    }
  }
  frozen_ = false;
  freeze_wave_.reset();
  pending_change_.reset();
  closed_ = false;
  disarm_view_retry();
  // Who waited for this epoch's outcome through this replica hears of it from here.
  std::vector<KernelId> told;
  if (leader_) told.push_back(*leader_);
  for (const auto& [reporter, report] : reports_)
    told.push_back(reporter);
  leader_.reset();
  reports_.clear();

  if (record.base == epoch_ && stays && machine_) {
    switch (object_->options.protocol) {
      case Protocol::ordered:
        // Every replica holds the operations up to `through` (it reported so) and drops the
        // rest, which was committed nowhere: their proposers submit them again.
        commit_through(record.through);
        if (applied_seq_ != record.through) {
          detail::KernelAccess::note_failure(
              kernel_, "replica install record: kernel " + std::to_string(self_) +
                           " holds operations up to " + std::to_string(applied_seq_) + ", not " +
                           std::to_string(record.through));
        }
        stash_.erase(stash_.upper_bound(record.through), stash_.end());
        stashed_seq_ = commit_seen_ = applied_seq_;
        break;
      case Protocol::two_phase:
        for (const Decision& decision : record.decisions) {
          if (decision.commit) {
            (void)commit(decision.id, sink_for(decision.id));
          } else {
            release(decision.id);
          }
        }
        // Every replica reported what it had prepared, so nothing is left; should anything be,
        // it was decided nowhere and is aborted, releasing its keys.
        while (!prepared_.empty())
          release(prepared_.begin()->first);
        break;
      case Protocol::one_phase:
        // In each proposer's order, as a replica applies them (record.ops is sorted).
        for (const LoggedOp& op : record.ops) {
          auto& seen = applied_from_[op.id.origin];
          if (op.id.number <= seen) continue;
          seen = op.id.number;
          if (machine_->apply(op.op, false, nullptr)) record_apply(op.id);
        }
        break;
    }
  }
  // Every replica of the new view has applied, or decided, all of the above.
  recent_.clear();

  epoch_ = record.base + 1;
  members_ = record.members;
  trees_.clear();
  member_ = machine_ != nullptr && stays;
  coordinator_ = pick_coordinator();
  if (object_->options.protocol == Protocol::ordered) {
    batch_.clear();
    batch_count_ = 0;
    if (coordinator_ == self_) {
      // The sequencer of this view (perhaps newly elected) continues the numbering.
      next_seq_ = record.through + 1;
      committed_ = commit_sent_ = record.through;
      sequenced_.clear();
    }
  }
  records_[record.base] = std::move(kept);
  while (records_.size() > 16)
    records_.erase(records_.begin());

  if (!member_) {
    machine_.reset();
    queued_.clear();
    while (!pending_.empty())
      finish(pending_.begin()->first, not_member("propose"));
    reserved_.clear();
    prepared_.clear();
    unresolved_.clear();
    stash_.clear();
  } else if (record.failure) {
    resolve_pending(record, votes);
  }
  for (auto& [id, wait] : reads_)
    wait.target = std::min(wait.target, read_target());
  wake_reads();
  resend_change_requests();
  const auto& whole = records_.at(record.base);
  for (KernelId kernel : told) {
    if (kernel != self_ && kernel != from) send_blob(kernel, Blob::record, whole);
  }
  if (!active_) start_next_change();
  on_installed();  // A member of the new view failed meanwhile: the next view change.
  host_.schedule(*this);
  return true;
}

void Replica::resolve_pending(const InstallRecord& record,
                              const std::map<std::uint64_t, Vote>& votes) {
  std::vector<std::uint64_t> numbers;
  for (const auto& [number, pending] : pending_) {
    if (pending.phase != Phase::queued) numbers.push_back(number);
  }
  std::string failed;
  for (KernelId kernel : record.failed)
    failed += (failed.empty() ? "" : ", ") + std::to_string(kernel);
  // What succeeded is reported once every member has installed the record: a record only
  // this kernel holds dies with it, and no survivor must miss what was reported done.
  std::vector<std::uint64_t> confirming;
  for (std::uint64_t number : numbers) {
    auto it = pending_.find(number);
    if (it == pending_.end()) continue;
    Pending& pending = it->second;
    const auto vote = votes.find(number);
    if (pending.phase == Phase::confirming) {
      confirming.push_back(number);
      continue;
    }
    switch (object_->options.protocol) {
      case Protocol::one_phase:
        // Its own replica applied it, so the record carried it to every other.
        if (vote != votes.end()) {
          finish(number, vote->second);
        } else {
          confirming.push_back(number);
        }
        break;
      case Protocol::two_phase:
        if (pending.phase == Phase::deciding) {
          // Decided here, and the record agreed.
          if (pending.abort_reason) {
            finish(number, pending.abort_reason);
          } else {
            confirming.push_back(number);
          }
        } else if (vote != votes.end()) {
          finish(number, vote->second);  // A participant had voted no.
        } else {
          finish(number, error(Errc::closed,
                               "two-phase transaction " + std::to_string(self_) + "." +
                                   std::to_string(number) + " on replicated object " +
                                   std::to_string(object_->id) + " aborted: kernel " + failed +
                                   " failed before it was decided (view change "
                                   "to epoch " +
                                   std::to_string(epoch_) + ")"));
        }
        break;
      case Protocol::ordered:
        // Not applied by the record, so numbered nowhere now: it goes to this view's
        // sequencer, in this kernel's order. (What the record applied was held by every
        // reporter, so every later record applies it too: it completed already.)
        submit_pending(number);
        break;
    }
  }
  if (confirming.empty()) return;
  // Named by the wave's number (the next one), which its completion hands back.
  const std::uint64_t wave = waves_started_ + 1;
  for (std::uint64_t number : confirming) {
    auto it = pending_.find(number);
    if (it == pending_.end()) continue;
    it->second.phase = Phase::confirming;
    it->second.confirm = wave;
  }
  Header header;
  header.origin = self_;
  (void)start_wave(WaveKind::confirm, header, {}, {}, wave, 0);
}

void Replica::on_report(KernelId from, std::span<const std::byte> bytes) {
  auto decoded = decode_report(bytes);
  if (!decoded || decoded->from >= kernel_.system_size()) {
    detail::KernelAccess::note_failure(
        kernel_, "replica view change report from kernel " + std::to_string(from) + ": " +
                     (decoded ? "no such reporter" : decoded.error().describe()));
    return;
  }
  Report report = std::move(*decoded);
  if (!report.member && !report.change && report.epoch <= epoch_) {
    // A kernel with nothing to report (not a member, no change under way): an answer in any
    // epoch, since it holds no state a record would bring up to date.
    report.epoch = epoch_;
    const KernelId reporter = report.from;
    reports_[reporter] = std::move(report);
    try_decide();
    return;
  }
  if (report.epoch > epoch_) {
    if (closed_ && leader_ && *leader_ != self_) {
      // Only this replica's leader may move it on; the leader hears of the later epoch.
      send_blob(*leader_, Blob::report, bytes);
      return;
    }
    if (report.record.empty() || !apply_record(report.record, report.from)) return;
    if (report.epoch != epoch_) return;
  }
  if (report.epoch < epoch_) {
    send_record_for(report.epoch, report.from);
    return;
  }
  const KernelId reporter = report.from;
  reports_[reporter] = std::move(report);
  if (closed_) {
    try_decide();
  } else {
    close();  // A view change is under way in this epoch.
  }
}

void Replica::on_record(KernelId from, std::span<const std::byte> bytes) {
  // A replica that reported waits for its leader's decision: another sender's record could
  // contradict the one the leader makes from that report.
  if (closed_ && leader_ && *leader_ != self_ && from != *leader_) return;
  (void)apply_record(bytes, from);
}

void Replica::on_view_notice(KernelId from, const Header& header) {
  if (header.epoch < epoch_) {
    send_record_for(header.epoch, from);
    return;
  }
  if (header.epoch == epoch_ && !closed_) close();
  // Behind: the answer is the record this replica misses. Or the sender leads in a view of the
  // failures this replica does not share yet. Or this replica takes no part (a joiner that has
  // no state yet): it says so.
  if (header.epoch > epoch_ || leader_ != from) {
    send_blob(from, Blob::report, encode(closed_ ? reports_.at(self_) : make_report()));
  }
}

void Replica::send_record_for(std::uint32_t base, KernelId to) {
  auto it = records_.find(base);
  if (it != records_.end()) send_blob(to, Blob::record, it->second);
}

void Replica::send_view_notice(KernelId to) {
  Header header;
  header.object = object_->id;
  header.root = self_;
  header.epoch = epoch_;
  header.step = Step::view_notice;
  host_.send(to, message(header));
}

void Replica::send_blob(KernelId to, Blob kind, std::span<const std::byte> bytes) {
  Header header;
  header.object = object_->id;
  header.a = bytes.size();
  header.root = self_;
  header.epoch = epoch_;
  header.step = Step::bulk;
  header.flag = static_cast<std::uint8_t>(kind);
  for (std::size_t offset = 0; offset < bytes.size(); offset += kMaxBody) {
    header.b = offset;
    host_.send(to,
               message(header, bytes.subspan(offset, std::min(kMaxBody, bytes.size() - offset))));
  }
}

void Replica::on_bulk(KernelId from, const Header& header, std::span<const std::byte> body) {
  // One sender's chunks arrive in order (one lane per destination); a transfer begins at 0.
  auto& buffer = blobs_[from];
  if (header.b == 0) buffer.clear();
  if (header.b != buffer.size() || body.size() > header.a - buffer.size()) {
    blobs_.erase(from);
    return;
  }
  buffer.insert(buffer.end(), body.begin(), body.end());
  if (buffer.size() < header.a) return;
  const std::vector<std::byte> whole = std::move(buffer);
  blobs_.erase(from);
  switch (static_cast<Blob>(header.flag)) {
    case Blob::report:
      on_report(from, whole);
      return;
    case Blob::record:
      on_record(from, whole);
      return;
  }
  detail::KernelAccess::note_failure(kernel_, "replica bulk transfer of unknown kind " +
                                                  std::to_string(header.flag) + " from kernel " +
                                                  std::to_string(from));
}

void Replica::arm_view_retry() {
  disarm_view_retry();
  view_retry_ = deadline_in(Deadline::Kind::view, epoch_);
}

void Replica::disarm_view_retry() {
  if (view_retry_) host_.cancel_deadline(*std::exchange(view_retry_, std::nullopt));
}

void Replica::log_op(const OpId& id, std::span<const std::byte> op) {
  recent_[id] = Logged{std::vector<std::byte>(op.begin(), op.end())};
}

void Replica::log_commit(const OpId& id) {
  recent_[id] = Logged{};
}

void Replica::learn_stable(KernelId origin, std::uint64_t stable) {
  auto& known = stable_of_[origin];
  if (stable <= known) return;
  known = stable;
  recent_.erase(recent_.lower_bound(OpId{origin, 0}), recent_.upper_bound(OpId{origin, stable}));
}

bool Replica::stable_unsent() const {
  return object_->options.protocol != Protocol::ordered && member_ && !closed_ &&
         stable_prefix() > stable_sent_;
}

void Replica::send_stable() {
  if (!stable_unsent()) return;
  // Not carried by a wave (none followed): the others are told directly, so that they forget.
  const std::uint64_t stable = stable_prefix();
  stable_sent_ = stable;
  learn_stable(self_, stable);
  Header header;
  header.object = object_->id;
  header.b = stable;
  header.root = self_;
  header.origin = self_;
  header.epoch = epoch_;
  header.step = Step::stable;
  const auto whole = message(header);
  for (KernelId member : members_) {
    if (member != self_) host_.send(member, whole);
  }
}

}  // namespace mk::replica
