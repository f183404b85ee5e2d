// A replica's construction, message dispatch, deadlines and deferred work.
#include "replica/replica.h"

#include <algorithm>

#include "mk/skb.h"

namespace mk::replica {

Replica::Replica(ReplicaHost& host, detail::ObjectRef object,
                 std::unique_ptr<detail::ErasedMachine> machine)
    : host_(host),
      kernel_(host.kernel()),
      object_(std::move(object)),
      self_(kernel_.id()),
      machine_(std::move(machine)),
      members_(object_->options.kernels) {
  member_ = machine_ != nullptr && std::binary_search(members_.begin(), members_.end(), self_);
  coordinator_ = pick_coordinator();
}

std::optional<Error> Replica::not_member(const char* what) const {
  if (member_) return std::nullopt;
  return error(Errc::invalid_argument, std::string(what) + ": kernel " + std::to_string(self_) +
                                           " is not a member of replicated object " +
                                           std::to_string(object_->id));
}

KernelId Replica::pick_coordinator() const {
  const auto& preferred = object_->options.sequencer;
  if (preferred && std::binary_search(members_.begin(), members_.end(), *preferred)) {
    return *preferred;
  }
  if (members_.empty()) return self_;
  std::vector<CoreId> cores;
  for (KernelId member : members_)
    cores.push_back(kernel_.core_of(member));
  std::sort(cores.begin(), cores.end());
  cores.erase(std::unique(cores.begin(), cores.end()), cores.end());
  auto central = kernel_.skb().central_core(cores);
  if (!central) return members_.front();
  for (KernelId member : members_) {
    if (kernel_.core_of(member) == *central) return member;
  }
  return members_.front();
}

ReplicaHost::DeadlineHandle Replica::deadline_in(Deadline::Kind kind, std::uint64_t id) {
  // A view change's report is sent again much sooner than anything times out.
  Duration after = object_->options.timeout;

  if (kind == Deadline::Kind::view) after /= 4;
  return host_.add_deadline(kernel_.now() + after, Deadline{object_->id, kind, id});
}

void Replica::record_apply(const OpId& id) {
  ++applied_;
  if (object_->options.record_history) history_.push_back(id);
}

detail::ProposalStateBase* Replica::sink_for(const OpId& id) {
  if (id.origin != self_) return nullptr;
  auto it = pending_.find(id.number);
  return it == pending_.end() ? nullptr : it->second.state.get();
}

void Replica::note_local_failure(std::uint64_t number, const Error& failure) {
  if (auto it = pending_.find(number); it != pending_.end()) it->second.local_failure = failure;
}

void Replica::on_message(KernelId from, const Header& header, std::span<const std::byte> body) {
  switch (header.step) {
    case Step::wave_down:
    case Step::submit:
    case Step::repair:
      if (header.epoch > epoch_ ||
          std::any_of(ahead_.begin(), ahead_.end(),
                      [from](const auto& held) { return held.first == from; })) {
        // Sent by a kernel that already installed a later view: wait for it here too. And
        // behind what waits from the same sender, whose messages keep their order.
        ahead_.emplace_back(from, message(header, body));
        return;
      }
      // An older epoch's, or this one's once a view change began: what it carried is resolved
      // by the view change (docs/replica.md, "When a member fails").
      if (header.epoch < epoch_ || closed_) return;
      if (header.step == Step::wave_down) {
        on_wave_down(from, header, body);
      } else if (header.step == Step::submit) {
        submit(header.origin, header.a, body);
      } else {
        on_repair(header);
      }
      return;
    case Step::wave_up:
      if (!closed_) on_wave_up(header, body);
      return;
    case Step::change_request:
      on_change_request(header);
      return;
    case Step::change_reply: {
      auto it = change_waits_.find(header.a);
      if (it == change_waits_.end()) return;
      auto latch = std::move(it->second.latch);
      host_.cancel_deadline(it->second.deadline);
      change_waits_.erase(it);
      if (header.status != 0) {
        latch->fail(error_of(header.status, body));
      } else {
        static_cast<detail::ProposalState<bool>&>(*latch).fulfill(true);
      }
      return;
    }
    case Step::state_chunk:
      on_state_chunk(header, body);
      return;
    case Step::state_done:
      on_state_done(from, header, body);
      return;
    case Step::state_ack:
      if (active_ && phase_ == ChangePhase::transferring && header.a == active_->number) {
        change_phase_done(header.status == 0 ? Vote{} : Vote{error_of(header.status, body)});
      }
      return;
    case Step::bulk:
      on_bulk(from, header, body);
      return;
    case Step::view_notice:
      on_view_notice(from, header);
      return;
    case Step::stable:
      learn_stable(header.origin, header.b);
      return;
    case Step::created:
      return;
    case Step::install_part:
    case Step::install:
    case Step::describe:
    case Step::described:
      // The kernel's ReplicaHost takes these; one addressed to a replica is malformed.
      break;
  }
  detail::KernelAccess::note_failure(kernel_, "replica message with unexpected step " +
                                                  std::to_string(static_cast<int>(header.step)) +
                                                  " from kernel " + std::to_string(from));
}

void Replica::on_deadline(const Deadline& deadline) {
  switch (deadline.kind) {
    case Deadline::Kind::proposal:
      expire(deadline.id);
      return;
    case Deadline::Kind::read: {
      auto it = reads_.find(deadline.id);
      if (it == reads_.end()) return;
      detail::ReadWaiter* waiter = it->second.waiter;
      reads_.erase(it);
      waiter->error =
          error(Errc::timed_out, "read of replicated object " + std::to_string(object_->id) +
                                     " on kernel " + std::to_string(self_) +
                                     ": prepared updates not applied in time");
      detail::KernelAccess::make_ready(kernel_, waiter->handle);
      return;
    }
    case Deadline::Kind::change:
      if (deadline.id != phase_serial_) return;
      // Fired, so already gone from the host's deadlines.
      phase_deadline_.reset();
      if (active_ && !closed_) {
        change_phase_done(error(Errc::timed_out, std::string(active_->join ? "join" : "leave") +
                                                     " of kernel " +
                                                     std::to_string(active_->target) +
                                                     ": a member did not answer in time"));
      }
      return;
    case Deadline::Kind::change_wait: {
      auto it = change_waits_.find(deadline.id);
      if (it == change_waits_.end()) return;
      // Membership changes take several phases: the requester waits for four timeouts, and
      // sends the request again after each (a kernel on its way may have failed).
      if (it->second.resends < 3) {
        ++it->second.resends;
        it->second.deadline = deadline_in(Deadline::Kind::change_wait, deadline.id);
        resend_change_request(deadline.id);
        return;
      }
      auto latch = std::move(it->second.latch);
      change_waits_.erase(it);
      latch->fail(error(Errc::timed_out, "membership change of replicated object " +
                                             std::to_string(object_->id) +
                                             ": no answer from the coordinator in time"));
      return;
    }
    case Deadline::Kind::wave: {
      auto it = waves_.find(WaveKey{self_, deadline.id});
      if (it == waves_.end()) return;
      it->second.deadline.reset();  // Fired: the host already removed it.
      // A view change resolves what the wave carried; nothing of this epoch is sent any more.
      if (!closed_) repair(it->second);
      return;
    }
    case Deadline::Kind::view:
      view_retry_.reset();  // Fired: the host already removed it.
      if (closed_ && deadline.id == epoch_) {
        // A report can be lost (its leader did not know the object yet, or went offline).
        leader_ = pick_leader();
        announce();
        arm_view_retry();
      }
      return;
    case Deadline::Kind::create:
    case Deadline::Kind::describe:
      // The host's own waits (ReplicaHost::fire); never a replica's.
      return;
  }
}

void Replica::after_turn() {
  if (!closed_ && object_->options.protocol == Protocol::ordered && coordinator_ == self_) {
    flush_sequencer();
  }
  if (confirm_due_ && member_ && !closed_) start_confirms();
  if (member_ && !frozen_ && !closed_) {
    while (!queued_.empty()) {
      const std::uint64_t number = queued_.front();
      queued_.pop_front();
      if (pending_.contains(number)) begin(number);
    }
  }
  if (!ahead_.empty()) {
    auto waiting = std::exchange(ahead_, {});
    for (auto& [from, whole] : waiting) {
      std::size_t at = 0;
      const Header header = *decode_header(whole, at);
      on_message(from, header, std::span<const std::byte>(whole).subspan(at));
    }
  }
}

void Replica::on_installed() {
  for (KernelId member : members_) {
    if (gone(member)) {
      close();
      return;
    }
  }
}

void Replica::on_stop() {
  const auto stopping = [this](const char* what) {
    return error(Errc::shutting_down, std::string(what) + " on kernel " + std::to_string(self_) +
                                          ": the kernel is stopping");
  };
  queued_.clear();
  while (!pending_.empty())
    finish(pending_.begin()->first, stopping("proposal"));
  for (auto& [id, wait] : std::exchange(reads_, {})) {
    host_.cancel_deadline(wait.deadline);
    wait.waiter->error = stopping("read");
    detail::KernelAccess::make_ready(kernel_, wait.waiter->handle);
  }
  for (auto& [number, wait] : std::exchange(change_waits_, {})) {
    host_.cancel_deadline(wait.deadline);
    wait.latch->fail(stopping("membership change"));
  }
  disarm_view_retry();
  disarm_phase_deadline();
}

}  // namespace mk::replica
