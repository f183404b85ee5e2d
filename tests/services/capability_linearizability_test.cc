// Concurrent histories of CapabilityService operations are linearizable: clients on several
// kernels allocate, retype, copy, mint, transfer, accept, remove, revoke and identify, mostly
// through copies of one RAM object they all share, on 8 kernels as threads on the host's cores
// and on 5 simulated kernels with stalls and delays. The sequential specification is the
// capability table itself (services::CapTable) applied in the checker's order.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "mk/capability_service.h"
#include "mk/seed_harness.h"
#include "mk/simulation.h"
#include "runtime/runtime_test_util.h"
#include "services/cap_table.h"
#include "support/linearizability.h"
#include "test_scale.h"

namespace capability_linearizability_test {

using namespace std::chrono_literals;
using mk::CapGrant;
using mk::CapInfo;
using mk::CapRights;
using mk::CapSlot;
using mk::CapType;
using mk::Errc;
using mk::Kernel;
using mk::KernelId;
using mk::Task;
using mk::services::CapOp;
using mk::services::CapTable;
namespace lin = mk::test::lin;

constexpr std::uint32_t kSlots = 24;
constexpr std::size_t kPoolPages = 16;
constexpr std::size_t kSharedPages = 8;

std::size_t page() {
  return mk::NodeMemory::page_size();
}

/// The capability table as a sequential object: each operation is the table update (or, for
/// identify, the table read) the service makes of it, applied in the order the checker tries.
/// Outputs are what the caller sees: the error kind, or the slots, the count removed, what
/// identify says. Left out: what depends on the order of updates that commute in every other
/// respect (object ids and transfer numbers, handed out in the order applied; where first-fit
/// put an allocation), which would make the checker try orders of whole stretches of history
/// again for a difference found late. That memory never overlaps is the simulator test's to
/// check (CapTable::verify, and Frames' contents).
struct CapModel {
  enum class Kind : std::uint8_t {
    allocate,
    retype,
    copy,
    mint,
    transfer,
    accept,
    remove,
    revoke,
    identify
  };
  struct Input {
    Kind kind = Kind::identify;
    KernelId kernel = 0;
    CapSlot slot = 0;
    CapType type = CapType::frame;       ///< retype
    std::uint64_t offset = 0;            ///< retype
    std::uint64_t bytes = 0;             ///< allocate; retype: each object's
    std::uint32_t count = 0;             ///< retype
    CapRights rights = CapRights::none;  ///< mint, transfer
    KernelId to = 0;                     ///< transfer
    /// accept: the grant; transfer: the grant it returned (its secret is the sender's choice,
    /// so it is known only afterwards), or none when the outcome is unknown.
    CapGrant grant;
  };
  struct Output {
    std::optional<Errc> error;   ///< The error kind; none on success.
    std::vector<CapSlot> slots;  ///< allocate, retype, copy, mint, accept.
    std::uint64_t removed = 0;   ///< revoke.
    CapInfo info;                ///< identify, with `object` and `offset` 0.
    bool operator==(const Output&) const = default;
  };
  /// The table and what the model adds to it, never changed once made.
  struct Snapshot {
    CapTable table;
    /// The service's number of each transfer applied so far, to the table's number for it in
    /// this order: how an accept names its transfer.
    std::map<std::uint64_t, std::uint64_t> transfers;
    std::size_t hash = 0;  ///< Of the table's bytes and the transfers.
  };
  /// Shared, so that the checker's copies of a state (one per step, one per memo entry) cost
  /// nothing: only an update that succeeds makes a new snapshot.
  struct State {
    std::shared_ptr<const Snapshot> at;
    bool operator==(const State& other) const {
      return at == other.at || (at->hash == other.at->hash && at->table == other.at->table &&
                                at->transfers == other.at->transfers);
    }
  };

  static State seal(Snapshot snapshot) {
    std::vector<std::byte> bytes;
    snapshot.table.encode(bytes);
    for (const auto& [service, table] : snapshot.transfers) {
      mk::Codec<std::uint64_t>::encode(service, bytes);
      mk::Codec<std::uint64_t>::encode(table, bytes);
    }
    snapshot.hash = std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    return State{std::make_shared<const Snapshot>(std::move(snapshot))};
  }

  std::uint64_t pool_bytes = 0;

