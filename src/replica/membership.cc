// Membership changes, run one at a time by the coordinator (the sequencer):
//   1. freeze:   every member stops starting proposals (new ones queue) and acknowledges once
//                what it started has finished everywhere;
//   2. transfer: (join) the coordinator's state goes to the joiner, in chunks;
//   3. install:  the new member list and epoch reach old and new members; they unfreeze and
//                the queued proposals run on the new membership (or fail, on a leaver).
// A freeze or transfer not done within the timeout undoes the change: the old list is installed
// again under a new epoch, which unfreezes everyone, and the requester gets timed_out. A member
// that fails ends the change through a view change (view.cc), after which it runs again.
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
  const Change change{number, self_, join, target, false};
  const KernelId to = change_route();
  change_waits_.emplace(
      number, ChangeWait{std::move(latch), deadline_in(Deadline::Kind::change_wait, number), change,
                         to, 0});
  send_change_request(change, to, 0);
}

KernelId Replica::change_route() const {
  if (!gone(coordinator_)) return coordinator_;
  return pick_leader().value_or(self_);
}

void Replica::resend_change_request(std::uint64_t number) {
  auto it = change_waits_.find(number);
  if (it == change_waits_.end()) return;
  it->second.sent_to = change_route();
  send_change_request(it->second.change, it->second.sent_to, kChangeRetry);
}

void Replica::send_change_request(const Change& change, KernelId to, std::uint8_t extra_flags) {
  Header header;
  header.object = object_->id;
  header.a = change.number;
  header.b = change.target;
  header.root = self_;
  header.origin = change.requester;
  header.epoch = epoch_;
  header.step = Step::change_request;
  header.flag = static_cast<std::uint8_t>((change.join ? kChangeJoin : 0) |
                                          (change.retry ? kChangeRetry : 0) | extra_flags);
  host_.send(to, message(header));
}

void Replica::resend_change_requests() {
  for (auto& [number, wait] : change_waits_) {
    // Its coordinator failed, with the request perhaps done, perhaps not: ask this view's.
    if (gone(wait.sent_to)) resend_change_request(number);
  }
}

void Replica::on_change_request(const Header& header) {
  const Change change{header.a, header.origin, (header.flag & kChangeJoin) != 0,
                      static_cast<KernelId>(header.b), (header.flag & kChangeRetry) != 0};
  if (coordinator_ == self_) {
    const auto key = std::pair(change.requester, change.number);
    if (auto seen = requests_.find(key); seen != requests_.end()) {
      // Sent again: answered again if it was, else it is still queued or running.
      if (seen->second) reply_change(change, *seen->second);
      return;
    }
    requests_.emplace(key, std::nullopt);
    while (requests_.size() > 256)
      requests_.erase(requests_.begin());
  }
  // Queued here too when not coordinating: during a view change, or when the coordinator
  // is gone, the queue goes to the next one once it is known (start_next_change).
  changes_.push_back(change);
  if (!active_) start_next_change();
}

void Replica::reply_change(const Change& change, Vote outcome) {
  if (auto seen = requests_.find(std::pair(change.requester, change.number));
      seen != requests_.end()) {
    seen->second = outcome;
  }
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
  // During a view change the queue waits: the change runs on the view that comes out of it.
  while (!active_ && !closed_ && !changes_.empty()) {
    Change change = changes_.front();
    changes_.pop_front();
    if (coordinator_ != self_) {
      // Not the coordinator (it left, or a view change chose another): the requests go to it,
      // once it is known to be alive.
      if (gone(coordinator_)) {
        changes_.push_front(change);
        return;
      }
      requests_.erase(std::pair(change.requester, change.number));  // Not taken here now.
      send_change_request(change, coordinator_, change.retry ? kChangeRetry : 0);
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
      // A request sent again after a view change may have been done before it.
      reply_change(change, change.retry
                               ? Vote{}
                               : Vote{error(Errc::invalid_argument, what + ": already a member")});
      continue;
    }
    if (!change.join && !is_member) {
      // A failed kernel is out once a view change removed it: leaving it asks for nothing more.
      const bool done = change.retry || host_.known_failed(change.target);
      reply_change(change,
                   done ? Vote{} : Vote{error(Errc::invalid_argument, what + ": not a member")});
      continue;
    }
    if (change.join && gone(change.target)) {
      reply_change(change, error(Errc::closed, what + ": the kernel failed or went offline"));
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
    std::vector<std::byte> body;
    put(body, static_cast<std::uint8_t>(change.join ? 1 : 0));
    put(body, change.target);
    start_wave(WaveKind::freeze, header, std::move(body), {}, change.number, 0);
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
  InstallRecord record;
  record.base = epoch_;
  record.members = next;
  // Everything was committed (the freeze made every member quiescent).
  record.through = next_seq_ - 1;
  // Old and new members, and the change's target (a joiner drops the copy it got when the
  // change is undone); not those that failed, whose answers would never come.
  std::vector<KernelId> set = members_;
  set.insert(set.end(), next.begin(), next.end());
  if (active_) set.push_back(active_->target);
  std::sort(set.begin(), set.end());
  set.erase(std::unique(set.begin(), set.end()), set.end());
  std::erase_if(set, [this](KernelId kernel) { return kernel != self_ && gone(kernel); });
  std::vector<std::byte> body;
  put(body, static_cast<std::uint32_t>(set.size()));
  for (KernelId kernel : set)
    put(body, kernel);
  const auto encoded = encode(record);
  body.insert(body.end(), encoded.begin(), encoded.end());
  Header header;
  header.origin = self_;
  header.b = active_ ? active_->number : 0;
  start_wave(WaveKind::install, header, std::move(body), set, header.b, 0);
}

std::optional<Vote> Replica::freeze(const WaveKey& key, std::span<const std::byte> body) {
  std::size_t at = 0;
  auto join = get<std::uint8_t>(body, at);
  auto target = get<KernelId>(body, at);
  if (!join || !target) return Vote{error(Errc::parse_error, "freeze wave without its change")};
  frozen_ = true;
  pending_change_ = PendingChange{*join != 0, *target};
  if (quiescent()) return Vote{};
  freeze_wave_ = key;
  return std::nullopt;
}

void Replica::send_state(KernelId joiner) {
  std::vector<std::byte> state;
  if (auto encoded = machine_->snapshot(state); !encoded) {
    change_phase_done(std::move(encoded).error());
    return;
  }
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
  trees_.clear();
  pending_change_ = PendingChange{true, self_};
  // A view change it took part in as a joiner is over for it: it now holds the coordinator's
  // view, which came out of it.
  closed_ = false;
  leader_.reset();
  reports_.clear();
  disarm_view_retry();
  coordinator_ = pick_coordinator();
  applied_seq_ = stashed_seq_ = commit_seen_ = meta->applied_seq;
  applied_ = meta->applied;
  history_.clear();
  stash_.clear();
  reserved_.clear();
  prepared_.clear();
  unresolved_.clear();
  recent_.clear();
  host_.send(from, message(ack));
  host_.schedule(*this);
}

}  // namespace mk::replica
