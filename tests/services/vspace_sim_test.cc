// VSpace in the simulator: 3 to 5 member kernels of a capability service share one VSpace
// (in a third of the seeds it spans a subset, and a client spans one more kernel during the
// run). Each kernel's client owns a few Frames and runs a random mix over one small address
// window, so that requests from different kernels overlap: map (now and then with rights its
// capability lacks, or unaligned, or out of range, or past its Frame), unmap (often cutting
// mappings in two), protect, and revoke or remove of Frame capabilities it mapped, under stalls
// and delays; in three seeds of four one kernel crashes (between turns or half-way through
// one) or stalls while an unmap is under way, and a survivor then reclaims a crashed kernel's
// CSpace. Each seed checks:
//  1. completion everywhere: at the instant a map, unmap, protect, span, remove, revoke or
//     reclaim returns ok, every live member's replica has applied it (its revision() is at
//     least the revision the update made, and its history holds the update at the same
//     place); after a remove, revoke or reclaim, no live replica maps anything with a
//     capability it removed;
//  2. agreement: whenever the system is quiet, the live replicas' tables are equal (mappings()
//     and spanned() of the VSpace included), verify() holds on each, and every mapping lies
//     within one a map returned ok for (or of unknown outcome): a failed map changed nothing;
//  3. every operation returns within a virtual deadline derived from the agreement's timeout
//     (plus a stall injected into its own kernel), with one of its documented errors, and no
//     task is left waiting;
//  4. two kernels mapping overlapping ranges at once: exactly one wins, the other gets
//     already_exists, and every replica shows the winner's mapping.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mk/capability_memory.h"
#include "mk/capability_service.h"
#include "mk/replicated.h"
#include "mk/seed_harness.h"
#include "mk/simulation.h"
#include "mk/skb.h"
#include "mk/vspace.h"
#include "replica/replica.h"
#include "replica_sim/sim_machines.h"
#include "service_sim.h"
#include "services/cap_table.h"
#include "test_scale.h"

namespace vspace_sim_test {

using namespace std::chrono_literals;
using mk::CapRights;
using mk::CapSlot;
using mk::CapType;
using mk::Errc;
using mk::Kernel;
using mk::KernelId;
using mk::Mapping;
using mk::Task;
using mk::services::CapTable;

constexpr mk::Duration kTimeout = mk::test::kServiceSimTimeout;
constexpr mk::Duration kDeadline = mk::test::kServiceSimDeadline;
constexpr std::uint32_t kSlots = 32;
constexpr std::size_t kPoolPages = 48;
/// The addresses the service reserves for mappings.
constexpr std::size_t kAddressPages = 32;
/// The window every client maps in: its first page in the address range, and its length.
constexpr std::size_t kWindowFirst = 4;
constexpr std::size_t kWindowPages = 12;
constexpr std::size_t kMaxKernels = 5;
constexpr std::size_t kRounds = 3;
constexpr std::size_t kOpsPerRound = 12;
constexpr mk::Duration kStep = mk::test::kServiceSimStep;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

std::size_t page() {
  return mk::NodeMemory::page_size();
}

using Fault = mk::test::SeedFault;
using mk::test::fault_name;

/// A Frame capability a client holds.
struct Cap {
  CapSlot slot = 0;
  std::size_t pages = 0;
  CapRights rights = CapRights::none;
  std::size_t parent = kNone;  ///< The client's original it was copied from; kNone: original.
  bool alive = true;           ///< False once removed, or once an update that may remove it
                               ///< had an unknown outcome.
  std::size_t maps = 0;        ///< Maps with it that returned ok.
};

/// A map that returned ok, or whose outcome is unknown: every mapping a replica has lies
/// within one of these.
struct MapRecord {
  KernelId kernel = 0;
  CapSlot slot = 0;
  std::uintptr_t address = 0;
  std::size_t size = 0;
};

/// What one member kernel's client knows.
struct Client {
  std::vector<Cap> caps;
  /// An update of its ended with timed_out, or its kernel crashed during one: what it changed
  /// is unknown (a capability it believes alive may be gone).
  bool uncertain = false;
  bool busy = false;  ///< An operation of its is under way.
  /// The map under way, if one is: should its kernel crash, its outcome is unknown.
  std::optional<MapRecord> mapping;
  bool done = false;  ///< Its client finished the current round.
};

/// Counts over all seeds, so that the test can show it exercised what it checks.
struct Stats {
  std::size_t unmaps_checked = 0;  ///< Unmaps that returned ok, every live replica read then.
  std::size_t splits = 0;          ///< Of those, unmaps cutting a mapping when they began.
  std::size_t maps_checked = 0;    ///< Maps that returned ok, checked likewise.
  std::size_t protects_checked = 0;
  std::size_t removals_checked = 0;  ///< Removes and revokes of a Frame that had been mapped.
  std::size_t reclaims_checked = 0;
  std::size_t spans_checked = 0;
  std::size_t overlaps_refused = 0;  ///< already_exists in the random mix.
  std::size_t races = 0;             ///< Overlapping maps at once: one won, one refused.
  std::size_t bad_requests_refused = 0;
  std::size_t rights_refused = 0;  ///< Maps asking rights their Frame lacks.
  std::size_t quiet_checks = 0;    ///< Times every live replica was compared, at rest.
  std::size_t faults_mid_unmap = 0;
  std::size_t crashes_mid_unmap = 0;
  std::size_t stalls_mid_unmap = 0;
  std::size_t timeouts = 0;
};

/// Everything the seed's tasks and its checks share. The tasks hold it too: they may outlive a
/// scenario that failed.
struct World {
  std::uint64_t seed = 0;
  mk::Simulation* sim = nullptr;
  std::vector<KernelId> members;
  std::vector<KernelId> spanned;  ///< The kernels the VSpace spanned when made.
  KernelId victim = 0;
  Fault fault = Fault::none;
  mk::Duration stall_length{0};
  bool fault_injected = false;
  bool crash_seen = false;
  bool reclaimed = false;
  mk::CapabilityService caps;
  std::optional<mk::VSpace> vspace;
  /// The table's object, whose `installed` entries are every kernel's replica.
  mk::detail::ObjectRef table_object;
  std::uintptr_t base = 0;  ///< The first address of the service's range.
  std::map<KernelId, Client> clients;
  std::vector<MapRecord> maps;
  /// The kernel a client spans during the run (subset seeds), and who asks.
  std::optional<KernelId> span_target;
  KernelId span_asker = 0;
  bool span_asked = false;
  std::optional<bool> span_ok;  ///< Empty while unknown (not asked, or timed out).
  std::size_t unmaps_in_flight = 0;
  KernelId last_unmapper = 0;
  std::optional<std::string> violation;
  Stats* stats = nullptr;