  /// The service's number only names it in grants, which the service checks before the table.
  State initial() const {
    return seal(Snapshot{CapTable(0, kSlots, {{0, pool_bytes}}, page()), {}, 0});
  }

  /// The update the service proposes for `in` (capability_service.cc builds the same), with
  /// this order's number for an accept's transfer.
  static CapOp update_of(const State& state, const Input& in) {
    CapOp op;
    op.kernel = in.kernel;
    op.slot = in.slot;
    switch (in.kind) {
      case Kind::allocate:
        op.kind = CapOp::Kind::allocate;
        op.node = 0;
        op.bytes = in.bytes;
        break;
      case Kind::retype:
        op.kind = CapOp::Kind::retype;
        op.type = in.type;
        op.offset = in.offset;
        op.bytes = in.bytes;
        op.count = in.count;
        break;
      case Kind::copy:
        op.kind = CapOp::Kind::copy;
        break;
      case Kind::mint:
        op.kind = CapOp::Kind::mint;
        op.rights = in.rights;
        break;
      case Kind::transfer:
        op.kind = CapOp::Kind::transfer;
        op.to = in.to;
        op.rights = in.rights;
        op.secret = in.grant.secret;
        break;
      case Kind::accept:
        op.kind = CapOp::Kind::accept;
        if (auto at = state.at->transfers.find(in.grant.transfer);
            at != state.at->transfers.end()) {
          op.transfer = at->second;
        }
        op.secret = in.grant.secret;
        op.to = in.grant.from;
        break;
      case Kind::remove:
        op.kind = CapOp::Kind::remove;
        break;
      case Kind::revoke:
        op.kind = CapOp::Kind::revoke;
        break;
      case Kind::identify:
        break;
    }
    return op;
  }

  std::pair<State, Output> step(const State& state, const Input& in) const {
    Output out;
    if (in.kind == Kind::identify) {
      auto info = state.at->table.identify(in.kernel, in.slot);
      if (info) {
        out.info = *info;
        out.info.object = 0;
        out.info.offset = 0;
      } else {
        out.error = info.error().code;
      }
      return {state, out};
    }
    Snapshot next{state.at->table, state.at->transfers};
    auto outcome = next.table.apply(update_of(state, in));
    if (!outcome) {
      out.error = outcome.error().code;  // and the table is as it was
      return {state, out};
    }
    out.slots = outcome->slots;
    if (in.kind == Kind::transfer) next.transfers[in.grant.transfer] = outcome->transfer;
    if (in.kind == Kind::revoke) out.removed = outcome->removed;
    return {seal(std::move(next)), out};
  }

  std::size_t hash(const State& state) const { return state.at->hash; }

  std::string describe_input(const Input& in) const {
    static const char* const kNames[] = {"allocate", "retype", "copy",   "mint",    "transfer",
                                         "accept",   "remove", "revoke", "identify"};
    std::string text =
        std::string(kNames[static_cast<int>(in.kind)]) + "(k" + std::to_string(in.kernel) + ", ";
    switch (in.kind) {
      case Kind::allocate:
        return text + std::to_string(in.bytes) + " bytes)";
      case Kind::retype:
        return text + "slot " + std::to_string(in.slot) + ", " +
               std::string(mk::to_string(in.type)) + ", at " + std::to_string(in.offset) + ", " +
               std::to_string(in.count) + " x " + std::to_string(in.bytes) + ")";
      case Kind::mint:
        return text + "slot " + std::to_string(in.slot) + ", rights " +
               std::to_string(static_cast<int>(in.rights)) + ")";
      case Kind::transfer:
        return text + "slot " + std::to_string(in.slot) + " to k" + std::to_string(in.to) +
               ", rights " + std::to_string(static_cast<int>(in.rights)) + ")";
      case Kind::accept:
        return text + "transfer " + std::to_string(in.grant.transfer) + " from k" +
               std::to_string(in.grant.from) + ")";
      default:
        return text + "slot " + std::to_string(in.slot) + ")";
    }
  }
  std::string describe_output(const Output& out) const {
    if (out.error) return std::string(mk::to_string(*out.error));
    std::string text = "ok";
    for (CapSlot slot : out.slots)
      text += " slot " + std::to_string(slot);
    if (out.removed != 0) text += " removed " + std::to_string(out.removed);
    if (out.info.size != 0 || out.info.type == CapType::endpoint) {
      text += " " + std::string(mk::to_string(out.info.type)) + " of " +
              std::to_string(out.info.size) + " bytes, rights " +
              std::to_string(static_cast<int>(out.info.rights));
    }
    return text;
  }
  std::string describe_state(const State& state) const {
    const CapTable& table = state.at->table;
    std::string text = std::to_string(table.occupied().size()) + " capabilities:";
    for (const auto& [kernel, slot] : table.occupied()) {
      auto info = table.identify(kernel, slot);
      text += " k" + std::to_string(kernel) + ":" + std::to_string(slot) + "=" +
              (info ? std::string(mk::to_string(info->type)) + "@" + std::to_string(info->offset)
                    : std::string("?"));
    }
    auto usage = table.usage(0);
    if (usage) text += "; " + std::to_string(usage->free_bytes) + " bytes free";
    return text;
  }
};

using Op = lin::Operation<CapModel::Input, CapModel::Output>;
using Kind = CapModel::Kind;

/// What the clients of one history share: kernels are threads (or simulated), so plain memory.
struct Shared {
  explicit Shared(mk::CapabilityService service) : caps(std::move(service)) {}

