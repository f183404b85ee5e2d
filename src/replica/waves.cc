// Waves: how every protocol step travels. The root runs the step locally and sends it to its
// children on the route's tree; each node does the same for its subtree, then answers its
// parent once its own step and all its children have answered (the first failure wins). So
// the root hears one answer per child, however large the tree.
#include <algorithm>

#include "replica/replica.h"

namespace mk::replica {

std::optional<std::vector<KernelId>> Replica::members_at(std::uint32_t epoch) const {
  if (epoch == epoch_) return members_;
  auto it = past_members_.find(epoch);
  if (it == past_members_.end()) return std::nullopt;
  return it->second;
}

const KernelTree& Replica::tree_for(KernelId root, std::uint32_t epoch) {
  auto key = std::pair(root, epoch);
  auto it = trees_.find(key);
  if (it != trees_.end()) return it->second;
  const auto set = members_at(epoch).value_or(std::vector<KernelId>{});
  return trees_.emplace(key, build_tree(kernel_, root, set, object_->options.route)).first->second;
}

namespace {

bool membership_wave(WaveKind kind) {
  return kind == WaveKind::freeze || kind == WaveKind::install;
}

/// The new member list an install wave carries (after its count).
std::optional<std::vector<KernelId>> install_members(std::span<const std::byte> body) {
  std::size_t at = 0;
  auto count = get<std::uint32_t>(body, at);
  if (!count || *count > body.size() / sizeof(KernelId)) return std::nullopt;
  std::vector<KernelId> members;
  for (std::uint32_t i = 0; i < *count; ++i)
    members.push_back(*get<KernelId>(body, at));
  return members;
}

std::vector<KernelId> united(std::vector<KernelId> a, const std::vector<KernelId>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  return a;
}

}  // namespace

void Replica::start_wave(WaveKind kind, Header header, std::vector<std::byte> body,
                         std::span<const KernelId> set, std::uint64_t id, std::uint64_t last) {
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
    tree = &tree_for(self_, epoch_);
  } else {
    fresh = build_tree(kernel_, self_, set, object_->options.route);
    tree = &fresh;
  }
  const TreeLinks* links = tree->find(self_);
  const std::vector<KernelId> children = links ? links->children : std::vector<KernelId>{};
  const WaveKey key{self_, number};
  WaveState& state = waves_[key];
  state = WaveState{kind, std::nullopt, children.size() + 1, {}, id, last, std::nullopt};
  if (decision(kind)) state.deadline = deadline_in(Deadline::Kind::wave, number);
  if (!membership_wave(kind)) ++root_waves_;
  if (!children.empty()) {
    const auto whole = message(header, body);
    for (KernelId child : children)
      host_.send(child, whole);
  }
  auto local = local_step(header, body, true);
  if (local) answer(key, std::move(*local));
}

void Replica::on_wave_down(KernelId from, const Header& header, std::span<const std::byte> body) {
  const WaveKey key{header.root, header.a};
  std::vector<KernelId> children;
  if (header.wave == WaveKind::install) {
    auto before = members_at(header.epoch);
    auto next = install_members(body);
    if (!before || !next) {
      detail::KernelAccess::note_failure(
          kernel_, "replica install wave from kernel " + std::to_string(from) + " not understood");
      return;
    }
    const auto set = united(*before, *next);
    const KernelTree tree = build_tree(kernel_, header.root, set, object_->options.route);
    if (const TreeLinks* links = tree.find(self_)) children = links->children;
  } else {
    if (!members_at(header.epoch)) return;  // An epoch this kernel never had: not its wave.
    const TreeLinks* links = tree_for(header.root, header.epoch).find(self_);
    if (links == nullptr) {
      detail::KernelAccess::note_failure(
          kernel_, "replica wave from kernel " + std::to_string(from) + " reached kernel " +
                       std::to_string(self_) + ", which is not on its tree");
      return;
    }
    children = links->children;
  }
  waves_[key] = WaveState{header.wave, from, children.size() + 1, {}, 0, 0, std::nullopt};
  if (!children.empty()) {
    const auto whole = message(header, body);
    for (KernelId child : children)
      host_.send(child, whole);
  }
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
  if (done.parent) {
    Header up;
    up.object = object_->id;
    up.a = key.second;
    up.root = key.first;
    up.epoch = epoch_;
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
  on_wave_done(done.kind, done);
  on_idle_maybe();
}

std::optional<Vote> Replica::local_step(const Header& header, std::span<const std::byte> body,
                                        bool at_root) {
  const OpId id{header.origin, header.b};
  switch (header.wave) {
    case WaveKind::one_phase_apply: {
      if (!machine_) return Vote{};
      detail::ProposalStateBase* sink = nullptr;
      if (at_root) {
        if (auto it = pending_.find(header.b); it != pending_.end()) sink = it->second.state.get();
      }
      auto applied = machine_->apply(body, false, sink);
      if (!applied) return Vote{std::move(applied).error()};
      record_apply(id);
      return Vote{};
    }
    case WaveKind::prepare:
      if (!machine_) return Vote{};
      return prepare(id, body);
    case WaveKind::commit: {
      if (!machine_) return Vote{};
      detail::ProposalStateBase* sink = nullptr;
      if (at_root) {
        if (auto it = pending_.find(header.b); it != pending_.end()) sink = it->second.state.get();
      }
      return commit(id, sink);
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
      return freeze(WaveKey{header.root, header.a});
    case WaveKind::install:
      return install(header, body);
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
      Header header;
      header.origin = self_;
      header.b = state.id;
      if (state.vote) {
        // Step "abort": every participant releases what it reserved; the proposer learns why.
        it->second.abort_reason = state.vote;
        it->second.phase = Phase::deciding;
        start_wave(WaveKind::abort, header, {}, {}, state.id, 0);
      } else {
        // Step "commit": every participant applies and releases.
        it->second.phase = Phase::deciding;
        start_wave(WaveKind::commit, header, {}, {}, state.id, 0);
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
