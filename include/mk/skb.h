// The System Knowledge Base: facts about the machine and the queries that use them.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mk/answer_path.h"
#include "mk/channel_cost.h"
#include "mk/channel_kind.h"
#include "mk/core_id.h"
#include "mk/fact.h"
#include "mk/latency.h"
#include "mk/memory_request.h"
#include "mk/placement.h"
#include "mk/result.h"
#include "mk/route.h"
#include "mk/topology.h"
#include "mk/wake.h"

namespace mk {

namespace detail {
struct SkbFacts;
}  // namespace detail

/// How many of each part the usable machine has (parts holding at least one usable core).
struct MachineCounts {
  std::size_t pus = 0;         ///< Usable PUs (mk's cores).
  std::size_t cores = 0;       ///< Physical cores with a usable PU.
  std::size_t numa_nodes = 0;  ///< NUMA nodes local to a usable PU (memory-only ones are not).
  /// Packages with a usable PU; a machine without Package objects is one package.
  std::size_t packages = 0;
};

/// Facts about one machine (discovered by hwloc, measured, or asserted from a file) and the
/// queries the runtime and the protocols ask of them. Immutable after loading, except for
/// measured and asserted facts added through its non-const methods; its const methods are
/// safe to call from any number of threads. Copies are cheap and share the facts. A reference
/// returned by an accessor stays valid until the next non-const call on the same Skb.
class Skb {
 public:
  /// The live machine, restricted to the cores this process may run on.
  static Result<Skb> discover();
  /// A machine described by an hwloc XML export (at most 64 MiB); errors name the file.
  /// hwloc reads the file first in mk-hwloc-probe, a short-lived process of its own, so that
  /// a file that crashes hwloc is an error (docs/skb.md, "Untrusted input").
  static Result<Skb> from_xml_file(const std::string& path);
  /// from_xml_file() for XML already in memory; `name` stands for the file in errors.
  static Result<Skb> from_xml_text(std::string_view xml, std::string_view name);
  /// A machine described by an hwloc synthetic string such as "pack:8 numa:1 core:4 pu:1";
  /// errors name the bad token or the limit passed (131,072 PUs; about a minute of hwloc's
  /// time to build it).
  static Result<Skb> from_synthetic(std::string_view description);
  /// `mk-skb --topology` semantics: empty means the live machine, an existing file or a name
  /// ending in ".xml" an XML export, anything else a synthetic description.
  static Result<Skb> load(std::string_view topology);

  // --- Facts -------------------------------------------------------------------------------

  /// Where the topology came from: "live machine", "xml file PATH" or "synthetic \"...\"".
  const std::string& origin() const;
  /// True for the live machine (measurement is possible only there).
  bool is_live() const;
  /// Identifies the machine: a hash of the discovered topology (and the host name when live).
  /// Measured facts are cached under it.
  const std::string& fingerprint() const;
  /// Cache-line size in bytes (the L1 data cache's): hwloc's, else the operating system's on
  /// the live machine, else 64 (derived); a facts file may assert it.
  std::size_t cache_line_size() const;
  /// Where cache_line_size() comes from.
  FactSource cache_line_size_source() const;
  /// Bytes the hardware moves between cores together: the distance that keeps two words
  /// written by different cores from disturbing each other. The line size where lines travel
  /// alone, two lines where an adjacent-line prefetcher fetches lines in aligned pairs. Asserted
  /// (facts file), else measured (mk::measure_prefetch_pair, cached per machine), else derived:
  /// twice a line below 128 bytes, a line from 128 bytes up. Never less than the line size.
  std::size_t prefetch_pair_distance() const;
  /// Where prefetch_pair_distance() comes from.
  FactSource prefetch_pair_source() const;
  /// Cores that are online and allowed, in increasing order.
  const std::vector<CoreId>& usable_cores() const;
  /// True when `core` exists, is online and is allowed.
  bool is_usable(CoreId core) const;
  /// Every PU the machine has, usable or not (offline ones included), by increasing OS index.
  const std::vector<CoreInfo>& cores() const;
  /// The facts about one PU; not_found for a PU the machine does not have.
  Result<CoreInfo> core_info(CoreId core) const;
  /// Data and unified caches (instruction caches are left out), outermost levels last.
  const std::vector<CacheInfo>& caches() const;
  /// Every NUMA node, memory-only ones included, by increasing OS index: capacity, cores (none
  /// for a memory-only node), hwloc kind, bandwidth and latency where hwloc knows them.
  const std::vector<NumaNodeInfo>& numa_nodes() const;
  /// Kinds of cores, least efficient first (hwloc's order); empty when hwloc reports none.
  const std::vector<CpuKindInfo>& cpukinds() const;
  /// Counts of the usable machine.
  MachineCounts counts() const;
  /// Every fact with its source, for listing (`mk-skb facts`).
  std::vector<Fact> facts() const;

