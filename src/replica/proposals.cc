// A proposal's life on its proposer: made, queued while a membership or view change runs,
// started with its protocol's first step, finished with a result, an error or a timeout.
#include <algorithm>

#include "replica/replica.h"

namespace mk::replica {

void Replica::propose(std::vector<std::byte> op, std::shared_ptr<detail::ProposalStateBase> state) {
  if (host_.stopping()) {
    state->fail(error(Errc::shutting_down,
                      "propose on kernel " + std::to_string(self_) + ": the kernel is stopping"));
    return;
  }
  if (auto failure = not_member("propose")) {
    state->fail(std::move(*failure));
    return;
  }
  if (op.size() > kMaxOp) {
    state->fail(error(Errc::too_large, "operation of " + std::to_string(op.size()) +
                                           " bytes is over the limit of " + std::to_string(kMaxOp) +
                                           " bytes per operation"));
    return;
  }
  if (object_->options.protocol == Protocol::one_phase) {
    // One-phase updates commute, so replicas may apply them in different orders and a check
    // would see different states: it runs once, here, before anything is sent.
    if (auto valid = machine_->check(op); !valid) {
      state->fail(std::move(valid).error());
      return;
    }
  }
  const std::uint64_t number = ++proposals_made_;
  auto made =
      pending_.emplace(number, Pending{std::move(state), std::move(op), Phase::queued, {}, {}, {}});
  made.first->second.deadline = deadline_in(Deadline::Kind::proposal, number);
  if (frozen_ || closed_ || !queued_.empty()) {
    // Behind the ones already queued, so that this kernel's proposals keep their order.
    queued_.push_back(number);
    if (!frozen_ && !closed_) host_.schedule(*this);
  } else {
    begin(number);
  }
}

void Replica::begin(std::uint64_t number) {
  Pending& pending = pending_.at(number);
  pending.phase = Phase::running;
  ++in_flight_;
  switch (object_->options.protocol) {
    case Protocol::one_phase:
      // Step "apply": every replica applies and acknowledges; done when all have.
      pending.state->hold();
      start_proposal_wave(WaveKind::one_phase_apply, number, pending.op);
      return;
    case Protocol::two_phase:
      // Step "prepare": every participant checks and reserves the keys, and votes.
      pending.state->hold();
      start_proposal_wave(WaveKind::prepare, number, pending.op);
      return;
    case Protocol::ordered:
      // Step "submit": the sequencer gives the operation its place in the order. Held when it
      // completes everywhere: the local apply's value waits for the confirm wave.
      if (pending.state->everywhere()) pending.state->hold();
      submit_pending(number);
      return;
  }
}

void Replica::submit_pending(std::uint64_t number) {
  const Pending& pending = pending_.at(number);
  if (coordinator_ == self_) {
    submit(self_, number, pending.op);
    return;
  }
  Header header;
  header.object = object_->id;
  header.a = number;
  header.root = self_;
  header.origin = self_;
  header.epoch = epoch_;
  header.step = Step::submit;
  host_.send(coordinator_, message(header, pending.op));
}

void Replica::finish(std::uint64_t number, Vote failure) {
  auto it = pending_.find(number);
  if (it == pending_.end()) return;
  Pending done = std::move(it->second);
  pending_.erase(it);
  // From its own deadline, the entry is gone already; otherwise it must not outlive the proposal.
  if (done.deadline) host_.cancel_deadline(*done.deadline);
  if (done.phase != Phase::queued) --in_flight_;
  // The proposer's result is its own replica's apply: when that threw, so did every other.
  if (!failure) failure = std::move(done.local_failure);
  if (failure) {
    done.state->fail(std::move(*failure));
  } else if (!done.state->release()) {
    done.state->fail(error(Errc::internal,
                           "proposal " + std::to_string(number) + " completed without its result"));
  }
  if (object_->options.protocol != Protocol::ordered) host_.schedule(*this);  // Stable prefix.
  on_idle_maybe();
}

void Replica::expire(std::uint64_t number) {
  auto it = pending_.find(number);
  if (it == pending_.end()) return;
  it->second.deadline.reset();  // Fired: the host already removed it.
  const std::string what = "proposal " + std::to_string(number) + " of kernel " +
                           std::to_string(self_) + " on replicated object " +
                           std::to_string(object_->id);
  switch (it->second.phase) {
    case Phase::queued:
      std::erase(queued_, number);
      finish(number,
             error(Errc::timed_out, what + ": not started in time (a membership or view change was "
                                           "running)"));
      return;
    case Phase::running:
      if (object_->options.protocol == Protocol::two_phase && !closed_) {
        // The coordinator decides: abort, so that no participant keeps its reservation. (During
        // a view change its report said "undecided", which the leader resolves as abort.)
        it->second.phase = Phase::deciding;
        start_proposal_wave(WaveKind::abort, number, {});
      }
      finish(number,
             error(Errc::timed_out, what + ": no agreement in time (a member may have stopped)"));
      return;
    case Phase::deciding:
      // Decided proposals have no deadline (drop_deadline).
      return;
    case Phase::confirming:
      // Applied here (ordered, Completion::everywhere) or by a view change's record, but not
      // confirmed by every replica in time: it is applied wherever it is applied at all, and
      // a replica that has not applied it yet will, unless it fails first.
      finish(number, error(Errc::timed_out, what + ": applied, but not every replica confirmed "
                                                   "applying it in time"));
      return;
  }
}

void Replica::drop_deadline(std::uint64_t number) {
  auto it = pending_.find(number);
  if (it == pending_.end() || !it->second.deadline) return;
  host_.cancel_deadline(*std::exchange(it->second.deadline, std::nullopt));
}

std::uint64_t Replica::stable_prefix() const {
  std::uint64_t lowest = proposals_made_ + 1;
  if (!pending_.empty()) lowest = std::min(lowest, pending_.begin()->first);
  if (!open_waves_.empty()) lowest = std::min(lowest, *open_waves_.begin());
  return lowest - 1;
}

bool Replica::quiescent() const {
  if (in_flight_ != 0 || root_waves_ != 0 || !unresolved_.empty()) return false;
  if (object_->options.protocol == Protocol::ordered && coordinator_ == self_) {
    return batch_count_ == 0 && committed_ + 1 == next_seq_ && commit_sent_ == committed_ &&
           applied_seq_ >= committed_;
  }
  return true;
}

void Replica::on_idle_maybe() {
  if (!freeze_wave_ || !quiescent()) return;
  const WaveKey key = *freeze_wave_;
  freeze_wave_.reset();
  answer(key, Vote{});
}

}  // namespace mk::replica