  explicit World(mk::CapabilityService service) : caps(std::move(service)) {}

  void fail(std::string what) {
    if (!violation) violation = std::move(what);
  }
  bool crash_seed() const { return fault == Fault::crash || fault == Fault::crash_mid_turn; }
  /// The deadline of an operation on `kernel`.
  mk::Duration deadline(KernelId kernel) const {
    return kDeadline + (fault == Fault::stall && kernel == victim ? stall_length : 0ns);
  }
  /// The address of page `n` of the window.
  std::uintptr_t window(std::size_t n) const { return base + (kWindowFirst + n) * page(); }
};

std::string kname(KernelId kernel) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, wrongly) on "k" + to_string(...) + ...
  std::string text = "k";
  text += std::to_string(kernel);
  return text;
}

std::string range(const World& w, std::uintptr_t address, std::size_t size) {
  // Pages of the window, and the byte offset when not page-aligned.
  const auto from = static_cast<std::int64_t>(address - w.window(0));
  const auto p = static_cast<std::int64_t>(page());
  std::string text = "window pages [";
  text += std::to_string(from / p);
  if (from % p != 0) text += "+" + std::to_string(from % p);
  text += ", ";
  text += std::to_string((from + static_cast<std::int64_t>(size)) / p);
  if ((from + static_cast<std::int64_t>(size)) % p != 0) {
    text += "+" + std::to_string((from + static_cast<std::int64_t>(size)) % p);
  }
  text += ")";
  return text;
}

std::string describe(const World& w, const Mapping& m) {
  return range(w, m.address, m.size) + " of " + kname(m.cap_kernel) + ":" +
         std::to_string(m.cap_slot) + " rights " + mk::services::rights_text(m.rights) +
         " offset " + std::to_string(m.frame_offset);
}

// --- reading every replica at once ---

/// Kernel `kernel`'s replica. Replicated::local serves only the kernel the caller runs on; in
/// the simulator every kernel runs on this one thread, so the test reads any replica through
/// the object's table of installed replicas, at the very instant an operation returns, which
/// no read by message could.
const mk::replica::Replica* replica_on(const World& w, KernelId kernel) {
  if (kernel >= w.table_object->installed_size) return nullptr;
  const mk::replica::Replica* replica = w.table_object->installed[kernel].load();
  if (replica == nullptr || &replica->object() != w.table_object.get()) return nullptr;
  return replica;
}

/// Kernel `kernel`'s table, or nullptr when it holds no replica (not a member).
const CapTable* table_on(const World& w, KernelId kernel) {
  const mk::replica::Replica* replica = replica_on(w, kernel);
  if (replica == nullptr || replica->machine() == nullptr) return nullptr;
  return static_cast<const CapTable*>(replica->machine()->state());
}

Task<mk::Result<mk::detail::ObjectRef>> find_table(Kernel&, std::vector<std::byte> handle) {
  // A CapabilityService travels as its number, its memory's number, then the Replicated handle
  // of its table (capability_service.cc); decoded on a kernel, that names the object there.
  constexpr std::size_t kPrefix = 2 * sizeof(std::uint64_t);
  if (handle.size() < kPrefix) co_return mk::error(Errc::parse_error, "short service handle");
  co_return mk::detail::decode_handle(std::span(handle).subspan(kPrefix),
                                      mk::detail::kMachineTypeId<CapTable>);
}

/// Property 1, on kernel k at the instant its update `what` returned ok: the update is k's
/// newest in k's replica's history (k's client proposes one at a time, and nothing else
/// proposes on k); every live member's replica has applied it at the same place, and has no
/// mapping `removed` says the update removed.
void check_everywhere(Kernel& k, World& w, const std::string& what,
                      const std::function<bool(const Mapping&)>& removed = {}) {
  const std::string who = what + " on " + kname(k.id());
  const mk::replica::Replica* mine = replica_on(w, k.id());
  const CapTable* own = table_on(w, k.id());
  if (mine == nullptr || own == nullptr) {
    w.fail(who + " returned ok, but " + kname(k.id()) + " holds no replica of the table");
    return;
  }
  const std::vector<mk::OpId>& history = mine->history();
  // k's newest proposal has the highest number of k's: an older one whose outcome was unknown
  // may have been applied after it.
  std::size_t position = kNone;
  for (std::size_t i = 0; i < history.size(); ++i) {
    if (history[i].origin == k.id() &&
        (position == kNone || history[i].number > history[position].number)) {
      position = i;
    }
  }
  if (position == kNone) {
    w.fail(who + " returned ok, but its replica applied no update of " + kname(k.id()));
    return;
  }
  const mk::OpId id = history[position];
  // The history holds every update applied, refused ones too; revision() counts those that
  // changed the table. Each update k applied after this one raised k's revision by at most
  // one, so the update left the table at revision `revision` or more (exactly that when k has
  // applied nothing since).
  const std::uint64_t later = history.size() - 1 - position;
  const std::uint64_t revision = own->revision() > later ? own->revision() - later : 0;
  const auto maps_of = [&w](const CapTable& table) {
    auto maps = table.mappings(w.vspace->id());
    return maps ? *maps : std::vector<Mapping>{};
  };
  const std::vector<Mapping> own_maps = maps_of(*own);
  for (KernelId kernel : w.members) {
    if (w.sim->crashed(kernel)) continue;
    const mk::replica::Replica* replica = replica_on(w, kernel);
    const CapTable* table = table_on(w, kernel);
    if (table == nullptr) {
      w.fail(who + " returned ok while live " + kname(kernel) + " holds no replica");
      return;
    }
    const auto& theirs = replica->history();
    if (table->revision() < revision || theirs.size() <= position) {
      w.fail(who + " returned ok (its update, number " + std::to_string(position + 1) +
             " in the order, left " + kname(k.id()) + "'s table at revision " +
             std::to_string(revision) + " or more), but live " + kname(kernel) +
             "'s replica has applied " + std::to_string(theirs.size()) +
             " updates and is at revision " + std::to_string(table->revision()) +
             ": it has not applied it");
      return;
    }
    if (theirs[position] != id) {
      w.fail(who + ": " + kname(kernel) + "'s replica applied another update as number " +
             std::to_string(position + 1) + " in the order");
      return;
    }
    // Replicas that applied the same updates hold the same table (property 2, while running).
    if (theirs.size() == history.size() &&
        (table->revision() != own->revision() || maps_of(*table) != own_maps)) {
      w.fail(who + ": " + kname(kernel) + "'s and " + kname(k.id()) + "'s replicas applied " +
             std::to_string(history.size()) + " updates each, yet differ (revisions " +
             std::to_string(table->revision()) + " and " + std::to_string(own->revision()) + ")");
      return;
    }
    if (!removed) continue;
    auto maps = table->mappings(w.vspace->id());
    if (!maps) {
      w.fail(kname(kernel) + "'s replica has no VSpace: " + maps.error().describe());
      return;
    }
    for (const Mapping& m : *maps) {
      if (removed(m)) {
        w.fail(who + " returned ok, but " + kname(kernel) + "'s replica still maps " +
               describe(w, m) + ", a capability it removed");
        return;
      }
    }
  }
}