  // --- Queries -----------------------------------------------------------------------------

  /// NUMA node (OS index) holding `core`'s local memory; -1 for an online core that no node's
  /// cpuset holds (its memory is wherever the OS puts it); not_found for an unknown or offline
  /// core.
  Result<int> numa_node_of(CoreId core) const;
  /// Distance between two NUMA nodes, memory-only ones included, on the scale of distance()
  /// (10 for a node to itself); not_found for a node the machine lacks.
  Result<int> numa_distance(int from, int to) const;
  /// The NUMA node (OS index) that `request` names or picks (rules in docs/skb.md). not_found
  /// for an unknown node or core, an offline core, or when no node satisfies the request.
  Result<int> memory_node(const MemoryRequest& request) const;
  /// Distance between two cores on the scale of docs/skb.md (10 = same NUMA node, as in
  /// ACPI SLIT): from hwloc's NUMA and package matrices, otherwise derived from the tree;
  /// an asserted distance overrides both. not_found for an unknown or offline core.
  Result<int> distance(CoreId a, CoreId b) const;
  /// Measured or asserted round-trip latency; not_found when there is none for the pair.
  Result<CoreLatency> latency(CoreId a, CoreId b) const;
  /// True when every pair of distinct cores in `cores` has a latency; routes and the central
  /// core then order by latency instead of distance.
  bool has_latencies(std::span<const CoreId> cores) const;
  /// Usable cores local to NUMA node `os_index`; not_found for a node the machine lacks.
  Result<std::vector<CoreId>> cores_of_numa_node(int os_index) const;
  /// Usable cores of package `package` (logical index); not_found for an unknown package.
  Result<std::vector<CoreId>> cores_of_package(int package) const;
  /// Usable cores sharing `core`'s cache of `level`; not_found when it has no such cache.
  Result<std::vector<CoreId>> cores_sharing_cache(CoreId core, int level) const;
  /// Transport for messages from `from` to `to`: an asserted kind; else `local` when equal;
  /// else, when round trips over both urpc and lockfree channels were measured for the pair,
  /// the cheaper (lower median; urpc on a tie); else urpc.
  ChannelKind transport(CoreId from, CoreId to) const;
  /// Where transport(from, to) comes from: asserted, measured, or derived (the defaults).
  FactSource transport_source(CoreId from, CoreId to) const;
  /// The measured round trip between `a` and `b` over channels of `kind`; not_found when that
  /// was not measured.
  Result<CoreLatency> channel_cost(CoreId a, CoreId b, ChannelKind kind) const;
  /// Where the answer to a call from `from` to `to` travels: an asserted path; else, when
  /// round trips with both paths were measured for the pair, in_line if its median is below
  /// kInLineAdvantage times the channel's; else channel.
  AnswerPath answer_path(CoreId from, CoreId to) const;
  /// Where answer_path(from, to) comes from: asserted, measured, or derived (the default).
  FactSource answer_path_source(CoreId from, CoreId to) const;
  /// The measured round trip between `a` and `b` with answers on `path`; not_found when that
  /// was not measured.
  Result<CoreLatency> answer_cost(CoreId a, CoreId b, AnswerPath path) const;
  /// How much cheaper than the channel an in-line answer's round trip must be for
  /// answer_path to choose it: a caller waiting in line also looks at the line in every turn,
  /// so a tie goes to the channel.
  static constexpr double kInLineAdvantage = 0.9;
  /// Ring capacity in slots a facts file asserted, if any. The SKB checks only that it is a
  /// positive number: the transport derives every channel's slot count (mk/channel_geometry.h)
  /// and refuses, naming this fact, a count its rule does not allow.
  std::optional<std::size_t> asserted_ring_slots() const;
  /// How long a kernel polls before sleeping when `kernels` kernels share the usable cores:
  /// zero when kernels outnumber cores (a spinning kernel would steal another's core); else an
  /// asserted budget; else as long as a wake by `mechanism` costs (its median wake cost, kept
  /// within 1 us to 1 ms), so that an idle kernel never spends more than twice what the best
  /// choice in hindsight would have; else, with no wake cost known, 20 us.
  std::chrono::nanoseconds poll_budget(std::size_t kernels, WakeMechanism mechanism) const;
  /// poll_budget(kernels, wake_mechanism()).
  std::chrono::nanoseconds poll_budget(std::size_t kernels) const;
  /// Measured or asserted wake costs, one per mechanism that has one, in enumeration order.
  std::vector<WakeCost> wake_costs() const;
  /// The wake cost of `mechanism`; not_found when none was measured or asserted.
  Result<WakeCost> wake_cost(WakeMechanism mechanism) const;
  /// The mechanism a facts file asserted, if any.
  std::optional<WakeMechanism> asserted_wake_mechanism() const;
  /// The wake mechanism to use among `usable` (those the OS and the isolation allow): the
  /// asserted one when it is usable; else the usable one with the lowest median wake cost;
  /// else the first usable one (eventfd when `usable` is empty).
  WakeMechanism wake_mechanism(std::span<const WakeMechanism> usable = kWakeMechanisms) const;
  /// A route of `kind` from `root` to `members` (the root may be among them). Errors for an
  /// empty set, a duplicate, or an unknown or unusable core, naming it.
  Result<Route> route(CoreId root, std::span<const CoreId> members, RouteKind kind) const;
  /// Cores for `n` kernels under `policy`, in the order kernels should get them.
  Result<std::vector<CoreId>> place(std::size_t n, PlacementPolicy policy,
                                    const PlacementOptions& options = {}) const;
  /// The usable core whose worst latency (or distance) to the other usable cores is lowest.
  Result<CoreId> central_core() const;
  /// The core of `cores` whose worst latency (or distance) to the others is lowest; ties
  /// go to the lower total, then the lower id.
  Result<CoreId> central_core(std::span<const CoreId> cores) const;

