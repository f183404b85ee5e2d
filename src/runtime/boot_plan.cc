#include "runtime/boot_plan.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "mk/channel_geometry.h"
#include "mk/latency_cache.h"
#include "mk/latency_probe.h"
#include "mk/wake_probe.h"
#include "runtime/doorbell.h"
#include "runtime/idle_waiter.h"
#include "runtime/log.h"

namespace mk::runtime {

namespace {

constexpr std::size_t kMaxKernelsPerCore = 64;
constexpr std::size_t kMaxPollBatch = 65536;
constexpr std::chrono::nanoseconds kMaxPollBudget = std::chrono::seconds(1);
constexpr std::chrono::nanoseconds kMinStallTimeout = std::chrono::milliseconds(1);
constexpr std::chrono::nanoseconds kMaxStallTimeout = std::chrono::hours(1);

Error bad(const std::string& field, const std::string& why) {
  return error(Errc::invalid_argument, field + ": " + why);
}

Result<std::vector<CoreId>> choose_cores(const Config& config, const Skb& skb) {
  if (config.cores.empty()) {
    if (skb.usable_cores().empty()) {
      return error(Errc::unavailable, "cores: the machine has no usable core for a kernel");
    }
    std::vector<CoreId> cores;
    for (std::size_t round = 0; round < config.kernels_per_core; ++round) {
      cores.insert(cores.end(), skb.usable_cores().begin(), skb.usable_cores().end());
    }
    return cores;
  }
  std::map<CoreId, std::size_t> uses;
  for (std::size_t i = 0; i < config.cores.size(); ++i) {
    const CoreId core = config.cores[i];
    const std::string field = "cores[" + std::to_string(i) + "]";
    if (!skb.is_usable(core)) {
      return bad(field, "core " + std::to_string(core) +
                            " is not usable (absent, offline or outside this process's cpuset)");
    }
    if (++uses[core] > config.kernels_per_core) {
      return bad(field, "core " + std::to_string(core) + " is listed more than kernels_per_core (" +
                            std::to_string(config.kernels_per_core) + ") times");
    }
  }
  return config.cores;
}

// The runtime's structures are laid out at compile time, aligned to kSeparation; the SKB's
// prefetch pair distance reaches them only through the transport's rule, which refuses one
// above kMaxSeparation. So they are apart whatever the SKB measures.
static_assert(kSeparation >= kMaxSeparation,
              "runtime structures must be apart by any separation a channel accepts");

// The transport's geometry rule for channels into `core` (what a channel needs depends on its
// receiver alone): errors name ring_slots or the SKB's fact.
Result<void> check_channels_into(const Skb& skb, CoreId core,
                                 std::optional<std::size_t> ring_slots) {
  auto options = channel_options_for(skb, core, core, ring_slots);
  if (!options) return std::move(options).error();
  return {};
}

}  // namespace

Result<BootPlan> plan_boot(const Config& config, const Skb& skb) {
  if (config.kernels_per_core < 1 || config.kernels_per_core > kMaxKernelsPerCore) {
    return bad("kernels_per_core", std::to_string(config.kernels_per_core) +
                                       " is out of range 1 to " +
                                       std::to_string(kMaxKernelsPerCore));
  }
  BootPlan plan;
  auto cores = choose_cores(config, skb);
  if (!cores) return std::move(cores).error();
  plan.cores = std::move(*cores);
  for (std::size_t i = 0; i < plan.cores.size(); ++i) {
    auto node = skb.numa_node_of(plan.cores[i]);
    if (!node) {
      return bad("cores[" + std::to_string(i) + "]", "no NUMA node: " + node.error().message);
    }
    plan.numa_nodes.push_back(*node);
  }

  if (config.channel_kind) {
    if (*config.channel_kind == ChannelKind::local) {
      return bad("channel_kind",
                 "local has no atomics and cannot join two kernels, which are two threads");
    }
    if (*config.channel_kind != ChannelKind::urpc &&
        *config.channel_kind != ChannelKind::lockfree) {
      return bad("channel_kind",
                 "unknown kind " + std::to_string(static_cast<int>(*config.channel_kind)));
    }
    plan.channel_kind = config.channel_kind;
  }

  if (config.answer_path) {
    if (static_cast<std::size_t>(*config.answer_path) >= kAnswerPaths.size()) {
      return bad("answer_path",
                 "unknown path " + std::to_string(static_cast<int>(*config.answer_path)));
    }
    plan.answer_path = config.answer_path;
  }

  const std::set<CoreId> distinct(plan.cores.begin(), plan.cores.end());
  const bool shared_cores = distinct.size() < plan.cores.size();
  if (config.poll_budget) {
    if (*config.poll_budget < std::chrono::nanoseconds::zero() ||
        *config.poll_budget > kMaxPollBudget) {
      return bad("poll_budget",
                 std::to_string(config.poll_budget->count()) + " ns is out of range 0 to 1 s");
    }
    if (*config.poll_budget > std::chrono::nanoseconds::zero() &&
        (shared_cores || plan.cores.size() > skb.usable_cores().size())) {
      return bad("poll_budget", "must be 0 when kernels share cores (" +
                                    std::to_string(plan.cores.size()) + " kernels on " +
                                    std::to_string(distinct.size()) + " cores)");
    }
    plan.poll_budget = *config.poll_budget;
  } else {
    plan.poll_budget = skb.poll_budget(plan.cores.size());
    // The SKB counts kernels against cores; kernels placed on one core must not spin even
    // when the machine has cores to spare elsewhere. kernels_per_core > 1 allows sharing
    // later too (System::add_kernel), so it never polls either.
    if (shared_cores || config.kernels_per_core > 1)
      plan.poll_budget = std::chrono::nanoseconds::zero();
  }

  if (config.poll_batch < 1 || config.poll_batch > kMaxPollBatch) {
    return bad("poll_batch", std::to_string(config.poll_batch) + " is out of range 1 to " +
                                 std::to_string(kMaxPollBatch));
  }
  plan.poll_batch = config.poll_batch;

  switch (config.wait_backend) {
    case WaitBackend::automatic:
    case WaitBackend::io_uring:
    case WaitBackend::poll:
      plan.wait_backend = config.wait_backend;
      break;
    default:
      return bad("wait_backend",
                 "unknown value " + std::to_string(static_cast<int>(config.wait_backend)));
  }

  if (config.wake_mechanism &&
      !wake_mechanism_named(to_string(*config.wake_mechanism)).has_value()) {
    return bad("wake_mechanism",
               "unknown value " + std::to_string(static_cast<int>(*config.wake_mechanism)));
  }

  if (config.isolation != Isolation::threads && config.isolation != Isolation::processes) {
    return bad("isolation", "unknown value " + std::to_string(static_cast<int>(config.isolation)));
  }

  if (config.stall_timeout) {
    if (*config.stall_timeout < kMinStallTimeout || *config.stall_timeout > kMaxStallTimeout) {
      return bad("stall_timeout", std::to_string(config.stall_timeout->count()) +
                                      " ns is out of range 1 ms to 1 hour");
    }
    plan.stall_timeout = config.stall_timeout;
  }

  // Relaxed: a counter whose values need only be distinct.
  static std::atomic<std::uint64_t> systems{0};
  plan.system_id = systems.fetch_add(1, std::memory_order_relaxed) + 1;

  plan.ring_slots = config.ring_slots;
  for (CoreId core : distinct) {
    if (auto checked = check_channels_into(skb, core, plan.ring_slots); !checked)
      return checked.error();
  }
  plan.kernels_per_core = config.kernels_per_core;
  plan.capacity = std::max(plan.cores.size(), skb.usable_cores().size() * plan.kernels_per_core);
  return plan;
}

namespace {

/// The live machine's wake costs, once per process: read from the cache, else measured.
void learn_wake_costs(Skb& skb) {
  static std::mutex mutex;
  static std::map<std::string, std::vector<WakeCost>> known;  // By fingerprint.
  std::lock_guard lock(mutex);
  auto found = known.find(skb.fingerprint());
  if (found == known.end()) {
    Skb probe = skb;
    auto learnt = load_or_measure_wake_costs(probe, LatencySetup{});
    if (!learnt && learnt.error().code != Errc::unavailable) {
      log_line("wake costs not cached: " + learnt.error().message);
    }
    // Without a cache directory (or with one that cannot be written) they are measured here.
    if (probe.wake_costs().empty()) {
      if (auto measured = measure_wake_costs(probe); measured) {
        (void)probe.add_measured_wake_costs(*measured);
      } else {
        log_line("wake costs not measured: " + measured.error().message);
      }
    }
    found = known.emplace(skb.fingerprint(), probe.wake_costs()).first;
  }
  (void)skb.add_measured_wake_costs(found->second);
}

/// Answer costs of the pairs in `pairs`, measured in this process, or read from the latency
/// cache, or measured now and cached; added to `skb`. Once per process and pair.
void learn_answer_costs(Skb& skb, const std::vector<std::pair<CoreId, CoreId>>& pairs) {
  static std::mutex mutex;
  static std::map<std::string, std::vector<AnswerCost>> known;  // By fingerprint.
  std::lock_guard lock(mutex);
  std::vector<AnswerCost>& mine = known[skb.fingerprint()];
  // The cache as it is now, so that saving keeps what it holds beside the new costs.
  Skb cached = skb;
  auto directory = latency_cache_dir({});
  if (directory) {
    if (auto loaded = load_cached_measurements(cached, *directory); !loaded) {
      log_line("answer costs: " + loaded.error().describe());
    }
  }
  (void)cached.add_measured_answer_costs(mine);
  std::vector<AnswerCost> measured;
  for (const auto& [a, b] : pairs) {
    if (cached.answer_cost(a, b, AnswerPath::channel) &&
        cached.answer_cost(a, b, AnswerPath::in_line)) {
      continue;
    }
    auto both = measure_answer_costs(skb, a, b);
    if (!both) {
      log_line("answer costs of cores " + std::to_string(a) + " and " + std::to_string(b) +
               " not measured: " + both.error().message);
      continue;
    }
    measured.insert(measured.end(), both->begin(), both->end());
  }
  mine.insert(mine.end(), measured.begin(), measured.end());
  (void)cached.add_measured_answer_costs(measured);
  if (directory && !measured.empty()) {
    if (auto saved = save_latency_cache(latency_cache_path(*directory, cached), cached); !saved) {
      log_line("answer costs not cached: " + saved.error().describe());
    }
  }
  for (const auto& [a, b] : pairs) {
    for (AnswerPath path : kAnswerPaths) {
      if (auto cost = cached.answer_cost(a, b, path)) {
        const AnswerCost found{path, *cost};
        (void)skb.add_measured_answer_costs(std::span(&found, 1));
      }
    }
  }
}

}  // namespace

void plan_answers(Skb& skb, const BootPlan& plan) {
  if (plan.answer_path || !skb.is_live()) return;
  const std::set<CoreId> distinct(plan.cores.begin(), plan.cores.end());
  std::vector<std::pair<CoreId, CoreId>> missing;
  for (auto a = distinct.begin(); a != distinct.end(); ++a) {
    for (auto b = std::next(a); b != distinct.end(); ++b) {
      if (!skb.answer_cost(*a, *b, AnswerPath::channel) ||
          !skb.answer_cost(*a, *b, AnswerPath::in_line)) {
        missing.emplace_back(*a, *b);
      }
    }
  }
  if (missing.empty()) return;
  if (missing.size() > kMaxAnswerPairsAtBoot) {
    log_line("answer costs of " + std::to_string(missing.size()) +
             " pairs of cores not measured at boot (mk-skb measure measures them); calls are "
             "answered through their channels");
    return;
  }
  learn_answer_costs(skb, missing);
}

Result<void> plan_wake(const Config& config, Skb& skb, BootPlan& plan) {
  if (skb.is_live() && skb.wake_costs().empty()) learn_wake_costs(skb);
  const Isolation isolation = config.isolation;
  if (config.wake_mechanism) {
    if (auto usable = check_wake_mechanism(*config.wake_mechanism, plan.wait_backend, isolation);
        !usable) {
      return error(usable.error().code, "wake_mechanism: " + usable.error().message);
    }
    plan.wake_mechanism = *config.wake_mechanism;
  } else {
    std::vector<WakeMechanism> usable;
    std::optional<Error> asserted_refused;
    for (WakeMechanism mechanism : kWakeMechanisms) {
      auto works = check_wake_mechanism(mechanism, plan.wait_backend, isolation);
      if (works) {
        usable.push_back(mechanism);
      } else if (skb.asserted_wake_mechanism() == mechanism) {
        asserted_refused = std::move(works).error();
      }
    }
    if (usable.empty()) {
      return error(Errc::unavailable, "wake_mechanism: no wake mechanism works here");
    }
    plan.wake_mechanism = skb.wake_mechanism(usable);
    if (asserted_refused) {
      log_line("the asserted " + asserted_refused->message + "; kernels wake by " +
               std::string(to_string(plan.wake_mechanism)) + " instead");
    }
  }
  if (!config.poll_budget && plan.poll_budget > std::chrono::nanoseconds::zero()) {
    plan.poll_budget = skb.poll_budget(plan.cores.size(), plan.wake_mechanism);
  }
  return {};
}

Result<int> plan_added_kernel(const BootPlan& plan, const Skb& skb, CoreId core) {
  const std::string what = "add_kernel: core " + std::to_string(core);
  if (!skb.is_usable(core)) {
    return error(Errc::invalid_argument,
                 what + " is not usable (absent, offline or outside this process's cpuset)");
  }
  const auto uses =
      static_cast<std::size_t>(std::count(plan.cores.begin(), plan.cores.end(), core));
  if (uses >= plan.kernels_per_core) {
    return error(Errc::invalid_argument, what + " already runs kernels_per_core (" +
                                             std::to_string(plan.kernels_per_core) + ") kernels");
  }
  if (uses > 0 && plan.poll_budget > std::chrono::nanoseconds::zero()) {
    return error(Errc::invalid_argument,
                 what + " already runs a kernel, and kernels that poll must not share a core");
  }
  if (plan.cores.size() >= plan.capacity) {
    // kernels_per_core already bounds every core, and capacity counts them all; this guards
    // the fabric's fixed size should the two ever disagree.
    return error(Errc::internal, what + ": no room in the kernel table (" +
                                     std::to_string(plan.capacity) + " kernels)");
  }
  auto node = skb.numa_node_of(core);
  if (!node) return error(node.error().code, what + ": no NUMA node: " + node.error().message);
  if (auto checked = check_channels_into(skb, core, plan.ring_slots); !checked) {
    return error(checked.error().code, what + ": " + checked.error().message);
  }
  return *node;
}

}  // namespace mk::runtime