// --- checking what an operation returned ---

/// Checks that an operation started at `start` on `k` returned within its deadline (property 3).
void returned_in_time(World& w, Kernel& k, mk::Instant start, const std::string& what) {
  const auto took = k.now() - start;
  if (took > w.deadline(k.id())) {
    w.fail(what + " on " + kname(k.id()) + " took " + std::to_string(took.count()) +
           " ns of virtual time, over the " + std::to_string(w.deadline(k.id()).count()) +
           " ns deadline");
  }
}

/// True when `e` is one of `allowed`, or timed_out in a seed whose fault may cause it (then
/// what k's client knows of its capabilities is no longer certain). Records a violation
/// otherwise.
bool expected(World& w, Kernel& k, const mk::Error& e, std::initializer_list<Errc> allowed,
              const std::string& what) {
  if (std::find(allowed.begin(), allowed.end(), e.code) != allowed.end()) return true;
  if (e.code == Errc::timed_out && w.fault != Fault::none) {
    ++w.stats->timeouts;
    w.clients[k.id()].uncertain = true;
    return true;
  }
  w.fail(what + " on " + kname(k.id()) + " failed unexpectedly: " + e.describe());
  return false;
}

/// A random live capability of k's client, preferring those `prefer` says; kNone if none.
std::size_t pick(World& w, KernelId k, std::mt19937_64& rng,
                 const std::function<bool(const Cap&)>& only,
                 const std::function<bool(const Cap&)>& prefer = {}) {
  std::vector<std::size_t> found, preferred;
  const auto& caps = w.clients[k].caps;
  for (std::size_t i = 0; i < caps.size(); ++i) {
    if (!caps[i].alive || !only(caps[i])) continue;
    found.push_back(i);
    if (prefer && prefer(caps[i])) preferred.push_back(i);
  }
  if (!preferred.empty() && rng() % 4 != 0) return preferred[rng() % preferred.size()];
  if (found.empty()) return kNone;
  return found[rng() % found.size()];
}

// --- the operations of the random workload ---

/// How a map is meant to go.
enum class Ask { good, lacking_rights, unaligned, odd_size, out_of_range, bad_rights, too_big };

Task<void> do_map(Kernel& k, World& w, std::mt19937_64& rng) {
  Client& client = w.clients[k.id()];
  const auto dice = rng() % 16;
  Ask ask = Ask::good;
  std::size_t index = kNone;
  if (dice == 0) {
    // A read-only Frame asked for write.
    index = pick(w, k.id(), rng,
                 [](const Cap& c) { return !mk::has_rights(c.rights, CapRights::write); });
    if (index != kNone) ask = Ask::lacking_rights;
  } else if (dice == 1) {
    ask = static_cast<Ask>(2 + rng() % 5);
  }
  if (index == kNone) index = pick(w, k.id(), rng, [](const Cap&) { return true; });
  if (index == kNone) co_return;
  const Cap cap = client.caps[index];
  const std::size_t pages = 1 + rng() % cap.pages;
  std::uintptr_t address = w.window(rng() % (kWindowPages - pages + 1));
  std::size_t size = pages * page();
  const CapRights usable = cap.rights & (CapRights::read | CapRights::write);
  CapRights rights = rng() % 2 == 0 ? usable : CapRights::read;
  switch (ask) {
    case Ask::good:
      break;
    case Ask::lacking_rights:
      rights = CapRights::read | CapRights::write;
      break;
    case Ask::unaligned:
      address += page() / 2;
      break;
    case Ask::odd_size:
      size -= 100;
      break;
    case Ask::out_of_range:
      address = rng() % 2 == 0 ? w.base + (kAddressPages - 1) * page() : w.base - page();
      size = 2 * page();
      break;
    case Ask::bad_rights:
      rights = rng() % 2 == 0 ? CapRights::none : CapRights::read | CapRights::grant;
      break;
    case Ask::too_big:
      size = (cap.pages + 1) * page();
      address = w.window(0);
      break;
  }
  const std::string what = "map of " + kname(k.id()) + ":" + std::to_string(cap.slot) + " at " +
                           range(w, address, size) + " rights " + mk::services::rights_text(rights);
  if (ask == Ask::good) client.mapping = MapRecord{k.id(), cap.slot, address, size};
  const auto start = k.now();
  auto mapped = co_await w.vspace->map(k, cap.slot, address, size, rights);
  client.mapping.reset();
  returned_in_time(w, k, start, what);
  const bool maybe_gone = client.uncertain;
  if (mapped) {
    if (ask != Ask::good) {
      w.fail(what + " succeeded: it should have been refused");
      co_return;
    }
    ++client.caps[index].maps;
    w.maps.push_back(MapRecord{k.id(), cap.slot, address, size});
    check_everywhere(k, w, what);
    ++w.stats->maps_checked;
    co_return;
  }
  const Errc code = mapped.error().code;
  if (code == Errc::timed_out && ask == Ask::good) {
    w.maps.push_back(MapRecord{k.id(), cap.slot, address, size});
  }
  if (code == Errc::not_found && maybe_gone) co_return;
  switch (ask) {
    case Ask::good:
      if (expected(w, k, mapped.error(), {Errc::already_exists}, what) &&
          code == Errc::already_exists) {
        ++w.stats->overlaps_refused;
      }
      break;
    case Ask::lacking_rights:
      if (expected(w, k, mapped.error(), {Errc::permission_denied}, what) &&
          code == Errc::permission_denied) {
        ++w.stats->rights_refused;
      }
      break;
    default:
      if (expected(w, k, mapped.error(), {Errc::invalid_argument}, what) &&
          code == Errc::invalid_argument) {
        ++w.stats->bad_requests_refused;
      }
      break;
  }
}

