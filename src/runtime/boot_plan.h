// A validated Config: what System::boot will actually start.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

#include "mk/config.h"
#include "mk/core_id.h"
#include "mk/executor.h"
#include "mk/result.h"
#include "mk/skb.h"

namespace mk::runtime {

/// Every field of a Config checked against the machine, with defaults filled in.
struct BootPlan {
  std::vector<CoreId> cores;    ///< By KernelId.
  std::vector<int> numa_nodes;  ///< By KernelId.
  std::size_t kernels_per_core = 1;
  /// The most kernels the System may have, counting those added later: each usable core
  /// `kernels_per_core` times (or the booted count, if larger).
  std::size_t capacity = 0;
  std::chrono::nanoseconds poll_budget{0};
  std::optional<ChannelKind> channel_kind;
  std::optional<AnswerPath> answer_path;  ///< Config::answer_path.
  std::optional<std::size_t> ring_slots;  ///< Config::ring_slots.
  std::size_t poll_batch = 0;
  WaitBackend wait_backend = WaitBackend::automatic;
  /// How kernels wake each other (plan_wake); eventfd until chosen.
  WakeMechanism wake_mechanism = WakeMechanism::eventfd;
  std::optional<std::chrono::nanoseconds> stall_timeout;
  /// Kernel::system_id: given at boot, unique among the program's Systems.
  std::uint64_t system_id = 0;
};

/// Checks `config` field by field against `skb`; the first bad field gives invalid_argument
/// (or unavailable for a machine without usable cores) with the field's name in the message.
/// Every kernel's channels are checked by the transport's geometry rule (channel_options_for),
/// so that a ring_slots, or an SKB fact, no channel can be laid out with fails boot, naming it.
Result<BootPlan> plan_boot(const Config& config, const Skb& skb);

/// Chooses the plan's wake mechanism for kernels that sleep in the OS (threads of the threaded
/// executor, or processes): `config.wake_mechanism` when given (`unavailable`, saying why, if
/// this machine or the isolation refuses it), else the SKB's choice among the mechanisms that
/// work here (an asserted one that does not is passed over, with one log line). On the live
/// machine, an SKB without wake costs gets them first: from the latency cache, else measured
/// and cached (once per process). Then derives the poll budget from the chosen mechanism's
/// wake cost, unless the config gave one or kernels share cores.
Result<void> plan_wake(const Config& config, Skb& skb, BootPlan& plan);

/// On the live machine, gives `skb` the answer costs of the plan's pairs of different cores
/// that it lacks, unless Config::answer_path decides for every pair: from the latency cache,
/// else measured (up to kMaxAnswerPairsAtBoot pairs; more are left to `mk-skb measure`) and
/// cached, once per process.
void plan_answers(Skb& skb, const BootPlan& plan);

/// Most pairs of cores whose answer costs boot measures: each takes a few milliseconds.
inline constexpr std::size_t kMaxAnswerPairsAtBoot = 28;

/// Checks that one more kernel may run on `core` beside `plan`'s (System::add_kernel): the
/// core is usable, not over kernels_per_core, not shared while kernels poll, and its channels
/// can be laid out. Returns the core's NUMA node.
Result<int> plan_added_kernel(const BootPlan& plan, const Skb& skb, CoreId core);

}  // namespace mk::runtime
