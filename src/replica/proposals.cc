// A proposal's life on its proposer: made, queued while a membership change runs, started
// with its protocol's first step, finished with a result, an error or a timeout.
#include <algorithm>

#include "replica/replica.h"

namespace mk::replica {

void Replica::propose(std::vector<std::byte> op, std::shared_ptr<detail::ProposalStateBase> state) {
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
      pending_.emplace(number, Pending{std::move(state), std::move(op), Phase::queued, {}, {}});
  made.first->second.deadline = deadline_in(Deadline::Kind::proposal, number);
  if (frozen_) {
    queued_.push_back(number);
  } else {
    begin(number);
  }
}

void Replica::begin(std::uint64_t number) {
  Pending& pending = pending_.at(number);
  pending.phase = Phase::running;
  ++in_flight_;
  Header header;
  header.origin = self_;
  header.b = number;
  switch (object_->options.protocol) {
    case Protocol::one_phase:
      // Step "apply": every replica applies and acknowledges; done when all have.
      pending.state->hold();
      start_wave(WaveKind::one_phase_apply, header, pending.op, {}, number, 0);
      return;
    case Protocol::two_phase:
      // Step "prepare": every participant checks and reserves the keys, and votes.
      pending.state->hold();
      start_wave(WaveKind::prepare, header, pending.op, {}, number, 0);
      return;
    case Protocol::ordered:
      // Step "submit": the sequencer gives the operation its place in the order.
      if (coordinator_ == self_) {
        submit(self_, number, pending.op);
      } else {
        header.object = object_->id;
        header.a = number;
        header.root = self_;
        header.epoch = epoch_;
        header.step = Step::submit;
        host_.send(coordinator_, message(header, pending.op));
      }
      pending.op = {};
      return;
  }
}

void Replica::finish(std::uint64_t number, Vote failure) {
  auto it = pending_.find(number);
  if (it == pending_.end()) return;
  Pending done = std::move(it->second);
  pending_.erase(it);
  // From its own deadline, the entry is gone already; otherwise it must not outlive the proposal.
  if (done.deadline) host_.cancel_deadline(*done.deadline);
  if (done.phase != Phase::queued) --in_flight_;
  if (failure) {
    done.state->fail(std::move(*failure));
  } else {
    done.state->release();
  }
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
      finish(number, error(Errc::timed_out,
                           what + ": not started in time (a membership change was running)"));
      return;
    case Phase::running:
      if (object_->options.protocol == Protocol::two_phase) {
        // The coordinator decides: abort, so that no participant keeps its reservation.
        it->second.phase = Phase::deciding;
        Header header;
        header.origin = self_;
        header.b = number;
        start_wave(WaveKind::abort, header, {}, {}, number, 0);
      }
      finish(number,
             error(Errc::timed_out, what + ": no agreement in time (a member may have stopped)"));
      return;
    case Phase::deciding:
      finish(number, error(Errc::timed_out,
                           what + ": decided, but not every replica confirmed it in time"));
      return;
  }
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