Task<void> do_unmap(Kernel& k, World& w, std::mt19937_64& rng) {
  const std::size_t pages = 1 + rng() % 4;
  std::uintptr_t address = w.window(rng() % (kWindowPages - pages + 1));
  const bool bad = rng() % 12 == 0;
  if (bad) address += 64;
  const std::size_t size = pages * page();
  const std::string what = "unmap of " + range(w, address, size);
  // Whether the unmap cuts a mapping, as k's replica has them when it begins.
  bool cuts = false;
  if (const CapTable* own = table_on(w, k.id())) {
    if (auto maps = own->mappings(w.vspace->id())) {
      for (const Mapping& m : *maps) {
        for (std::uintptr_t edge : {address, address + size}) {
          cuts = cuts || (m.address < edge && edge < m.address + m.size);
        }
      }
    }
  }
  ++w.unmaps_in_flight;
  w.last_unmapper = k.id();
  const auto start = k.now();
  auto unmapped = co_await w.vspace->unmap(k, address, size);
  --w.unmaps_in_flight;
  returned_in_time(w, k, start, what);
  if (!unmapped) {
    if (bad) {
      if (expected(w, k, unmapped.error(), {Errc::invalid_argument}, what) &&
          unmapped.error().code == Errc::invalid_argument) {
        ++w.stats->bad_requests_refused;
      }
    } else {
      expected(w, k, unmapped.error(), {Errc::not_found}, what);
    }
    co_return;
  }
  if (bad) {
    w.fail(what + " succeeded: it is not page-aligned");
    co_return;
  }
  if (*unmapped == 0 || *unmapped > size || *unmapped % page() != 0) {
    w.fail(what + " returned " + std::to_string(*unmapped) + " bytes unmapped");
    co_return;
  }
  check_everywhere(k, w, what);
  ++w.stats->unmaps_checked;
  if (cuts) ++w.stats->splits;
}

Task<void> do_protect(Kernel& k, World& w, std::mt19937_64& rng) {
  const std::size_t pages = 1 + rng() % 3;
  const std::uintptr_t address = w.window(rng() % (kWindowPages - pages + 1));
  const std::size_t size = pages * page();
  const bool bad = rng() % 12 == 0;
  const CapRights choices[] = {CapRights::read, CapRights::write,
                               CapRights::read | CapRights::write};
  const CapRights rights = bad ? CapRights::none : choices[rng() % 3];
  const std::string what =
      "protect of " + range(w, address, size) + " to " + mk::services::rights_text(rights);
  const auto start = k.now();
  auto done = co_await w.vspace->protect(k, address, size, rights);
  returned_in_time(w, k, start, what);
  if (!done) {
    if (bad) {
      if (expected(w, k, done.error(), {Errc::invalid_argument}, what) &&
          done.error().code == Errc::invalid_argument) {
        ++w.stats->bad_requests_refused;
      }
    } else {
      expected(w, k, done.error(), {Errc::not_found, Errc::permission_denied}, what);
    }
    co_return;
  }
  if (bad) {
    w.fail(what + " succeeded");
    co_return;
  }
  check_everywhere(k, w, what);
  ++w.stats->protects_checked;
}

Task<void> do_copy(Kernel& k, World& w, std::mt19937_64& rng) {
  Client& client = w.clients[k.id()];
  const std::size_t index = pick(w, k.id(), rng, [](const Cap& c) { return c.parent == kNone; });
  if (index == kNone) co_return;
  const Cap from = client.caps[index];
  const bool mint = rng() % 2 == 0;
  const std::string what = std::string(mint ? "mint" : "copy") + " of " + kname(k.id()) + ":" +
                           std::to_string(from.slot);
  const auto start = k.now();
  mk::Result<CapSlot> slot = mk::error(Errc::internal, "not run");
  if (mint) {
    slot = co_await w.caps.mint(k, from.slot, CapRights::read);
  } else {
    slot = co_await w.caps.copy(k, from.slot);
  }
  returned_in_time(w, k, start, what);
  if (!slot) {
    if (slot.error().code == Errc::not_found && client.uncertain) co_return;
    expected(w, k, slot.error(), {Errc::full}, what);
    co_return;
  }
  Cap made = from;
  made.slot = *slot;
  made.parent = index;
  made.maps = 0;
  if (mint) made.rights = CapRights::read;
  client.caps.push_back(made);
}

/// Removes a copy (preferring one that was mapped): its mappings go with it.
Task<void> do_remove(Kernel& k, World& w, std::mt19937_64& rng) {
  Client& client = w.clients[k.id()];
  const std::size_t index = pick(
      w, k.id(), rng, [](const Cap& c) { return c.parent != kNone; },
      [](const Cap& c) { return c.maps > 0; });
  if (index == kNone) co_return;
  const Cap cap = client.caps[index];
  const std::string what = "remove of " + kname(k.id()) + ":" + std::to_string(cap.slot);
  const bool certain = !client.uncertain;
  const auto start = k.now();
  auto removed = co_await w.caps.remove(k, cap.slot);
  returned_in_time(w, k, start, what);
  client.caps[index].alive = false;
  if (!removed) {
    if (removed.error().code == Errc::not_found && !certain) co_return;
    expected(w, k, removed.error(), {}, what);
    co_return;
  }
  const KernelId self = k.id();
  check_everywhere(k, w, what, [self, slot = cap.slot](const Mapping& m) {
    return m.cap_kernel == self && m.cap_slot == slot;
  });
  if (cap.maps > 0) ++w.stats->removals_checked;
}