  // --- Adding facts ------------------------------------------------------------------------

  /// Records measured latencies; a pair asserted by a facts file keeps its asserted value.
  Result<void> add_measured_latencies(std::span<const CoreLatency> latencies);
  /// Records measured wake costs; a mechanism whose cost a facts file asserted keeps it.
  Result<void> add_measured_wake_costs(std::span<const WakeCost> costs);
  /// Records measured round trips per channel kind (for transport()). Errors, and nothing is
  /// recorded, for a core that is not usable, a pair of one core, a `local` kind (it joins no
  /// two cores) or a median below the minimum.
  Result<void> add_measured_channel_costs(std::span<const ChannelCost> costs);
  /// Records measured round trips per answer path (for answer_path()). Errors, and nothing is
  /// recorded, for a core that is not usable, a pair of one core or a median below the minimum.
  Result<void> add_measured_answer_costs(std::span<const AnswerCost> costs);
  /// Records the measured prefetch pair distance: a power of two from 16 to 4096 bytes, else
  /// invalid_argument. An asserted distance still wins.
  Result<void> add_measured_prefetch_pair(std::size_t bytes);
  /// Applies a facts file (format in docs/skb.md); errors name the file, line and field.
  /// On error nothing is applied.
  Result<void> assert_facts_file(const std::string& path);
  /// Applies facts given as JSON text; `name` stands for the file in error messages.
  Result<void> assert_facts_json(std::string_view json_text, std::string_view name);

 private:
  explicit Skb(std::shared_ptr<const detail::SkbFacts> facts);
  std::shared_ptr<const detail::SkbFacts> facts_;
};

}  // namespace mk
