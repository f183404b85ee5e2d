// Membership changes, run one at a time by the coordinator (the sequencer):
//   1. freeze:   every member stops starting proposals (new ones queue) and acknowledges once
//                what it started has finished everywhere;
//   2. transfer: (join) the coordinator's state goes to the joiner, in chunks;
//   3. install:  the new member list and epoch reach old and new members; they unfreeze and
//                the queued proposals run on the new membership (or fail, on a leaver).
// A phase not done within the timeout undoes the change: the old list is installed again under
// a new epoch, which unfreezes everyone, and the requester gets timed_out.
#include <algorithm>

#include "replica/replica.h"

namespace mk::replica {

namespace {

/// What a state_done message carries in front of the member list.
struct StateMeta {
  std::uint64_t applied_seq = 0;
  std::uint64_t applied = 0;
  std::uint64_t size = 0;
  std::uint32_t members = 0;
  std::uint32_t reserved = 0;
};

std::string describe(bool join, KernelId target) {
  return std::string(join ? "join" : "leave") + " of kernel " + std::to_string(target);
}

}  // namespace

void Replica::request_change(bool join, KernelId target,
                             std::shared_ptr<detail::ProposalStateBase> latch) {
  const std::uint64_t number = ++changes_made_;
  change_waits_.emplace(
      number, ChangeWait{std::move(latch), deadline_in(Deadline::Kind::change_wait, number)});
  Header header;
  header.object = object_->id;
  header.a = number;
  header.b = target;
  header.root = self_;
  header.origin = self_;
  header.epoch = epoch_;
  header.step = Step::change_request;
  header.flag = join ? 1 : 0;
  host_.send(coordinator_, message(header));
}

void Replica::on_change_request(const Header& header) {
  if (coordinator_ != self_) {
    host_.send(coordinator_, message(header));
    return;
  }
  changes_.push_back(
      Change{header.a, header.origin, header.flag != 0, static_cast<KernelId>(header.b)});
  if (!active_) start_next_change();
}

void Replica::reply_change(const Change& change, Vote outcome) {
  Header header;
  header.object = object_->id;
  header.a = change.number;
  header.root = self_;
  header.epoch = epoch_;
  header.step = Step::change_reply;
  std::span<const std::byte> text;
  if (outcome) {
    header.status = status_of(*outcome);
    text = text_of(*outcome);
  }
  host_.send(change.requester, message(header, text));
}

void Replica::start_next_change() {
  while (!active_ && !changes_.empty()) {
    Change change = changes_.front();
    changes_.pop_front();
    if (coordinator_ != self_) {
      // This kernel stopped coordinating (it left); the requests go to its successor.
      Header header;
      header.object = object_->id;
      header.a = change.number;
      header.b = change.target;
      header.origin = change.requester;
      header.root = self_;
      header.epoch = epoch_;
      header.step = Step::change_request;
      header.flag = change.join ? 1 : 0;
      host_.send(coordinator_, message(header));
      continue;
    }
    const bool is_member = std::binary_search(members_.begin(), members_.end(), change.target);
    const std::string what = describe(change.join, change.target) + " to replicated object " +
                             std::to_string(object_->id);
    if (change.target >= kernel_.system_size()) {
      reply_change(change,
                   error(Errc::invalid_argument, what + ": no such kernel (the system has " +
                                                     std::to_string(kernel_.system_size()) + ")"));
      continue;
    }
    if (change.join && is_member) {
      reply_change(change, error(Errc::invalid_argument, what + ": already a member"));
      continue;
    }
    if (!change.join && !is_member) {
      reply_change(change, error(Errc::invalid_argument, what + ": not a member"));
      continue;
    }
    if (!change.join && members_.size() == 1) {
      reply_change(change, error(Errc::invalid_argument, what + ": it is the last member"));
      continue;
    }
    active_ = change;
    phase_ = ChangePhase::freezing;
    arm_phase_deadline();
    Header header;
    header.origin = self_;
    header.b = change.number;
    start_wave(WaveKind::freeze, header, {}, {}, change.number, 0);
  }
}

void Replica::arm_phase_deadline() {
  disarm_phase_deadline();
  phase_deadline_ = deadline_in(Deadline::Kind::change, ++phase_serial_);
}

void Replica::disarm_phase_deadline() {
  if (phase_deadline_) host_.cancel_deadline(*std::exchange(phase_deadline_, std::nullopt));
}

void Replica::change_phase_done(Vote outcome) {
  if (!active_) return;
  const Change change = *active_;
  switch (phase_) {
    case ChangePhase::freezing:
    case ChangePhase::transferring:
      if (outcome) {
        reply_change(change, outcome);
        phase_ = ChangePhase::undoing;
        start_install(members_);
        return;
      }
      if (phase_ == ChangePhase::freezing && change.join) {
        phase_ = ChangePhase::transferring;
        arm_phase_deadline();
        send_state(change.target);
        return;
      }
      {
        std::vector<KernelId> next = members_;
        if (change.join) {
          next.insert(std::upper_bound(next.begin(), next.end(), change.target), change.target);
        } else {
          std::erase(next, change.target);
        }
        phase_ = ChangePhase::installing;
        start_install(std::move(next));
      }
      return;
    case ChangePhase::installing:
      reply_change(change, outcome);
      disarm_phase_deadline();
      active_.reset();
      start_next_change();
      return;
    case ChangePhase::undoing:
      disarm_phase_deadline();
      active_.reset();
      start_next_change();
      return;
  }
}

void Replica::start_install(std::vector<KernelId> next) {
  arm_phase_deadline();
  std::vector<std::byte> body;
  put(body, static_cast<std::uint32_t>(next.size()));
  for (KernelId member : next)
    put(body, member);
  put(body, next_seq_);
  std::vector<KernelId> set = members_;
  set.insert(set.end(), next.begin(), next.end());
  std::sort(set.begin(), set.end());
  set.erase(std::unique(set.begin(), set.end()), set.end());
  Header header;
  header.origin = self_;
  header.b = active_ ? active_->number : 0;
  start_wave(WaveKind::install, header, std::move(body), set, header.b, 0);
}

Vote Replica::install(const Header& header, std::span<const std::byte> body) {
  if (header.epoch != epoch_) return Vote{};  // Already installed.
  std::size_t at = 0;
  auto count = get<std::uint32_t>(body, at);
  if (!count || *count > body.size() / sizeof(KernelId)) {
    return Vote{error(Errc::parse_error, "install wave without a member list")};
  }
  std::vector<KernelId> next;
  for (std::uint32_t i = 0; i < *count; ++i)
    next.push_back(*get<KernelId>(body, at));
  auto next_seq = get<std::uint64_t>(body, at);
  if (!next_seq) return Vote{error(Errc::parse_error, "install wave without its sequence")};

  past_members_[epoch_] = members_;
  while (past_members_.size() > 16)
    past_members_.erase(past_members_.begin());
  members_ = std::move(next);
  ++epoch_;
  trees_.clear();
  frozen_ = false;
  freeze_wave_.reset();
  member_ = machine_ != nullptr && std::binary_search(members_.begin(), members_.end(), self_);
  const KernelId previous = coordinator_;
  coordinator_ = pick_coordinator();
  if (object_->options.protocol == Protocol::ordered && coordinator_ == self_ &&
      previous != self_) {
    // The new sequencer continues the numbering; everything before was committed (freeze).
    next_seq_ = *next_seq;
    committed_ = *next_seq - 1;
    commit_sent_ = committed_;
    sequenced_.clear();
  }
  if (!member_) {
    machine_.reset();
    for (std::uint64_t number : std::exchange(queued_, {}))
      finish(number, not_member("propose"));
    wake_reads();
    reserved_.clear();
    prepared_.clear();
    unresolved_.clear();
  }
  host_.schedule(*this);
  return Vote{};
}

std::optional<Vote> Replica::freeze(const WaveKey& key) {
  frozen_ = true;
  if (quiescent()) return Vote{};
  freeze_wave_ = key;
  return std::nullopt;
}

void Replica::send_state(KernelId joiner) {
  std::vector<std::byte> state;
  machine_->snapshot(state);
  Header header;
  header.object = object_->id;
  header.a = active_->number;
  header.root = self_;
  header.epoch = epoch_;
  header.step = Step::state_chunk;
  for (std::size_t offset = 0; offset < state.size(); offset += kMaxBody) {
    header.b = offset;
    const std::size_t size = std::min(kMaxBody, state.size() - offset);
    host_.send(joiner, message(header, std::span(state).subspan(offset, size)));
  }
  std::vector<std::byte> meta;
  put(meta, StateMeta{applied_seq_, applied_, state.size(),
                      static_cast<std::uint32_t>(members_.size()), 0});
  for (KernelId member : members_)
    put(meta, member);
  header.step = Step::state_done;
  header.b = 0;
  host_.send(joiner, message(header, meta));
}

void Replica::on_state_chunk(const Header& header, std::span<const std::byte> body) {
  if (header.b == 0) incoming_.clear();
  if (header.b != incoming_.size()) return;  // A chunk of an older transfer.
  incoming_.insert(incoming_.end(), body.begin(), body.end());
}

void Replica::on_state_done(KernelId from, const Header& header, std::span<const std::byte> body) {
  Header ack;
  ack.object = object_->id;
  ack.a = header.a;
  ack.root = self_;
  ack.epoch = header.epoch;
  ack.step = Step::state_ack;
  auto refuse = [&](const Error& failure) {
    ack.status = status_of(failure);
    host_.send(from, message(ack, text_of(failure)));
  };
  std::size_t at = 0;
  auto meta = get<StateMeta>(body, at);
  if (!meta || meta->members > (body.size() - at) / sizeof(KernelId)) {
    refuse(error(Errc::parse_error, "state transfer: metadata not understood"));
    return;
  }
  if (meta->size != incoming_.size()) {
    refuse(error(Errc::parse_error, "state transfer: " + std::to_string(incoming_.size()) +
                                        " bytes arrived of " + std::to_string(meta->size)));
    return;
  }
  std::vector<KernelId> old_members;
  for (std::uint32_t i = 0; i < meta->members; ++i)
    old_members.push_back(*get<KernelId>(body, at));
  auto made = object_->make(incoming_);
  incoming_.clear();
  if (!made) {
    refuse(made.error());
    return;
  }
  // Joining: a replica, not yet a member (no reads, no proposals) until the install arrives.
  machine_ = std::move(*made);
  member_ = false;
  members_ = std::move(old_members);
  epoch_ = header.epoch;
  past_members_.clear();
  trees_.clear();
  coordinator_ = pick_coordinator();
  applied_seq_ = stashed_seq_ = commit_seen_ = meta->applied_seq;
  applied_ = meta->applied;
  history_.clear();
  stash_.clear();
  reserved_.clear();
  prepared_.clear();
  unresolved_.clear();
  host_.send(from, message(ack));
  host_.schedule(*this);
}

}  // namespace mk::replica