/// Revokes an original (preferring one with a mapped copy): its copies and their mappings go.
Task<void> do_revoke(Kernel& k, World& w, std::mt19937_64& rng) {
  Client& client = w.clients[k.id()];
  const auto copies_of = [&client](std::size_t original) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < client.caps.size(); ++i) {
      if (client.caps[i].alive && client.caps[i].parent == original) out.push_back(i);
    }
    return out;
  };
  std::vector<std::size_t> originals, with_mapped;
  for (std::size_t i = 0; i < client.caps.size(); ++i) {
    if (!client.caps[i].alive || client.caps[i].parent != kNone) continue;
    const auto copies = copies_of(i);
    if (copies.empty()) continue;
    originals.push_back(i);
    if (std::any_of(copies.begin(), copies.end(),
                    [&](std::size_t c) { return client.caps[c].maps > 0; })) {
      with_mapped.push_back(i);
    }
  }
  if (originals.empty()) co_return;
  const std::size_t index = !with_mapped.empty() ? with_mapped[rng() % with_mapped.size()]
                                                 : originals[rng() % originals.size()];
  const CapSlot slot = client.caps[index].slot;
  const auto copies = copies_of(index);
  std::vector<CapSlot> doomed;
  bool mapped = false;
  for (std::size_t c : copies) {
    doomed.push_back(client.caps[c].slot);
    mapped = mapped || client.caps[c].maps > 0;
  }
  const std::string what = "revoke of " + kname(k.id()) + ":" + std::to_string(slot);
  const bool certain = !client.uncertain;
  const auto start = k.now();
  auto removed = co_await w.caps.revoke(k, slot);
  returned_in_time(w, k, start, what);
  if (!removed) {
    if (removed.error().code == Errc::not_found && !certain) {
      client.caps[index].alive = false;
    } else {
      expected(w, k, removed.error(), {}, what);
    }
    for (std::size_t c : copies)
      client.caps[c].alive = false;  // perhaps removed: no longer trusted
    co_return;
  }
  for (std::size_t c : copies)
    client.caps[c].alive = false;
  if (certain && *removed != copies.size()) {
    w.fail(what + " removed " + std::to_string(*removed) + " capabilities; it had " +
           std::to_string(copies.size()) + " copies");
    co_return;
  }
  const KernelId self = k.id();
  check_everywhere(k, w, what, [self, doomed](const Mapping& m) {
    return m.cap_kernel == self &&
           std::find(doomed.begin(), doomed.end(), m.cap_slot) != doomed.end();
  });
  if (mapped) ++w.stats->removals_checked;
}

Task<void> do_span(Kernel& k, World& w) {
  w.span_asked = true;
  const KernelId target = *w.span_target;
  const std::string what = "span of " + kname(target);
  const auto start = k.now();
  auto spanned = co_await w.vspace->span(k, target);
  returned_in_time(w, k, start, what);
  if (!spanned) {
    expected(w, k, spanned.error(), {}, what);
    co_return;
  }
  w.span_ok = true;
  check_everywhere(k, w, what);
  ++w.stats->spans_checked;
}

/// One random operation; the victim unmaps more, so that faults often strike its own unmaps.
Task<void> one_op(Kernel& k, World& w, std::mt19937_64& rng, std::size_t round) {
  if (round == 1 && w.span_target && !w.span_asked && k.id() == w.span_asker) {
    co_await do_span(k, w);
    co_return;
  }
  const bool victim = k.id() == w.victim && w.fault != Fault::none;
  const auto dice = rng() % 100;
  if (dice < (victim ? 25 : 36)) {
    co_await do_map(k, w, rng);
  } else if (dice < 68) {
    co_await do_unmap(k, w, rng);
  } else if (dice < 80) {
    co_await do_protect(k, w, rng);
  } else if (dice < 88) {
    co_await do_copy(k, w, rng);
  } else if (dice < 94) {
    co_await do_remove(k, w, rng);
  } else {
    co_await do_revoke(k, w, rng);
  }
}

Task<void> client(Kernel& k, std::shared_ptr<World> w, std::size_t round) {
  std::mt19937_64 rng(w->seed * 1'000'003 + k.id() * 101 + round);
  for (std::size_t n = 0; n < kOpsPerRound && !w->violation; ++n) {
    w->clients[k.id()].busy = true;
    co_await one_op(k, *w, rng, round);
    w->clients[k.id()].busy = false;
    if (rng() % 3 == 0) co_await k.yield();
  }
  w->clients[k.id()].done = true;
}

// --- the driver and its checks ---

std::vector<KernelId> live(mk::Simulation& sim, const World& w) {
  return mk::test::live_members(sim, w.members);
}

/// True when some map that returned ok (or of unknown outcome) covers `m`.
bool explained(const World& w, const Mapping& m) {
  return std::any_of(w.maps.begin(), w.maps.end(), [&](const MapRecord& r) {
    return r.kernel == m.cap_kernel && r.slot == m.cap_slot && r.address <= m.address &&
           m.address + m.size <= r.address + r.size && m.frame_offset == m.address - r.address;
  });
}

/// Property 2, with the system quiet: every live replica verifies, and all are equal; every
/// mapping comes from a map that returned ok; the VSpace spans what it was asked to.
mk::Result<void> check_quiet(mk::Simulation& sim, World& w, const std::string& when) {
  const CapTable* first = nullptr;
  KernelId first_id = 0;
  std::vector<Mapping> first_maps;
  std::vector<KernelId> first_spanned;
  for (KernelId id : live(sim, w)) {
    const std::string who = when + ": " + kname(id) + "'s replica";
    const CapTable* table = table_on(w, id);
    if (table == nullptr) return mk::error(Errc::internal, who + " is missing");
    if (auto sound = table->verify(); !sound) {
      return mk::error(Errc::internal, who + ": " + sound.error().describe());
    }
    auto maps = table->mappings(w.vspace->id());
    if (!maps) return mk::error(Errc::internal, who + ": " + maps.error().describe());
    auto spanned = table->spanned(w.vspace->id());
    if (!spanned) return mk::error(Errc::internal, who + ": " + spanned.error().describe());
    if (first == nullptr) {
      first = table;
      first_id = id;
      first_maps = *maps;
      first_spanned = *spanned;
      for (const Mapping& m : *maps) {
        if (!explained(w, m)) {
          return mk::error(Errc::internal, who + " maps " + describe(w, m) +
                                               ", which no map that returned ok made");
        }
      }
      std::vector<KernelId> expected_spanned = w.spanned;
      if (w.reclaimed) {
        // A reclaim takes the kernel out of every VSpace: its page table went with it.
        std::erase(expected_spanned, w.victim);
        if (std::binary_search(spanned->begin(), spanned->end(), w.victim)) {
          return mk::error(Errc::internal, who + ": the VSpace still spans " + kname(w.victim) +
                                               ", whose CSpace was reclaimed");
        }
      }
      for (KernelId k : expected_spanned) {
        if (!std::binary_search(spanned->begin(), spanned->end(), k)) {
          return mk::error(Errc::internal, who + ": the VSpace no longer spans " + kname(k));
        }
      }
      const bool extra = spanned->size() > expected_spanned.size();
      if (w.span_ok && !extra) {
        return mk::error(Errc::internal, who + ": the VSpace does not span " +
                                             kname(*w.span_target) + ", though span returned ok");
      }
      if (extra && (!w.span_target || spanned->size() != expected_spanned.size() + 1 ||
                    !std::binary_search(spanned->begin(), spanned->end(), *w.span_target))) {
        return mk::error(Errc::internal, who + ": the VSpace spans a kernel nobody added");
      }
      continue;
    }
    if (*maps != first_maps) {
      std::string text = who + " maps";
      for (const Mapping& m : *maps)
        text += " " + describe(w, m) + ";";
      text += " " + kname(first_id) + "'s maps";
      for (const Mapping& m : first_maps)
        text += " " + describe(w, m) + ";";
      return mk::error(Errc::internal, text);
    }
    if (*spanned != first_spanned) {
      return mk::error(Errc::internal, who + " spans other kernels than " + kname(first_id) + "'s");
    }
    if (table->revision() != first->revision() || !(*table == *first)) {
      return mk::error(Errc::internal, who + " (revision " + std::to_string(table->revision()) +
                                           ") differs from " + kname(first_id) + "'s (revision " +
                                           std::to_string(first->revision()) + ")");
    }
  }
  ++w.stats->quiet_checks;
  return {};
}