  mk::CapabilityService caps;
  std::atomic<std::uint64_t> clock{0};
  std::mutex mutex;
  std::map<KernelId, std::vector<CapGrant>> mailboxes;  ///< Grants waiting, guarded by mutex.
};

/// A client's operations, and the first error no correct run gives (empty if none).
struct ClientLog {
  std::vector<Op> ops;
  std::string unexpected;
};

/// The output of a call that returned `result`; none when its outcome is unknown.
template <class T>
std::optional<CapModel::Output> failure_of(const mk::Result<T>& result, std::string& unexpected) {
  const Errc code = result.error().code;
  if (code == Errc::timed_out) return std::nullopt;
  if (code == Errc::internal || code == Errc::shutting_down || code == Errc::apply_failed) {
    unexpected = result.error().describe();
    return std::nullopt;
  }
  return CapModel::Output{code, {}, 0, {}};
}

/// Runs `in` on kernel k, stamping it; the operation as the history records it.
Task<Op> perform(Kernel& k, Shared& shared, CapModel::Input in, std::uint32_t client,
                 std::string& unexpected) {
  Op op;
  op.client = client;
  op.invoked = shared.clock.fetch_add(1) + 1;
  CapModel::Output out;
  const auto& caps = shared.caps;
  const auto slots_of = [&](const mk::Result<CapSlot>& r) -> std::optional<CapModel::Output> {
    if (!r) return failure_of(r, unexpected);
    out.slots = {*r};
    return out;
  };
  std::optional<CapModel::Output> result;
  switch (in.kind) {
    case Kind::allocate:
      result = slots_of(co_await caps.allocate(k, in.bytes, 0));
      break;
    case Kind::retype: {
      auto made = co_await caps.retype(k, in.slot, in.type, in.offset, in.bytes, in.count);
      if (made) {
        out.slots = *made;
        result = out;
      } else {
        result = failure_of(made, unexpected);
      }
      break;
    }
    case Kind::copy:
      result = slots_of(co_await caps.copy(k, in.slot));
      break;
    case Kind::mint:
      result = slots_of(co_await caps.mint(k, in.slot, in.rights));
      break;
    case Kind::transfer: {
      auto grant = co_await caps.transfer(k, in.slot, in.to, in.rights);
      if (grant) {
        in.grant = *grant;
        result = out;
        std::lock_guard lock(shared.mutex);
        shared.mailboxes[in.to].push_back(*grant);
      } else {
        result = failure_of(grant, unexpected);
      }
      break;
    }
    case Kind::accept: {
      const CapGrant grant = in.grant;
      result = slots_of(co_await caps.accept(k, grant));
      break;
    }
    case Kind::remove: {
      auto removed = co_await caps.remove(k, in.slot);
      if (removed) {
        result = out;
      } else {
        result = failure_of(removed, unexpected);
      }
      break;
    }
    case Kind::revoke: {
      auto removed = co_await caps.revoke(k, in.slot);
      if (removed) {
        out.removed = *removed;
        result = out;
      } else {
        result = failure_of(removed, unexpected);
      }
      break;
    }
    case Kind::identify: {
      auto info = co_await caps.identify(k, in.slot);
      if (info) {
        out.info = *info;
        out.info.object = 0;
        out.info.offset = 0;
        result = out;
      } else {
        result = failure_of(info, unexpected);
      }
      break;
    }
  }
  op.returned = shared.clock.fetch_add(1) + 1;
  op.input = in;
  op.output = result;
  co_return op;
}

/// Client on kernel k: accepts its copy of the shared RAM (`grant`, if any), then `count`
/// random operations, mostly on what it holds, some on slots it emptied.
Task<ClientLog> run_client(Kernel& k, Shared* shared, std::vector<KernelId> peers,
                           std::optional<CapGrant> grant, CapSlot ram, std::size_t count,
                           std::uint64_t seed) {
  ClientLog log;
  std::mt19937_64 rng(seed * 977 + k.id());
  std::vector<CapSlot> held;
  if (grant) {
    CapModel::Input in;
    in.kind = Kind::accept;
    in.kernel = k.id();
    in.grant = *grant;
    Op op = co_await perform(k, *shared, in, k.id(), log.unexpected);
    if (op.output && !op.output->error) ram = op.output->slots.front();
    log.ops.push_back(op);
  }
  held.push_back(ram);
  for (std::size_t n = 0; n < count && log.unexpected.empty(); ++n) {
    CapModel::Input in;
    in.kernel = k.id();
    in.slot = held[rng() % held.size()];
    const auto dice = rng() % 100;
    if (dice < 25) {
      in.kind = Kind::retype;
      in.slot = rng() % 3 == 0 ? held[rng() % held.size()] : ram;
      in.type = rng() % 4 == 0 ? CapType::ram : CapType::frame;
      in.count = 1 + static_cast<std::uint32_t>(rng() % 2);
      in.bytes = page();
      in.offset = (rng() % (kSharedPages - 1)) * page();
    } else if (dice < 33) {
      in.kind = Kind::allocate;
      in.bytes = (1 + rng() % 3) * page();
    } else if (dice < 43) {
      in.kind = Kind::copy;
    } else if (dice < 50) {
      in.kind = Kind::mint;
      in.rights = static_cast<CapRights>(rng() % 8);
    } else if (dice < 58) {
      in.kind = Kind::transfer;
      in.to = peers[rng() % peers.size()];
      in.rights = rng() % 2 == 0 ? CapRights::all : static_cast<CapRights>(rng() % 8);
    } else if (dice < 66) {
      std::lock_guard lock(shared->mutex);
      auto& mailbox = shared->mailboxes[k.id()];
      if (mailbox.empty()) {
        in.kind = Kind::identify;
      } else {
        in.kind = Kind::accept;
        in.grant = mailbox.front();
        mailbox.erase(mailbox.begin());
      }
    } else if (dice < 72) {
      in.kind = Kind::remove;
    } else if (dice < 78) {
      in.kind = Kind::revoke;
      // A revoke of the shared RAM (kernel 0's: every client's copy; another's: what it passed
      // on) empties slots of other kernels at once: what they identify next must show it.
      if (rng() % 2 == 0) in.slot = ram;
    } else {
      in.kind = Kind::identify;
      if (rng() % 2 == 0) in.slot = ram;
    }
    Op op = co_await perform(k, *shared, in, k.id(), log.unexpected);
    if (op.output && !op.output->error) {
      for (CapSlot slot : op.output->slots)
        held.push_back(slot);
    }
    log.ops.push_back(std::move(op));
    // Now and then let other tasks of the kernel in, so that kernels sharing a core
    // interleave in varied ways.
    if (rng() % 4 == 0) co_await k.yield();
  }
  co_return log;
}

/// Kernel 0 allocates the shared RAM and starts passing a copy to every other client; these
/// operations open the history (they run before the clients start).
Task<std::vector<Op>> share_ram(Kernel& k, Shared* shared, std::vector<KernelId> others,
                                std::string* unexpected) {
  std::vector<Op> ops;
  CapModel::Input in;
  in.kind = Kind::allocate;
  in.kernel = k.id();
  in.bytes = kSharedPages * page();
  ops.push_back(co_await perform(k, *shared, in, k.id(), *unexpected));
  if (!ops.back().output || ops.back().output->error) co_return ops;
  const CapSlot ram = ops.back().output->slots.front();
  for (KernelId other : others) {
    CapModel::Input pass;
    pass.kind = Kind::transfer;
    pass.kernel = k.id();
    pass.slot = ram;
    pass.to = other;
    pass.rights = CapRights::all;
    ops.push_back(co_await perform(k, *shared, pass, k.id(), *unexpected));
  }
  co_return ops;
}

/// The grants share_ram made, by receiver, taken out of the mailboxes.
std::map<KernelId, CapGrant> take_shared_grants(Shared& shared) {
  std::map<KernelId, CapGrant> out;
  std::lock_guard lock(shared.mutex);
  for (auto& [kernel, mailbox] : shared.mailboxes) {
    if (!mailbox.empty()) out[kernel] = mailbox.front();
    mailbox.clear();
  }
  return out;
}

mk::CapabilityOptions options_for(std::vector<KernelId> members) {
  mk::CapabilityOptions options;
  options.replica.kernels = std::move(members);
  options.cspace_slots = kSlots;
  return options;
}

/// What a history's operations ended with, for the test to show what it exercised.
struct Tally {
  std::size_t conflicts = 0, revokes = 0, accepts = 0, not_found = 0, unknown = 0;
  std::size_t explored = 0;  ///< States the checker explored.
  std::size_t gave_up = 0;   ///< Histories the checker gave up on.

