// Waves: how every protocol step travels. The root runs the step locally and sends it to its
// children on the route's tree; each node does the same for its subtree, then answers its
// parent once its own step and all its children have answered (the first failure wins). So
// the root hears one answer per child, however large the tree.
#include <algorithm>

#include "replica/replica.h"

namespace mk::replica {

const KernelTree& Replica::tree_for(KernelId root) {
  auto it = trees_.find(root);
  if (it != trees_.end()) return it->second;
  return trees_.emplace(root, build_tree(kernel_, root, members_, object_->options.route))
      .first->second;
}

namespace {

bool membership_wave(WaveKind kind) {
  return kind == WaveKind::freeze || kind == WaveKind::install;
}

/// An install wave's body: the kernels it travels over (so that every node builds the same
/// tree), then the install record.
struct InstallBody {
  std::vector<KernelId> set;
  std::span<const std::byte> record;
};

std::optional<InstallBody> parse_install(std::span<const std::byte> body) {
  std::size_t at = 0;
  auto count = get<std::uint32_t>(body, at);
  if (!count || *count > (body.size() - at) / sizeof(KernelId)) return std::nullopt;
  InstallBody parsed;
  for (std::uint32_t i = 0; i < *count; ++i)
    parsed.set.push_back(*get<KernelId>(body, at));
  parsed.record = body.subspan(at);
  return parsed;
}

}  // namespace

std::uint64_t Replica::start_wave(WaveKind kind, Header header, std::vector<std::byte> body,
                                  std::span<const KernelId> set, std::uint64_t id,
                                  std::uint64_t last) {
  const std::uint64_t number = ++waves_started_;
  header.object = object_->id;
  header.a = number;
  header.root = self_;
  header.epoch = epoch_;
  header.step = Step::wave_down;
  header.wave = kind;
  KernelTree fresh;
  const KernelTree* tree = nullptr;
  if (set.empty()) {
    tree = &tree_for(self_);
  } else {
    fresh = build_tree(kernel_, self_, set, object_->options.route);
    tree = &fresh;
  }
  const TreeLinks* links = tree->find(self_);
  // A copy: the local step below may change the trees.
  const TreeLinks own = links ? *links : TreeLinks{};
  const WaveKey key{self_, number};
  WaveState& state = waves_[key];
  state =
      WaveState{kind, std::nullopt, own.children.size() + 1, {}, id, last, std::nullopt, epoch_};
  if (decision(kind)) state.deadline = deadline_in(Deadline::Kind::wave, number);
  if (!membership_wave(kind)) ++root_waves_;
  if (proposal_wave(kind)) open_waves_.insert(id);
  if (!own.children.empty()) host_.send_fan_out(own.fan_out(), message(header, body));
  auto local = local_step(header, body, true);
  if (local) answer(key, std::move(*local));
  return number;
}

void Replica::start_proposal_wave(WaveKind kind, std::uint64_t number,
                                  std::span<const std::byte> op) {
  Header header;
  header.origin = self_;
  header.b = number;
  std::vector<std::byte> body;
  stable_sent_ = std::max(stable_sent_, stable_prefix());
  put(body, stable_sent_);
  body.insert(body.end(), op.begin(), op.end());
  start_wave(kind, header, std::move(body), {}, number, 0);
}

// Only waves of this replica's epoch reach here (on_message holds later ones and drops older
// ones), so every node builds the tree from the same members.
void Replica::on_wave_down(KernelId from, const Header& header, std::span<const std::byte> body) {
  const WaveKey key{header.root, header.a};
  TreeLinks own;
  if (header.wave == WaveKind::install) {
    auto parsed = parse_install(body);
    if (!parsed) {
      detail::KernelAccess::note_failure(
          kernel_, "replica install wave from kernel " + std::to_string(from) + " not understood");
      return;
    }
    const KernelTree tree = build_tree(kernel_, header.root, parsed->set, object_->options.route);
    if (const TreeLinks* links = tree.find(self_)) own = *links;
  } else {
    const TreeLinks* links = tree_for(header.root).find(self_);
    if (links == nullptr) {
      detail::KernelAccess::note_failure(
          kernel_, "replica wave from kernel " + std::to_string(from) + " reached kernel " +
                       std::to_string(self_) + ", which is not on its tree");
      return;
    }
    own = *links;
  }
  waves_[key] =
      WaveState{header.wave, from, own.children.size() + 1, {}, 0, 0, std::nullopt, header.epoch};
  if (!own.children.empty()) host_.send_fan_out(own.fan_out(), message(header, body));
  auto local = local_step(header, body, false);
  if (local) answer(key, std::move(*local));
}

void Replica::on_wave_up(const Header& header, std::span<const std::byte> body) {
  answer(WaveKey{header.root, header.a},
         header.status == 0 ? Vote{} : Vote{error_of(header.status, body)});
}

void Replica::answer(const WaveKey& key, Vote vote) {
  auto it = waves_.find(key);
  if (it == waves_.end()) return;
  WaveState& state = it->second;
  if (vote && !state.vote) state.vote = std::move(vote);
  if (--state.remaining > 0) return;
  WaveState done = std::move(state);
  waves_.erase(it);
  if (done.deadline) host_.cancel_deadline(*done.deadline);
  wave_finished(key, std::move(done));
}

void Replica::wave_finished(const WaveKey& key, WaveState done) {
  if (done.parent) {
    Header up;
    up.object = object_->id;
    up.a = key.second;
    up.root = key.first;
    up.epoch = done.epoch;
    up.step = Step::wave_up;
    up.wave = done.kind;
    std::span<const std::byte> text;
    if (done.vote) {
      up.status = status_of(*done.vote);
      text = text_of(*done.vote);
    }
    host_.send(*done.parent, message(up, text));
    return;
  }
  if (!membership_wave(done.kind)) --root_waves_;
  if (proposal_wave(done.kind)) {
    if (auto open = open_waves_.find(done.id); open != open_waves_.end()) open_waves_.erase(open);
    host_.schedule(*this);  // The stable prefix may have moved.
  }
  // Waves are numbered per root, and a proposal confirming waits for one by its number.
  if (done.kind == WaveKind::sequence || done.kind == WaveKind::commit_up_to ||
      done.kind == WaveKind::confirm) {
    confirmed_by(key.second);
  }
  on_wave_done(done.kind, done);
  on_idle_maybe();
}

std::optional<Vote> Replica::local_step(const Header& header, std::span<const std::byte> body,
                                        bool at_root) {
  const OpId id{header.origin, header.b};
  if (proposal_wave(header.wave)) {
    // In front of the operation: what the proposer knows to be everywhere.
    std::size_t at = 0;
    auto stable = get<std::uint64_t>(body, at);
    if (!stable) return Vote{error(Errc::parse_error, "proposal wave without its stable prefix")};
    learn_stable(header.origin, *stable);
    body = body.subspan(at);
  }
  switch (header.wave) {
    case WaveKind::one_phase_apply: {
      if (!machine_) return Vote{};
      auto applied = machine_->apply(body, false, at_root ? sink_for(id) : nullptr);
      // Applied or not, it counts as seen: a throwing operation throws everywhere, and a view
      // change must not try it again here.
      applied_from_[id.origin] = std::max(applied_from_[id.origin], id.number);
      if (!applied) {
        if (at_root) note_local_failure(id.number, applied.error());
        return Vote{std::move(applied).error()};
      }
      record_apply(id);
      log_op(id, body);
      return Vote{};
    }
    case WaveKind::prepare:
      if (!machine_) return Vote{};
      return prepare(id, body);
    case WaveKind::commit: {
      if (!machine_) return Vote{};
      Vote committed = commit(id, at_root ? sink_for(id) : nullptr);
      if (committed && at_root) note_local_failure(id.number, *committed);
      return committed;
    }
    case WaveKind::abort:
      release(id);
      return Vote{};
    case WaveKind::sequence: {
      auto stashed = stash(body);
      commit_through(header.b);
      return stashed;
    }
    case WaveKind::commit_up_to:
      commit_through(header.b);
      return Vote{};
    case WaveKind::freeze:
      return freeze(WaveKey{header.root, header.a}, body);
    case WaveKind::confirm:
      // After a view change, reaching this replica is the point (it installed the view); for
      // Completion::everywhere, it answers once it applied what the wave names.
      return sync(WaveKey{header.root, header.a}, body);
    case WaveKind::install: {
      auto parsed = parse_install(body);
      if (!parsed) return Vote{error(Errc::parse_error, "install wave not understood")};
      (void)apply_record(parsed->record, header.root);
      return Vote{};
    }
  }
  return Vote{error(Errc::parse_error, "replica wave of unknown kind " +
                                           std::to_string(static_cast<int>(header.wave)))};
}

void Replica::on_wave_done(WaveKind kind, const WaveState& state) {
  switch (kind) {
    case WaveKind::one_phase_apply:
      finish(state.id, state.vote);
      return;
    case WaveKind::prepare: {
      auto it = pending_.find(state.id);
      if (it == pending_.end() || it->second.phase != Phase::running) return;
      it->second.phase = Phase::deciding;
      drop_deadline(state.id);
      if (state.vote) {
        // Step "abort": every participant releases what it reserved; the proposer learns why.
        it->second.abort_reason = state.vote;
        start_proposal_wave(WaveKind::abort, state.id, {});
      } else {
        // Step "commit": every participant applies and releases.
        start_proposal_wave(WaveKind::commit, state.id, {});
      }
      return;
    }
    case WaveKind::commit:
      finish(state.id, state.vote);
      return;
    case WaveKind::abort: {
      auto it = pending_.find(state.id);
      if (it == pending_.end()) return;
      Vote reason = it->second.abort_reason;
      if (!reason) reason = error(Errc::internal, "two-phase commit aborted without a reason");
      finish(state.id, std::move(reason));
      return;
    }
    case WaveKind::sequence:
      sequence_done(state.id, state.last);
      return;
    case WaveKind::confirm:
      return;  // wave_finished completed what it confirmed (confirmed_by)
    case WaveKind::commit_up_to:
      return;
    case WaveKind::freeze:
      if (active_ && phase_ == ChangePhase::freezing && state.id == active_->number) {
        change_phase_done(state.vote);
      }
      return;
    case WaveKind::install:
      if (active_ && (phase_ == ChangePhase::installing || phase_ == ChangePhase::undoing) &&
          state.id == active_->number) {
        change_phase_done(state.vote);
      }
      return;
  }
}

}  // namespace mk::replica