/// The victim crashed: an update it had under way may or may not have been applied.
void victim_crashed(World& w) {
  w.crash_seen = true;
  Client& client = w.clients[w.victim];
  if (client.busy) client.uncertain = true;
  if (client.mapping) w.maps.push_back(*client.mapping);
}

/// Spawns a round's clients and drives the simulation until each live one is done, injecting
/// the seed's fault the first time an unmap (the victim's, if it unmaps) is under way.
mk::Result<void> run_round(mk::Simulation& sim, const std::shared_ptr<World>& w, std::size_t round,
                           std::mt19937_64& fate) {
  for (KernelId id : live(sim, *w)) {
    w->clients[id].done = false;
    auto spawned = sim.spawn(id, [w, round](Kernel& k) { return client(k, w, round); });
    if (!spawned) return spawned;
  }
  const mk::Instant give_up = sim.now() + 100ms;
  while (true) {
    bool all_done = true;
    for (KernelId id : w->members)
      all_done = all_done && (w->clients[id].done || sim.crashed(id));
    if (all_done || w->violation) break;
    if (sim.now() > give_up) {
      return mk::error(Errc::timed_out, "round " + std::to_string(round) + " has not finished");
    }
    if (auto ran = sim.run_for(kStep); !ran) return ran;
    if (w->fault_injected && !w->crash_seen && sim.crashed(w->victim)) {
      // An update the victim had under way may or may not have been applied.
      victim_crashed(*w);
    }
    const bool want = w->fault != Fault::none && !w->fault_injected && round > 0 &&
                      w->unmaps_in_flight > 0 &&
                      (w->last_unmapper == w->victim || round + 1 == kRounds || fate() % 4 == 0);
    if (!want) continue;
    w->fault_injected = true;
    ++w->stats->faults_mid_unmap;
    mk::Result<void> injected;
    switch (w->fault) {
      case Fault::crash:
        ++w->stats->crashes_mid_unmap;
        injected = sim.crash(w->victim, sim.now());
        break;
      case Fault::crash_mid_turn:
        ++w->stats->crashes_mid_unmap;
        injected = sim.crash_mid_turn(w->victim, sim.now(), fate() % 3);
        break;
      case Fault::stall:
        ++w->stats->stalls_mid_unmap;
        injected = sim.stall(w->victim, sim.now(), w->stall_length);
        break;
      case Fault::none:
        break;
    }
    if (!injected) return injected;
  }
  if (w->violation) return mk::error(Errc::internal, *w->violation);
  // A mid-turn crash that has not come (the victim never sent enough in one turn) comes now,
  // so that no kernel crashes during the checks.
  if (w->fault_injected && w->crash_seed() && !sim.crashed(w->victim)) {
    if (auto crashed = sim.crash(w->victim, sim.now()); !crashed) return crashed;
    victim_crashed(*w);
  }
  if (auto idle = sim.run_until_idle(100ms); !idle) {
    return mk::error(idle.error().code, "round " + std::to_string(round) +
                                            " left work behind: " + idle.error().describe());
  }
  // Property 3: nothing waits once the kernels are idle.
  for (KernelId id : live(sim, *w)) {
    if (!w->clients[id].done) {
      return mk::error(Errc::internal, kname(id) + "'s client still waits at the end of round " +
                                           std::to_string(round));
    }
  }
  if (w->violation) return mk::error(Errc::internal, *w->violation);
  return {};
}

/// A survivor reclaims the crashed victim's CSpace: the mappings made with its Frames go.
Task<void> reclaim_victim(Kernel& k, std::shared_ptr<World> w) {
  const KernelId gone = w->victim;
  const std::string what = "reclaim of " + kname(gone);
  const auto start = k.now();
  auto removed = co_await w->caps.reclaim(k, gone);
  returned_in_time(*w, k, start, what);
  if (!removed) {
    w->fail(what + " failed: " + removed.error().describe());
    co_return;
  }
  check_everywhere(k, *w, what, [gone](const Mapping& m) { return m.cap_kernel == gone; });
  ++w->stats->reclaims_checked;
}

/// Kernel 0 unmaps the whole window: afterwards no live replica maps anything.
Task<void> unmap_all(Kernel& k, std::shared_ptr<World> w) {
  const std::string what = "unmap of the whole window";
  const auto start = k.now();
  auto unmapped = co_await w->vspace->unmap(k, w->window(0), kWindowPages * page());
  returned_in_time(*w, k, start, what);
  if (!unmapped) {
    if (unmapped.error().code != Errc::not_found) {
      w->fail(what + " failed: " + unmapped.error().describe());
    }
    co_return;
  }
  check_everywhere(k, *w, what, [](const Mapping&) { return true; });
  ++w->stats->unmaps_checked;
}

// --- the setup: Frames, and the race of two maps ---