  void add(const std::vector<Op>& history) {
    for (const Op& op : history) {
      if (!op.output) {
        ++unknown;
        continue;
      }
      const auto& error = op.output->error;
      if (error == Errc::conflict) ++conflicts;
      if (error == Errc::not_found) ++not_found;
      if (!error && op.input.kind == Kind::revoke && op.output->removed > 0) ++revokes;
      if (!error && op.input.kind == Kind::accept) ++accepts;
    }
  }
};

/// The most states the checker explores for one history. A few histories in a thousand have
/// long stretches where every client's operations overlap, and the search through their orders
/// takes seconds: those are counted (the tests bound how many), not failed.
constexpr lin::CheckOptions kLimits{.max_states = 100'000};

/// Checks `history` against the model; with `self_check`, also that the checker refuses it once
/// the first identify that found something claims a size no object has.
mk::Result<void> check(const CapModel& model, const std::vector<Op>& history, bool self_check,
                       Tally& tally) {
  tally.add(history);
  auto verdict = lin::check(model, history, kLimits);
  if (!verdict) return verdict.error();
  tally.explored += verdict->explored;
  if (verdict->outcome == lin::Outcome::gave_up) {
    ++tally.gave_up;
    return {};
  }
  if (!verdict->ok()) return mk::error(Errc::internal, verdict->explanation);
  if (!self_check) return {};
  std::size_t victim = history.size();
  for (std::size_t i = 0; i < history.size(); ++i) {
    if (history[i].input.kind == Kind::identify && history[i].output && !history[i].output->error &&
        (victim == history.size() || history[i].returned < history[victim].returned)) {
      victim = i;
    }
  }
  if (victim == history.size()) return mk::error(Errc::internal, "no identify found anything");
  auto broken = history;
  broken[victim].output->info.size += 1;
  auto caught = lin::check(model, broken, kLimits);
  if (!caught) return caught.error();
  if (caught->outcome != lin::Outcome::not_linearizable) {
    return mk::error(Errc::internal, "the checker accepted an identify of an object never made");
  }
  if (std::find(caught->failed.begin(), caught->failed.end(), victim) == caught->failed.end()) {
    return mk::error(Errc::internal,
                     "the checker blamed others than the broken identify: " + caught->explanation);
  }
  return {};
}

TEST(CapabilityLinearizability, ThreadedHistoriesOnEightKernelsAreLinearizable) {
  constexpr std::size_t kKernels = 8;
  const std::size_t histories = mk::test::scaled(40);
  constexpr std::size_t kPerClient = 24;
  auto system = mk::test::boot(mk::test::config_for(kKernels));
  ASSERT_NE(system, nullptr);
  std::vector<KernelId> members;
  for (KernelId id = 0; id < kKernels; ++id)
    members.push_back(id);
  const mk::NodeBytes pool{0, kPoolPages * page()};
  auto memory = mk::CapabilityMemory::create(std::span(&pool, 1));
  ASSERT_TRUE(memory.ok()) << memory.error().describe();

  Tally tally;
  std::size_t overlapping = 0, operations = 0;
  for (std::size_t h = 0; h < histories; ++h) {
    auto made = mk::CapabilityService::create(*system, *memory, options_for(members));
    ASSERT_TRUE(made.ok()) << made.error().describe();
    Shared shared(*made);
    std::string unexpected;
    std::vector<KernelId> others(members.begin() + 1, members.end());
    auto opened = system->run(0, [&shared, others, &unexpected](Kernel& k) {
      return share_ram(k, &shared, others, &unexpected);
    });
    ASSERT_TRUE(opened.ok()) << opened.error().describe();
    ASSERT_TRUE(unexpected.empty()) << unexpected;
    std::vector<Op> history = *opened;
    ASSERT_EQ(history.size(), kKernels);
    ASSERT_TRUE(history.front().output && !history.front().output->error);
    const CapSlot ram = history.front().output->slots.front();
    auto grants = take_shared_grants(shared);
    ASSERT_EQ(grants.size(), kKernels - 1);

    // One host thread per kernel, so that the clients run at the same time.
    std::vector<std::optional<mk::Result<ClientLog>>> logs(kKernels);
    std::vector<std::thread> clients;
    for (KernelId id = 0; id < kKernels; ++id) {
      std::optional<CapGrant> grant;
      if (grants.contains(id)) grant = grants[id];
      std::vector<KernelId> peers;
      for (KernelId other : members) {
        if (other != id) peers.push_back(other);
      }
      clients.emplace_back([&, id, grant, peers] {
        logs[id] = system->run(id, [&shared, peers, grant, ram, h](Kernel& k) {
          return run_client(k, &shared, peers, grant, ram, kPerClient, h + 1);
        });
      });
    }
    for (auto& client : clients)
      client.join();
    for (KernelId id = 0; id < kKernels; ++id) {
      ASSERT_TRUE(logs[id]->ok()) << "client " << id << ": " << (*logs[id]).error().describe();
      const ClientLog& log = **logs[id];
      ASSERT_TRUE(log.unexpected.empty()) << "client " << id << ": " << log.unexpected;
      history.insert(history.end(), log.ops.begin(), log.ops.end());
    }
    overlapping += lin::overlapping_pairs(history);
    operations += history.size();
    const CapModel model{kPoolPages * page()};
    auto checked = check(model, history, h == 0, tally);
    ASSERT_TRUE(checked.ok()) << "history " << h << ": " << checked.error().describe();
  }
  // The histories must exercise what they claim to: contention and real concurrency.
  EXPECT_EQ(tally.unknown, 0u) << "operations timed out on an unloaded system";
  EXPECT_GT(tally.conflicts, 0u);
  EXPECT_GT(tally.revokes, 0u);
  EXPECT_GT(tally.accepts, histories * (kKernels - 1) / 2);
  EXPECT_GT(tally.not_found, 0u);
  EXPECT_GT(overlapping, operations / 4);
  EXPECT_LE(tally.gave_up, histories / 10) << "histories the checker could not decide";
  ::testing::Test::RecordProperty("explored", std::to_string(tally.explored));
  ::testing::Test::RecordProperty("gave_up", std::to_string(tally.gave_up));
}

/// A client under the simulator, which (its kernels being threads) may write into the test.
struct SimulatedClient {
  std::optional<ClientLog> log;
};

Task<void> run_simulated_client(Kernel& k, std::shared_ptr<Shared> shared,
                                std::vector<KernelId> peers, std::optional<CapGrant> grant,
                                CapSlot ram, std::size_t count, std::uint64_t seed,
                                std::shared_ptr<SimulatedClient> out) {
  out->log = co_await run_client(k, shared.get(), std::move(peers), grant, ram, count, seed);
}

Task<mk::Result<mk::CapabilityService>> create_service(Kernel& k, mk::CapabilityMemory memory,
                                                       mk::CapabilityOptions options) {
  co_return co_await mk::CapabilityService::create_async(k, memory, std::move(options));
}

/// One seed: 5 kernels on a two-socket machine with stalls and delayed links; every client's
/// operations merged and checked. The first problem is the error.
mk::Result<void> simulated_run(mk::Simulation& sim, std::size_t per_client, Tally& tally) {
  constexpr std::size_t kKernels = 5;
  std::vector<KernelId> members;
  for (KernelId id = 0; id < kKernels; ++id)
    members.push_back(id);
  const mk::NodeBytes pool{0, kPoolPages * page()};
  auto memory = mk::CapabilityMemory::create(std::span(&pool, 1));
  if (!memory) return std::move(memory).error();
  auto made = sim.run(0, [memory = *memory, options = options_for(members)](Kernel& k) {
    return create_service(k, memory, options);
  });
  if (!made) return std::move(made).error();
  if (!*made) return std::move(*made).error();
  // The tasks share it: they may outlive a seed that failed.
  auto shared = std::make_shared<Shared>(**made);
  auto unexpected = std::make_shared<std::string>();
  std::vector<KernelId> others(members.begin() + 1, members.end());
  auto opened = sim.run(0, [shared, others, unexpected](Kernel& k) {
    return share_ram(k, shared.get(), others, unexpected.get());
  });
  if (!opened) return std::move(opened).error();
  if (!unexpected->empty()) return mk::error(Errc::internal, *unexpected);
  std::vector<Op> history = *opened;
  if (history.size() != kKernels || !history.front().output || history.front().output->error) {
    return mk::error(Errc::internal, "the shared RAM was not made and passed on");
  }
  const CapSlot ram = history.front().output->slots.front();
  auto grants = take_shared_grants(*shared);
  std::vector<std::shared_ptr<SimulatedClient>> clients;
  for (KernelId id : members) {
    std::optional<CapGrant> grant;
    if (grants.contains(id)) grant = grants[id];
    std::vector<KernelId> peers;
    for (KernelId other : members) {
      if (other != id) peers.push_back(other);
    }
    auto client = std::make_shared<SimulatedClient>();
    clients.push_back(client);
    const std::uint64_t seed = sim.options().seed;
    auto spawned = sim.spawn(id, [=](Kernel& k) {
      return run_simulated_client(k, shared, peers, grant, ram, per_client, seed, client);
    });
    if (!spawned) return spawned;
  }
  if (auto idle = sim.run_until_idle(1s); !idle) return idle;
  for (KernelId id : members) {
    const auto& log = clients[id]->log;
    if (!log) return mk::error(Errc::internal, "client " + std::to_string(id) + " hung");
    if (!log->unexpected.empty()) return mk::error(Errc::internal, log->unexpected);
    history.insert(history.end(), log->ops.begin(), log->ops.end());
  }
  return check(CapModel{kPoolPages * page()}, history, sim.options().seed == 1, tally);
}

// Thread-only: the simulator runs its kernels as threads.
TEST(CapabilityLinearizability, SimulatedHistoriesAreLinearizableOverManySeeds) {
  mk::SimulationOptions base;
  base.topology = "pack:2 numa:1 core:4 pu:1";
  static const mk::Result<mk::Skb> loaded = mk::Skb::from_synthetic(base.topology);
  if (loaded) base.skb = *loaded;
  base.kernels = 5;
  base.costs.jitter = 500ns;  // reorders deliveries between different pairs of kernels
  base.faults.end = 200us;
  // Long stalls and delays: a replica lags behind the others, so that a stale read would show.
  base.faults.stalls = 6;
  base.faults.max_stall = 50us;
  base.faults.delays = 16;
  base.faults.max_delay = 50us;
  mk::SeedOptions seeds;
  seeds.seeds = mk::test::scaled(300);
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  seeds.test_name = std::string(info->test_suite_name()) + "." + info->name();
  Tally tally;
  auto report = mk::run_seeds(seeds, base,
                              [&](mk::Simulation& sim) { return simulated_run(sim, 16, tally); });
  EXPECT_TRUE(report.ok()) << report.describe();
  // MK_SIM_SEEDS or MK_SIM_SEED (the replay command) may change how many run.
  EXPECT_EQ(report.seeds_run, report.seeds_planned);
  if (!report.ok() || report.seeds_planned < 20) return;
  EXPECT_EQ(tally.unknown, 0u) << "operations timed out under short stalls and delays";
  EXPECT_GT(tally.conflicts, 0u);
  EXPECT_GT(tally.revokes, 0u);
  EXPECT_GT(tally.not_found, 0u);
  EXPECT_LE(tally.gave_up, report.seeds_run / 100) << "histories the checker could not decide";
  ::testing::Test::RecordProperty("explored", std::to_string(tally.explored));
  ::testing::Test::RecordProperty("gave_up", std::to_string(tally.gave_up));
}

}  // namespace capability_linearizability_test
