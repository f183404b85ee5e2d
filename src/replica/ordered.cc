// Ordered broadcast. The sequencer numbers operations in arrival order and sends them down its
// tree in "sequence" waves (several per wave under load); each replica stashes them and
// acknowledges. Once a wave is acknowledged by every replica, its numbers may be committed: the
// committed prefix rides on the next wave (or a "commit_up_to" wave when there is none), and
// every replica applies its stash in number order up to it.
#include <algorithm>

#include "replica/replica.h"

namespace mk::replica {

void Replica::submit(KernelId origin, std::uint64_t number, std::span<const std::byte> op) {
  if (coordinator_ != self_) {
    // Not (or no longer) the sequencer: pass it on to the one this kernel knows.
    Header header;
    header.object = object_->id;
    header.a = number;
    header.root = self_;
    header.origin = origin;
    header.epoch = epoch_;
    header.step = Step::submit;
    host_.send(coordinator_, message(header, op));
    return;
  }
  if (op.size() > kMaxOp) return;  // propose refuses these; a peer that sent one is broken.
  if (batch_count_ > 0 &&
      sizeof(SequenceHeader) + batch_.size() + sizeof(EntryHeader) + op.size() > kMaxBody) {
    flush_sequencer();
  }
  put(batch_, EntryHeader{origin, static_cast<std::uint32_t>(op.size()), number});
  batch_.insert(batch_.end(), op.begin(), op.end());
  ++batch_count_;
  host_.schedule(*this);
}

void Replica::flush_sequencer() {
  Header header;
  header.origin = self_;
  if (batch_count_ > 0) {
    // Step "sequence": the batch gets the next numbers; replicas stash and acknowledge.
    const std::uint64_t first = next_seq_;
    const std::uint64_t last = first + batch_count_ - 1;
    next_seq_ = last + 1;
    std::vector<std::byte> body;
    body.reserve(sizeof(SequenceHeader) + batch_.size());
    put(body, SequenceHeader{first, static_cast<std::uint32_t>(batch_count_), 0});
    body.insert(body.end(), batch_.begin(), batch_.end());
    batch_.clear();
    batch_count_ = 0;
    header.b = committed_;
    commit_sent_ = committed_;
    committing_wave_ = waves_started_ + 1;
    start_wave(WaveKind::sequence, header, std::move(body), {}, first, last);
    committing_wave_ = 0;
  } else if (committed_ > commit_sent_) {
    // Step "commit": nothing new to number, so the committed prefix travels alone.
    header.b = committed_;
    commit_sent_ = committed_;
    committing_wave_ = waves_started_ + 1;
    start_wave(WaveKind::commit_up_to, header, {}, {}, 0, 0);
    committing_wave_ = 0;
  }
}

Vote Replica::stash(std::span<const std::byte> body) {
  std::size_t at = 0;
  auto head = get<SequenceHeader>(body, at);
  if (!head) return Vote{error(Errc::parse_error, "sequence wave without its header")};
  for (std::uint32_t i = 0; i < head->count; ++i) {
    auto entry = get<EntryHeader>(body, at);
    if (!entry || body.size() - at < entry->size) {
      return Vote{error(Errc::parse_error,
                        "sequence wave entry " + std::to_string(i) + " runs past the message")};
    }
    const std::uint64_t seq = head->first + i;
    if (seq > applied_seq_) {
      auto op = body.subspan(at, entry->size);
      stash_[seq] = Entry{OpId{entry->origin, entry->number}, {op.begin(), op.end()}};
      stashed_seq_ = std::max(stashed_seq_, seq);
    }
    at += entry->size;
  }
  return Vote{};
}

void Replica::commit_through(std::uint64_t seq) {
  commit_seen_ = std::max(commit_seen_, seq);
  std::vector<std::uint64_t> everywhere;
  while (applied_seq_ < commit_seen_) {
    auto it = stash_.find(applied_seq_ + 1);
    if (it == stash_.end()) break;  // Cannot happen: commits follow complete sequence waves.
    Entry entry = std::move(it->second);
    stash_.erase(it);
    ++applied_seq_;
    if (!machine_) continue;
    detail::ProposalStateBase* sink = nullptr;
    const bool mine = entry.id.origin == self_;
    if (mine) {
      if (auto p = pending_.find(entry.id.number); p != pending_.end())
        sink = p->second.state.get();
    }
    // Checked here, at the same place in the order on every replica, so every replica reaches
    // the same verdict.
    auto applied = machine_->apply(entry.op, true, sink);
    if (applied) record_apply(entry.id);
    if (mine && applied && sink != nullptr && sink->everywhere()) {
      everywhere.push_back(entry.id.number);
    } else if (mine) {
      finish(entry.id.number, applied ? Vote{} : Vote{std::move(applied).error()});
    }
  }
  if (!everywhere.empty()) confirm_applied(everywhere);
  answer_syncs();
  wake_reads();
  on_idle_maybe();
}

void Replica::confirm_applied(const std::vector<std::uint64_t>& numbers) {
  // On the sequencer, applying while its own commit-carrying wave starts: every replica applies
  // that commit before it answers the wave, so the wave's completion is the confirmation.
  // Otherwise step "confirm" comes after the turn (start_confirms): this may run while a view
  // change's record is being installed, whose epoch the wave must not travel in.
  for (std::uint64_t number : numbers) {
    auto it = pending_.find(number);
    if (it == pending_.end()) continue;
    it->second.phase = Phase::confirming;
    it->second.confirm = committing_wave_;
  }
  if (committing_wave_ == 0) {
    confirm_due_ = true;
    host_.schedule(*this);
  }
}

void Replica::confirmed_by(std::uint64_t wave) {
  std::vector<std::uint64_t> done;
  for (const auto& [number, pending] : pending_) {
    if (pending.phase == Phase::confirming && pending.confirm == wave) done.push_back(number);
  }
  for (std::uint64_t number : done)
    finish(number, {});
}

void Replica::start_confirms() {
  confirm_due_ = false;
  // Step "confirm": one wave, which every replica answers once it has applied as far as this
  // one has; its completion completes the proposals (confirmed_by). Their deadlines
  // stay: a member slow to apply makes them time out, not wait without end.
  const std::uint64_t wave = waves_started_ + 1;
  bool any = false;
  for (auto& [number, pending] : pending_) {
    if (pending.phase == Phase::confirming && pending.confirm == 0) {
      pending.confirm = wave;
      any = true;
    }
  }
  if (!any) return;
  Header header;
  header.origin = self_;
  std::vector<std::byte> body;
  put(body, applied_seq_);
  (void)start_wave(WaveKind::confirm, header, std::move(body), {}, wave, 0);
}

std::optional<Vote> Replica::sync(const WaveKey& key, std::span<const std::byte> body) {
  std::size_t at = 0;
  auto seq = get<std::uint64_t>(body, at);
  // Without a number: a view change's confirm, which reaching this replica answers.
  if (!seq || !machine_ || *seq <= applied_seq_) return Vote{};
  syncs_.emplace(*seq, key);
  return std::nullopt;
}

void Replica::answer_syncs() {
  while (!syncs_.empty() && syncs_.begin()->first <= applied_seq_) {
    const WaveKey key = syncs_.begin()->second;
    syncs_.erase(syncs_.begin());
    answer(key, Vote{});
  }
}

void Replica::sequence_done(std::uint64_t first, std::uint64_t last) {
  sequenced_[first] = last;
  for (auto it = sequenced_.find(committed_ + 1); it != sequenced_.end();
       it = sequenced_.find(committed_ + 1)) {
    committed_ = it->second;
    sequenced_.erase(it);
  }
  if (committed_ > commit_sent_) host_.schedule(*this);
}

}  // namespace mk::replica