/// A client's Frames: originals of 1 to 3 pages, and a read-only copy of the first.
Task<mk::Result<std::vector<Cap>>> make_frames(Kernel& k, mk::CapabilityService caps,
                                               std::vector<std::size_t> sizes) {
  std::vector<Cap> out;
  for (std::size_t pages : sizes) {
    auto ram = co_await caps.allocate(k, pages * page(), 0);
    if (!ram) co_return std::move(ram).error();
    auto frames = co_await caps.retype(k, *ram, CapType::frame, 0, pages * page(), 1);
    if (!frames) co_return std::move(frames).error();
    out.push_back(Cap{frames->front(), pages, CapRights::all, kNone, true, 0});
  }
  auto read_only = co_await caps.mint(k, out.front().slot, CapRights::read);
  if (!read_only) co_return std::move(read_only).error();
  out.push_back(Cap{*read_only, out.front().pages, CapRights::read, 0, true, 0});
  co_return out;
}

/// What one side of the race got.
struct RaceSide {
  KernelId kernel = 0;
  CapSlot slot = 0;
  std::size_t cap = 0;
  std::uintptr_t address = 0;
  std::size_t size = 0;
  std::optional<mk::Result<void>> result;
};

Task<void> map_for_race(Kernel& k, std::shared_ptr<World> w, std::shared_ptr<RaceSide> side) {
  const auto start = k.now();
  side->result = co_await w->vspace->map(k, side->slot, side->address, side->size,
                                         CapRights::read | CapRights::write);
  returned_in_time(*w, k, start, "racing map");
  if (*side->result) check_everywhere(k, *w, "racing map");
}

/// Kernels `a` and `b` map overlapping ranges of the empty window at once, each with its own
/// 2- or 3-page Frame: exactly one wins, the other gets already_exists, and every replica
/// shows the winner's mapping (property 4).
mk::Result<void> race(mk::Simulation& sim, const std::shared_ptr<World>& w, KernelId a, KernelId b,
                      std::mt19937_64& fate) {
  const std::size_t first = fate() % (kWindowPages - 4);
  std::vector<std::shared_ptr<RaceSide>> sides;
  for (KernelId kernel : {a, b}) {
    auto side = std::make_shared<RaceSide>();
    side->kernel = kernel;
    side->cap = 1;  // the client's 2-page original
    side->slot = w->clients[kernel].caps[side->cap].slot;
    side->size = 2 * page();
    // b's range starts a page before, at, or a page after a's: they always share a page.
    side->address = w->window(kernel == a ? first + 1 : first + fate() % 3);
    sides.push_back(side);
  }
  for (const auto& side : sides) {
    auto spawned =
        sim.spawn(side->kernel, [w, side](Kernel& k) { return map_for_race(k, w, side); });
    if (!spawned) return spawned;
  }
  if (auto idle = sim.run_until_idle(100ms); !idle) return idle;
  if (w->violation) return mk::error(Errc::internal, *w->violation);
  const RaceSide* winner = nullptr;
  std::size_t lost = 0;
  for (const auto& side : sides) {
    if (!side->result) return mk::error(Errc::internal, "a racing map never returned");
    if (*side->result) {
      winner = side.get();
    } else if (side->result->error().code == Errc::already_exists) {
      ++lost;
    } else {
      return mk::error(Errc::internal, "a racing map on " + kname(side->kernel) + " failed with " +
                                           side->result->error().describe());
    }
  }
  if (winner == nullptr || lost != 1) {
    return mk::error(Errc::internal, "two overlapping maps at once: " + std::to_string(2 - lost) +
                                         " won and " + std::to_string(lost) +
                                         " got already_exists");
  }
  w->maps.push_back(MapRecord{winner->kernel, winner->slot, winner->address, winner->size});
  ++w->clients[winner->kernel].caps[winner->cap].maps;
  const Mapping shown{winner->address, winner->size, CapRights::read | CapRights::write, 0,
                      winner->kernel,  winner->slot};
  for (KernelId id : live(sim, *w)) {
    const CapTable* table = table_on(*w, id);
    auto maps = table == nullptr
                    ? mk::Result<std::vector<Mapping>>(mk::error(Errc::not_found, "no replica"))
                    : table->mappings(w->vspace->id());
    if (!maps || *maps != std::vector<Mapping>{shown}) {
      return mk::error(Errc::internal, "after the race " + kname(winner->kernel) + " won, " +
                                           kname(id) + "'s replica does not show exactly " +
                                           describe(*w, shown));
    }
  }
  ++w->stats->races;
  return {};
}

