// Load and invariants shared by the simulated failure tests: proposers record every outcome,
// and the survivors' replicas are checked against them and against each other.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "mk/replicated.h"
#include "mk/simulation.h"
#include "sim_machines.h"

namespace mk::test {

/// What the proposers saw; shared with their tasks, which may outlive a failed scenario.
struct Seen {
  std::map<OpId, Result<std::uint64_t>> outcomes;
  std::map<KernelId, std::size_t> ended;  ///< Proposals that ended, by proposer.
  std::optional<Error> unexpected;        ///< The first error the protocol never gives here.
};

/// The errors a proposal may end with when members fail: two_phase aborts (a conflict, a view
/// change, the coordinator's deadline); ordered and one_phase time out at worst. A kernel that
/// left sees its later proposals refused.
inline bool allowed(Protocol protocol, const Error& failure) {
  if (failure.code == Errc::invalid_argument &&
      failure.message.find("not a member") != std::string::npos) {
    return true;
  }
  switch (protocol) {
    case Protocol::two_phase:
      return failure.code == Errc::conflict || failure.code == Errc::closed ||
             failure.code == Errc::timed_out;
    case Protocol::ordered:
    case Protocol::one_phase:
      return failure.code == Errc::timed_out;
  }
  return false;
}

/// Proposes `count` ledger updates from `k`, `window` in flight, numbered from 1, recording
/// each outcome.
inline Task<void> propose_all(Kernel& k, Replicated<Ledger> ledger, std::uint64_t seed,
                              std::uint32_t count, std::size_t window, std::shared_ptr<Seen> seen) {
  std::mt19937_64 random(seed * 131 + k.id());
  const Protocol protocol = ledger.options().protocol;
  struct Flying {
    std::uint32_t number;
    Proposal<std::uint64_t> proposal;
  };
  std::vector<Flying> flying;
  for (std::uint32_t n = 1; n <= count; ++n) {
    Ledger::Op op{k.id(), n, static_cast<std::uint32_t>(random() % 16),
                  static_cast<std::int32_t>(random() % 100) + 1};
    flying.push_back(Flying{n, ledger.propose(k, op)});
    if (flying.size() < window && n < count) continue;
    for (auto& f : flying) {
      auto outcome = co_await f.proposal;
      if (!outcome && !allowed(protocol, outcome.error()) && !seen->unexpected) {
        seen->unexpected = outcome.error();
      }
      seen->outcomes.emplace(OpId{k.id(), f.number}, std::move(outcome));
      ++seen->ended[k.id()];
    }
    flying.clear();
  }
}

inline std::string name(const OpId& id) {
  return std::to_string(id.origin) + "." + std::to_string(id.number);
}

/// The survivors hold the view `members`, equal replicas and (ordered) one order keeping each
/// proposer's; every update reported done is there once, and none whose proposal failed (only
/// timed_out leaves the outcome open, and not for two_phase). A kernel in `joined` joined
/// during the run: its history is a suffix of the others'. Counts in `unreported` the updates
/// applied whose proposer never heard the outcome (it failed first).
inline Result<void> check_survivors(Simulation& sim, const Replicated<Ledger>& ledger,
                                    const std::vector<KernelId>& members, const Seen& seen,
                                    std::uint32_t per_kernel, std::optional<KernelId> joined,
                                    std::size_t* unreported) {
  const Protocol protocol = ledger.options().protocol;
  std::optional<Ledger> reference;
  std::optional<std::vector<OpId>> reference_history;
  std::vector<KernelId> order = members;
  // The reference is a kernel that was a member throughout.
  std::stable_partition(order.begin(), order.end(),
                        [&](KernelId id) { return !joined || id != *joined; });
  for (KernelId id : order) {
    const std::string who = "surviving kernel " + std::to_string(id);
    auto view = sim.run(
        id, [ledger](Kernel& k) -> Task<std::vector<KernelId>> { co_return ledger.members(k); });
    if (!view) return std::move(view).error();
    if (*view != members) {
      std::string text;
      for (KernelId m : *view)
        text += " " + std::to_string(m);
      return error(Errc::internal, who + " has the view" + text + ", not the survivors'");
    }
    auto replica = replica_of(sim, ledger, id);
    if (!replica) return std::move(replica).error();
    auto history = history_of(sim, ledger, id);
    if (!history) return std::move(history).error();
    std::set<OpId> applied;
    std::map<KernelId, std::uint64_t> last_of;
    for (const OpId& op : *history) {
      if (!applied.insert(op).second) {
        return error(Errc::internal, who + " applied " + name(op) + " twice");
      }
      if (op.number == 0 || op.number > per_kernel) {
        return error(Errc::internal, who + " applied " + name(op) + ", never proposed");
      }
      if (protocol == Protocol::ordered && op.number < last_of[op.origin]) {
        return error(Errc::internal, who + " applied " + name(op) + " after " +
                                         std::to_string(last_of[op.origin]) +
                                         ": not in its proposer's order");
      }
      last_of[op.origin] = op.number;
    }
    if (!reference) {
      reference = *replica;
      reference_history = *history;
      for (const auto& [op, outcome] : seen.outcomes) {
        if (outcome && !applied.contains(op)) {
          return error(Errc::internal,
                       who + " lost " + name(op) + ", whose proposer was told it was done");
        }
        if (outcome) continue;
        const bool open =
            outcome.error().code == Errc::timed_out && protocol != Protocol::two_phase;
        if (!open && applied.contains(op)) {
          return error(Errc::internal, who + " applied " + name(op) + ", whose proposal failed: " +
                                           outcome.error().describe());
        }
      }
      if (unreported != nullptr) {
        for (const OpId& op : applied) {
          if (!seen.outcomes.contains(op)) ++*unreported;
        }
      }
      continue;
    }
    bool agrees = replica->balances == reference->balances;
    if (joined && id == *joined) {
      // What it applied after its copy of the state, which already held the rest.
      const std::set<OpId> all(reference_history->begin(), reference_history->end());
      agrees = agrees && history->size() <= reference_history->size() &&
               std::all_of(history->begin(), history->end(),
                           [&](const OpId& op) { return all.contains(op); });
      if (protocol == Protocol::ordered) {
        agrees = agrees && std::equal(history->begin(), history->end(),
                                      reference_history->end() -
                                          static_cast<std::ptrdiff_t>(history->size()));
      }
    } else if (protocol == Protocol::ordered) {
      agrees = agrees && *history == *reference_history && replica->digest == reference->digest;
    } else {
      agrees =
          agrees && std::multiset<OpId>(history->begin(), history->end()) ==
                        std::multiset<OpId>(reference_history->begin(), reference_history->end());
    }
    if (!agrees) {
      return error(Errc::internal, who + " diverged from kernel " + std::to_string(order.front()));
    }
  }
  return {};
}

/// Every account takes a fresh two-phase transaction at once, from `from`: no reservation is
/// left anywhere.
inline Result<void> check_released(Simulation& sim, const Replicated<Ledger>& ledger,
                                   KernelId from) {
  auto fresh = sim.run(from, [ledger](Kernel& k) -> Task<Result<void>> {
    for (std::uint32_t account = 0; account < 16; ++account) {
      auto done = co_await ledger.propose(k, Ledger::Op{k.id(), 100000 + account, account, 1});
      if (!done) {
        co_return error(done.error().code, "account " + std::to_string(account) +
                                               " still reserved: " + done.error().describe());
      }
    }
    co_return Result<void>{};
  });
  if (!fresh) return std::move(fresh).error();
  return *fresh;
}

}  // namespace mk::test
