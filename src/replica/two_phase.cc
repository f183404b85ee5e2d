// Two-phase commit at a participant: prepare checks the operation and reserves its keys (a key
// held by another transaction is a conflict); commit applies and releases; abort releases.
#include "replica/replica.h"

namespace mk::replica {

namespace {

std::string name(const OpId& txn) {
  return std::to_string(txn.origin) + "." + std::to_string(txn.number);
}

}  // namespace

Vote Replica::prepare(const OpId& txn, std::span<const std::byte> op) {
  if (prepared_.contains(txn)) return Vote{};
  if (auto valid = machine_->check(op); !valid) return Vote{std::move(valid).error()};
  std::vector<std::uint64_t> keys;
  if (auto listed = machine_->keys(op, keys); !listed) return Vote{std::move(listed).error()};
  for (std::uint64_t key : keys) {
    auto it = reserved_.find(key);
    if (it != reserved_.end() && it->second != txn) {
      return Vote{error(Errc::conflict, "aborted: conflict with transaction " + name(it->second) +
                                            " on key " + std::to_string(key) + " at kernel " +
                                            std::to_string(self_))};
    }
  }
  for (std::uint64_t key : keys)
    reserved_[key] = txn;
  const std::uint64_t local = ++prepares_;
  unresolved_.insert(local);
  prepared_.emplace(txn,
                    Prepared{std::vector<std::byte>(op.begin(), op.end()), std::move(keys), local});
  return Vote{};
}

Vote Replica::commit(const OpId& txn, detail::ProposalStateBase* sink) {
  auto it = prepared_.find(txn);
  // Every participant prepared before the decision, so an unknown transaction is one this
  // replica already committed (through a repair that overtook the commit wave).
  if (it == prepared_.end()) return Vote{};
  // Not checked again: the check ran at prepare, and the keys it read are still reserved.
  auto applied = machine_->apply(it->second.op, false, sink);
  if (applied) record_apply(txn);
  // Remembered until the proposer says every replica decided: should the proposer fail
  // first, a view change commits it wherever it is still prepared.
  log_commit(txn);
  release(txn);
  if (!applied) return Vote{std::move(applied).error()};
  return Vote{};
}

void Replica::release(const OpId& txn) {
  auto it = prepared_.find(txn);
  if (it == prepared_.end()) return;
  for (std::uint64_t key : it->second.keys) {
    auto held = reserved_.find(key);
    if (held != reserved_.end() && held->second == txn) reserved_.erase(held);
  }
  unresolved_.erase(it->second.local);
  prepared_.erase(it);
  wake_reads();
  on_idle_maybe();
}

}  // namespace mk::replica