mk::Result<void> scenario(mk::Simulation& sim, Stats& stats) {
  const std::uint64_t seed = sim.options().seed;
  std::mt19937_64 fate(seed * 7919 + 17);
  std::vector<KernelId> members;
  const std::size_t kernels = 3 + fate() % 3;
  for (KernelId id = 0; id < kernels; ++id)
    members.push_back(id);

  const mk::NodeBytes pool{0, kPoolPages * page()};
  auto memory = mk::CapabilityMemory::create(std::span(&pool, 1), kAddressPages * page());
  if (!memory) return std::move(memory).error();
  mk::CapabilityOptions options;
  options.replica.kernels = members;
  options.replica.timeout = kTimeout;
  options.replica.sequencer = members[fate() % kernels];
  // check_everywhere finds each update's place in the order from the replicas' histories.
  options.replica.record_history = true;
  options.cspace_slots = kSlots;
  auto made = sim.run(0, [memory = *memory, options](Kernel& k) {
    return mk::CapabilityService::create_async(k, memory, options);
  });
  if (!made) return std::move(made).error();
  if (!*made) return std::move(*made).error();
  auto w = std::make_shared<World>(std::move(**made));
  w->seed = seed;
  w->sim = &sim;
  w->members = members;
  w->stats = &stats;
  w->fault = static_cast<Fault>(seed % 4);
  // Never kernel 0, which the checks run on; in half the seeds the sequencer, when it can be.
  w->victim = seed % 8 < 4 && *options.replica.sequencer != 0
                  ? *options.replica.sequencer
                  : static_cast<KernelId>(1 + fate() % (kernels - 1));
  w->stall_length = kTimeout / 4 + std::chrono::nanoseconds(fate() % (kTimeout.count() / 4));
  w->base = reinterpret_cast<std::uintptr_t>(memory->address_range().data());
  for (KernelId id : members)
    w->clients[id];
  const auto context = [&](const mk::Error& e) {
    return mk::error(e.code, std::to_string(kernels) + " kernels, fault " + fault_name(w->fault) +
                                 " of k" + std::to_string(w->victim) + ", sequencer k" +
                                 std::to_string(*options.replica.sequencer) + ": " + e.describe());
  };

  std::vector<std::byte> handle;
  mk::Codec<mk::CapabilityService>::encode(w->caps, handle);
  auto object = sim.run(0, [handle](Kernel& k) { return find_table(k, handle); });
  if (!object) return context(object.error());
  if (!*object) return context(object->error());
  w->table_object = **object;

  // In a third of the seeds the VSpace spans all but one kernel (never the victim), which a
  // client other than the victim spans in round 1.
  w->spanned = members;
  if (seed % 3 == 2) {
    std::vector<KernelId> others;
    for (KernelId id : members) {
      if (id != w->victim) others.push_back(id);
    }
    w->span_target = others[fate() % others.size()];
    w->span_asker = others[fate() % others.size()];
    w->spanned.erase(std::find(w->spanned.begin(), w->spanned.end(), *w->span_target));
  }
  auto vspace = sim.run(0, [caps = w->caps, spanned = w->spanned](Kernel& k) {
    return mk::VSpace::create_async(k, caps, spanned);
  });
  if (!vspace) return context(vspace.error());
  if (!*vspace) return context(vspace->error());
  w->vspace = **vspace;

  for (KernelId id : members) {
    std::vector<std::size_t> sizes{1 + fate() % 3, 2};
    if (fate() % 2 == 0) sizes.push_back(1 + fate() % 3);
    auto frames =
        sim.run(id, [caps = w->caps, sizes](Kernel& k) { return make_frames(k, caps, sizes); });
    if (!frames) return context(frames.error());
    if (!*frames) return context(frames->error());
    w->clients[id].caps = std::move(**frames);
  }

  // The racers are kernel 0 and another that is not the victim.
  const KernelId racer = w->victim == 1 ? 2 : 1;
  const bool zero_first = fate() % 2 == 0;
  if (auto raced = race(sim, w, zero_first ? 0 : racer, zero_first ? racer : 0, fate); !raced) {
    return context(raced.error());
  }
  if (auto quiet = check_quiet(sim, *w, "after the race"); !quiet) return context(quiet.error());

  for (std::size_t round = 0; round < kRounds; ++round) {
    if (auto ran = run_round(sim, w, round, fate); !ran) return context(ran.error());
    const std::string when = "after round " + std::to_string(round);
    if (auto quiet = check_quiet(sim, *w, when); !quiet) return context(quiet.error());
    if (w->crash_seen && !w->reclaimed) {
      w->reclaimed = true;
      auto reclaimed = sim.run(0, [w](Kernel& k) { return reclaim_victim(k, w); });
      if (!reclaimed) return context(reclaimed.error());
      if (w->violation) return context(mk::error(Errc::internal, *w->violation));
      if (auto quiet = check_quiet(sim, *w, when + " and the reclaim"); !quiet) {
        return context(quiet.error());
      }
    }
  }
  auto cleared = sim.run(0, [w](Kernel& k) { return unmap_all(k, w); });
  if (!cleared) return context(cleared.error());
  if (w->violation) return context(mk::error(Errc::internal, *w->violation));
  if (auto idle = sim.run_until_idle(100ms); !idle) return context(idle.error());
  if (auto quiet = check_quiet(sim, *w, "at the end"); !quiet) return context(quiet.error());
  return {};
}

/// The machine every seed runs on, loaded once (hwloc would cost more than a run).
mk::SimulationOptions machine() {
  return mk::test::services_machine(kMaxKernels);
}

TEST(VSpaceSim, UnmapsCompleteEverywhereReplicasAgreeAndNothingHangsOverManySeeds) {
  Stats stats;
  auto report =
      mk::run_seeds({.seeds = mk::test::scaled(1000), .test_name = mk::test::current_test()},
                    machine(), [&](mk::Simulation& sim) { return scenario(sim, stats); });
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_EQ(report.seeds_run, report.seeds_planned);
  ::testing::Test::RecordProperty(
      "exercised",
      "unmaps checked " + std::to_string(stats.unmaps_checked) + " (cutting a mapping " +
          std::to_string(stats.splits) + "), maps checked " + std::to_string(stats.maps_checked) +
          ", protects checked " + std::to_string(stats.protects_checked) +
          ", removals of mapped Frames checked " + std::to_string(stats.removals_checked) +
          ", reclaims checked " + std::to_string(stats.reclaims_checked) + ", spans checked " +
          std::to_string(stats.spans_checked) + ", overlapping maps refused " +
          std::to_string(stats.overlaps_refused) + ", races " + std::to_string(stats.races) +
          ", bad requests refused " + std::to_string(stats.bad_requests_refused) +
          ", maps without the rights refused " + std::to_string(stats.rights_refused) +
          ", quiet checks " + std::to_string(stats.quiet_checks) + ", faults mid-unmap " +
          std::to_string(stats.faults_mid_unmap) + " (crashes " +
          std::to_string(stats.crashes_mid_unmap) + ", stalls " +
          std::to_string(stats.stalls_mid_unmap) + "), timeouts " + std::to_string(stats.timeouts));
  if (!report.ok() || report.seeds_planned < 100) return;
  // What the seeds must have exercised for the properties to mean something.
  EXPECT_EQ(stats.races, report.seeds_run);
  EXPECT_GT(stats.unmaps_checked, 5 * report.seeds_run);
  EXPECT_GT(stats.splits, report.seeds_run);
  EXPECT_GT(stats.maps_checked, 5 * report.seeds_run);
  EXPECT_GT(stats.protects_checked, report.seeds_run / 2);
  EXPECT_GT(stats.removals_checked, report.seeds_run / 4);
  EXPECT_GT(stats.reclaims_checked, report.seeds_run / 4);
  EXPECT_GT(stats.spans_checked, report.seeds_run / 4);
  EXPECT_GT(stats.overlaps_refused, report.seeds_run);
  EXPECT_GT(stats.bad_requests_refused, report.seeds_run / 2);
  EXPECT_GT(stats.rights_refused, report.seeds_run / 10);
  EXPECT_GE(stats.quiet_checks, (kRounds + 2) * report.seeds_run);
  EXPECT_GT(stats.faults_mid_unmap, report.seeds_run / 2);
  EXPECT_GT(stats.crashes_mid_unmap, report.seeds_run / 4);
  EXPECT_GT(stats.stalls_mid_unmap, report.seeds_run / 8);
}

}  // namespace vspace_sim_test
