// Simulation: options checked, a System booted on the simulated executor, faults scheduled.
#include "mk/simulation.h"

#include <fmt/format.h>

#include <string>
#include <utility>

#include "runtime/sim_executor.h"
#include "runtime/sim_random.h"

namespace mk {

namespace {

/// The stream random faults are drawn from: the seed's, but apart from the scheduler's.
constexpr std::uint64_t kFaultStream = 0x6a09e667f3bcc909ULL;

Error bad(const std::string& field, const std::string& why) {
  return error(Errc::invalid_argument, field + ": " + why);
}

Result<void> check_costs(const SimCosts& costs) {
  const std::pair<const char*, Duration> fields[] = {
      {"costs.send", costs.send},     {"costs.receive", costs.receive},
      {"costs.turn", costs.turn},     {"costs.one_way_base", costs.one_way_base},
      {"costs.jitter", costs.jitter},
  };
  for (const auto& [name, value] : fields) {
    if (value < Duration::zero()) {
      return bad(name, fmt::format("{} ns is negative", value.count()));
    }
  }
  if (costs.lines.transfers_per_message < 1) {
    return bad("costs.lines.transfers_per_message",
               fmt::format("{} is not positive", costs.lines.transfers_per_message));
  }
  if (costs.turn == Duration::zero()) {
    return bad("costs.turn", "must be positive, or a kernel that only yields would stop time");
  }
  return {};
}

Result<Skb> load_machine(const SimulationOptions& options) {
  if (options.skb) return *options.skb;
  auto skb = Skb::load(options.topology);
  if (!skb) {
    return error(skb.error().code, "topology '" + options.topology + "': " + skb.error().message);
  }
  return skb;
}

Result<Config> make_config(const SimulationOptions& options, const Skb& skb) {
  Config config;
  config.ring_slots = options.ring_slots;
  config.poll_batch = options.poll_batch;
  config.poll_budget = std::chrono::nanoseconds::zero();
  config.setup = options.setup;
  if (!options.cores.empty()) {
    if (options.kernels != 0 && options.kernels != options.cores.size()) {
      return bad("kernels", fmt::format("{} disagrees with the {} cores given", options.kernels,
                                        options.cores.size()));
    }
    config.cores = options.cores;
    std::size_t most = 1;
    for (CoreId core : options.cores) {
      most = std::max<std::size_t>(most, static_cast<std::size_t>(std::count(
                                             options.cores.begin(), options.cores.end(), core)));
    }
    config.kernels_per_core = most;
    return config;
  }
  if (options.kernels == 0) {
    return bad("kernels", "0; give a positive kernel count or the cores of the kernels");
  }
  const auto& usable = skb.usable_cores();
  if (usable.empty()) {
    return error(Errc::unavailable, "topology: the machine has no usable core");
  }
  for (std::size_t i = 0; i < options.kernels; ++i)
    config.cores.push_back(usable[i % usable.size()]);
  config.kernels_per_core = (options.kernels + usable.size() - 1) / usable.size();
  return config;
}

}  // namespace

struct Simulation::Impl {
  SimulationOptions options;
  Skb skb;
  runtime::SimExecutor* executor = nullptr;  ///< Owned by the system.
  std::unique_ptr<System> system;
};

Simulation::Simulation(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Simulation::~Simulation() {
  if (impl_) (void)shutdown();
}

Result<std::unique_ptr<Simulation>> Simulation::create(SimulationOptions options) {
  if (auto costs = check_costs(options.costs); !costs) return std::move(costs).error();
  if (options.run_limit <= Duration::zero()) {
    return bad("run_limit", fmt::format("{} ns is not positive", options.run_limit.count()));
  }
  auto skb = load_machine(options);
  if (!skb) return std::move(skb).error();
  auto config = make_config(options, *skb);
  if (!config) return std::move(config).error();

  auto impl = std::make_unique<Impl>(Impl{std::move(options), *skb, nullptr, nullptr});
  auto executor = std::make_unique<runtime::SimExecutor>(
      *skb, impl->options.costs, impl->options.seed, impl->options.trace, impl->options.run_limit);
  impl->executor = executor.get();
  auto system = System::boot(std::move(*config), std::move(executor), std::move(*skb));
  if (!system) return std::move(system).error();
  impl->system = std::move(*system);
  std::unique_ptr<Simulation> simulation(new Simulation(std::move(impl)));
  if (auto faults = simulation->add_random_faults(simulation->options().faults); !faults) {
    return error(faults.error().code, "faults." + faults.error().message);
  }
  return simulation;
}

System& Simulation::system() noexcept {
  return *impl_->system;
}

const SimulationOptions& Simulation::options() const noexcept {
  return impl_->options;
}

const Skb& Simulation::skb() const noexcept {
  return impl_->skb;
}

Instant Simulation::now() const noexcept {
  return impl_->executor->now();
}

void Simulation::set_run_limit(Duration limit) noexcept {
  impl_->executor->set_run_limit(limit);
}

Result<void> Simulation::run_until_idle(Duration limit) {
  return impl_->executor->run_until_idle(limit);
}

Result<void> Simulation::run_for(Duration duration) {
  return impl_->executor->run_for(duration);
}

Result<void> Simulation::stall(KernelId kernel, Instant at, Duration duration) {
  return impl_->executor->stall(kernel, at, duration);
}

Result<void> Simulation::crash(KernelId kernel, Instant at) {
  return impl_->executor->crash(kernel, at);
}

Result<void> Simulation::crash_mid_turn(KernelId kernel, Instant at, std::size_t after_sends) {
  return impl_->executor->crash_mid_turn(kernel, at, after_sends);
}

Result<void> Simulation::delay(KernelId from, KernelId to, Instant start, Instant end,
                               Duration extra) {
  return impl_->executor->delay(from, to, start, end, extra);
}

bool Simulation::crashed(KernelId kernel) const noexcept {
  return impl_->executor->crashed(kernel);
}

Result<void> Simulation::add_random_faults(const RandomFaultPlan& plan) {
  const std::size_t kernels = impl_->executor->size();
  const bool any = plan.stalls + plan.delays + plan.crashes > 0;
  if (!any) return {};
  if (plan.begin < Duration::zero()) {
    return bad("begin", fmt::format("{} ns is negative", plan.begin.count()));
  }
  if (plan.end <= plan.begin) {
    return bad("end", fmt::format("{} ns is not after begin, {} ns", plan.end.count(),
                                  plan.begin.count()));
  }
  if (plan.stalls > 0 && plan.max_stall <= Duration::zero()) {
    return bad("max_stall", "must be positive");
  }
  if (plan.delays > 0) {
    if (kernels < 2) return bad("delays", "need at least two kernels");
    if (plan.max_delay <= Duration::zero()) return bad("max_delay", "must be positive");
    if (plan.max_delay_window <= Duration::zero()) {
      return bad("max_delay_window", "must be positive");
    }
  }
  if (plan.crashes > plan.may_crash.size()) {
    return bad("crashes", fmt::format("{} is more than the {} kernels of may_crash", plan.crashes,
                                      plan.may_crash.size()));
  }
  for (std::size_t i = 0; i < plan.may_crash.size(); ++i) {
    if (plan.may_crash[i] >= kernels) {
      return error(Errc::not_found,
                   fmt::format("may_crash[{}]: no kernel {}", i, plan.may_crash[i]));
    }
  }
  const Instant start = std::max(now(), at(plan.begin));
  if (at(plan.end) <= start) return bad("end", "is already past");
  const auto span = static_cast<std::uint64_t>((at(plan.end) - start).count() - 1);
  runtime::SimRandom random(impl_->options.seed ^ kFaultStream);
  auto instant = [&] { return start + Duration(random.up_to(span)); };
  auto length = [&](Duration most) { return Duration(1 + random.up_to(most.count() - 1)); };
  for (std::size_t i = 0; i < plan.stalls; ++i) {
    const auto kernel = static_cast<KernelId>(random.up_to(kernels - 1));
    const Instant when = instant();
    if (auto ok = stall(kernel, when, length(plan.max_stall)); !ok) return ok;
  }
  for (std::size_t i = 0; i < plan.delays; ++i) {
    const auto from = static_cast<KernelId>(random.up_to(kernels - 1));
    auto to = static_cast<KernelId>(random.up_to(kernels - 2));
    if (to >= from) ++to;
    const Instant when = instant();
    const Instant until = when + length(plan.max_delay_window);
    if (auto ok = delay(from, to, when, until, length(plan.max_delay)); !ok) return ok;
  }
  std::vector<KernelId> candidates = plan.may_crash;
  for (std::size_t i = 0; i < plan.crashes; ++i) {
    const std::size_t pick = random.up_to(candidates.size() - 1);
    const KernelId kernel = candidates[pick];
    candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(pick));
    const Instant when = instant();
    if (plan.mid_turn_sends > 0) {
      if (auto ok = crash_mid_turn(kernel, when, random.up_to(plan.mid_turn_sends)); !ok) return ok;
    } else if (auto ok = crash(kernel, when); !ok) {
      return ok;
    }
  }
  return {};
}

Result<Duration> Simulation::one_way_latency(KernelId from, KernelId to) const {
  const std::size_t kernels = impl_->executor->size();
  if (from >= kernels || to >= kernels) {
    return error(Errc::not_found,
                 fmt::format("one_way_latency: no kernel {} (the simulation has {})",
                             from >= kernels ? from : to, kernels));
  }
  return impl_->executor->one_way(from, to);
}

std::uint64_t Simulation::trace_hash() const noexcept {
  return impl_->executor->trace().hash();
}

std::uint64_t Simulation::trace_events() const noexcept {
  return impl_->executor->trace().events();
}

const std::vector<std::string>& Simulation::trace() const noexcept {
  return impl_->executor->trace().lines();
}

Result<void> Simulation::shutdown() {
  if (!impl_->system) return {};
  auto stopped = impl_->system->shutdown();
  return stopped;
}

}  // namespace mk