namespace mk::replica {

// A relay of the tree stopped: the members below it never heard a decision the others may
// already have applied. Every member prepared what the decision covers (its prepare or
// sequence wave was acknowledged by all), so it can apply it from the decision alone, and
// applying a decision twice changes nothing. The wave itself stays incomplete, which keeps
// membership changes from starting on a membership with a dead member.
void Replica::repair(const WaveState& state) {
  Header header;
  header.object = object_->id;
  header.root = self_;
  header.origin = self_;
  header.epoch = epoch_;
  header.step = Step::repair;
  header.wave = state.kind;
  if (state.kind == WaveKind::sequence || state.kind == WaveKind::commit_up_to) {
    header.wave = WaveKind::commit_up_to;
    header.b = committed_;
  } else {
    header.b = state.id;
  }
  const auto whole = message(header);
  for (KernelId member : members_) {
    if (member != self_) host_.send(member, whole);
  }
}

void Replica::on_repair(const Header& header) {
  if (!machine_) return;
  switch (header.wave) {
    case WaveKind::commit_up_to:
      commit_through(header.b);
      return;
    case WaveKind::commit:
      (void)commit(OpId{header.origin, header.b}, nullptr);
      return;
    case WaveKind::abort:
      release(OpId{header.origin, header.b});
      return;
    default:
      return;
  }
}

}  // namespace mk::replica
