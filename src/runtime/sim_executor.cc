#include "runtime/sim_executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "runtime/sim_channel.h"

namespace mk::runtime {

namespace {

std::uint64_t ns(Instant when) {
  return static_cast<std::uint64_t>(when.time_since_epoch().count());
}

constexpr std::size_t kMaxCachedKernels = 2048;

std::uint64_t ns(Duration duration) {
  return static_cast<std::uint64_t>(duration.count());
}

}  // namespace

Instant SimClock::now() const noexcept {
  return executor_.clock_now();
}

void SimNotifier::notify() noexcept {
  executor_.notify(kernel_);
}

SimExecutor::SimExecutor(Skb skb, const SimCosts& costs, std::uint64_t seed, bool keep_trace,
                         Duration run_limit)
    : clock_(*this),
      skb_(std::move(skb)),
      costs_(costs),
      random_(seed),
      trace_(keep_trace),
      run_limit_(run_limit) {}

Result<void> SimExecutor::start(std::span<Kernel* const> kernels) {
  for (KernelId id = 0; id < kernels.size(); ++id) {
    kernels_.push_back(std::make_unique<SimKernel>(*this, id, *kernels[id]));
    kernels[id]->set_notifier(kernels_.back()->notifier);
  }
  // Every kernel runs a first turn; the seed decides in which order.
  for (KernelId id = 0; id < kernels_.size(); ++id)
    schedule(id, now_);
  return {};
}

Result<void> SimExecutor::add(Kernel& kernel, int) {
  const KernelId id = kernel.id();
  if (id != kernels_.size()) {
    return error(Errc::invalid_argument, "kernel " + std::to_string(id) + " added as kernel " +
                                             std::to_string(kernels_.size()));
  }
  kernels_.push_back(std::make_unique<SimKernel>(*this, id, kernel));
  kernels_.back()->local = now_;
  kernel.set_notifier(kernels_.back()->notifier);
  // The latency table is laid out by kernel count; it refills as pairs are asked again.
  latencies_.clear();
  schedule(id, now_);
  return {};
}

Result<void> SimExecutor::retire(Kernel& kernel) {
  return drive([&kernel] { return kernel.stopped(); });
}

Result<ChannelEnds> SimExecutor::make_channel(KernelId from, KernelId to, ChannelKind,
                                              const ChannelOptions& options) {
  // The kind and the NUMA node do not matter here, but the geometry must be one the real
  // transport accepts, so that a simulated boot refuses what a threaded one would.
  auto per_slot = single_slot_payload(ChannelOptions{options.slots, -1, options.line_size});
  if (!per_slot) return std::move(per_slot).error();
  SimChannelShape shape;
  shape.from = from;
  shape.to = to;
  shape.slots = options.slots;
  shape.slot_payload = *per_slot;
  if (!costs_.lines.enabled) {
    shape.latency = one_way(from, to);
    shape.send = costs_.send;
    shape.receive = costs_.receive;
  } else if (from != to) {
    // A kernel's channel to itself stays in its own cache: it moves no line.
    int node = options.receiver_numa_node;
    if (node < 0) {
      auto own = skb_.numa_node_of(kernels_[to]->kernel->core());
      if (!own) return std::move(own).error();
      node = *own;
    }
    shape.flight_per_slot = line_transfer(from, node);
    shape.read_per_slot = line_transfer(to, node);
  }
  return make_sim_channel(*this, shape);
}

// Cheap (no allocation but a shared buffer's, when its first send needs it): with
// SimCosts::host_cpu_time, the kernel is charged this as CPU time.
void SimExecutor::begin_fan_out(KernelId from, const FanOut& fan_out) {
  fan_out_.reset();
  if (!costs_.lines.enabled || from >= kernels_.size()) return;
  fan_out_ = ActiveFanOut{from, fan_out.sends, 0, fan_out.shared_buffer, nullptr};
}

void SimExecutor::end_fan_out(KernelId from) {
  if (fan_out_ && fan_out_->from == from) fan_out_.reset();
}

SimPlacement SimExecutor::placement(KernelId from, KernelId to) {
  if (!fan_out_ || fan_out_->from != from || from == to) return {};
  ActiveFanOut& active = *fan_out_;
  auto is_to = [to](const FanOutSend& send) { return send.to == to; };
  auto it = active.next < active.sends.size() && is_to(active.sends[active.next])
                ? active.sends.begin() + static_cast<std::ptrdiff_t>(active.next)
                : std::find_if(active.sends.begin(), active.sends.end(), is_to);
  if (it == active.sends.end()) return {};
  active.next = static_cast<std::size_t>(it - active.sends.begin()) + 1;
  if (!active.shared_wanted) return SimPlacement{nullptr, it->buffer_numa_node};
  if (!active.shared) {
    auto node = skb_.numa_node_of(kernels_[from]->kernel->core());
    if (!node) return {};
    active.shared = std::make_shared<SimSharedBuffer>();
    active.shared->numa_node = *node;
  }
  return SimPlacement{active.shared, -1};
}

Duration SimExecutor::line_transfer(KernelId kernel, int node) const {
  const CoreId core = kernels_[kernel]->kernel->core();
  // The line's home is the node, not one core of it: the nearest other core stands for it.
  std::optional<Duration> nearest;
  if (auto cores = skb_.cores_of_numa_node(node)) {
    for (CoreId other : *cores) {
      if (other == core) continue;
      const Duration latency = core_latency(core, other);
      if (!nearest || latency < *nearest) nearest = latency;
    }
  }
  // A node whose only core is this one: its local memory, at SKB distance 10.
  const Duration one_way = nearest.value_or(costs_.one_way_base);
  return one_way / std::max(1, costs_.lines.transfers_per_message);
}

Duration SimExecutor::one_way(KernelId from, KernelId to) const {
  if (from == to) return Duration::zero();
  const std::size_t n = kernels_.size();
  // A table for every pair up to a few thousand kernels (8 bytes a pair); beyond, the model is
  // asked each time.
  if (n > kMaxCachedKernels) return model_latency(from, to);
  if (latencies_.empty()) latencies_.assign(n * n, Duration(-1));
  Duration& cached = latencies_[from * n + to];
  if (cached < Duration::zero()) cached = model_latency(from, to);
  return cached;
}

Duration SimExecutor::model_latency(KernelId from, KernelId to) const {
  return core_latency(kernels_[from]->kernel->core(), kernels_[to]->kernel->core());
}

Duration SimExecutor::core_latency(CoreId a, CoreId b) const {
  if (costs_.use_measured_latencies) {
    if (auto measured = skb_.latency(a, b)) return measured->median / 2;
  }
  auto distance = skb_.distance(a, b);
  const int d = distance ? *distance : 10;
  return costs_.one_way_base * d / 10;
}

Instant SimExecutor::clock_now() const noexcept {
  return running_ ? kernels_[*running_]->local : now_;
}

bool SimExecutor::may_send(KernelId from) {
  SimKernel& sender = *kernels_[from];
  if (!sender.mid_turn || running_ != from || sender.local < sender.mid_turn->at) return true;
  if (sender.sends_left > 0) {
    --sender.sends_left;
    return true;
  }
  sender.crashing = true;
  return false;
}

void SimExecutor::charge_cpu(KernelId kernel) {
  if (!costs_.host_cpu_time || running_ != kernel) return;
  const auto now = std::chrono::steady_clock::now();
  kernels_[kernel]->local += std::chrono::duration_cast<Duration>(now - cpu_mark_);
  cpu_mark_ = now;
}

void SimExecutor::skip_cpu() noexcept {
  if (costs_.host_cpu_time) cpu_mark_ = std::chrono::steady_clock::now();
}

Instant SimExecutor::charge_send(KernelId from, Duration cost) {
  SimKernel& sender = *kernels_[from];
  sender.local += cost;
  return sender.local;
}

Instant SimExecutor::delivery_instant(KernelId from, KernelId to, Instant sent, Duration latency) {
  Instant arrives = sent + latency + Duration(random_.up_to(ns(costs_.jitter)));
  for (const Delay& d : delays_) {
    if (d.from == from && d.to == to && sent >= d.window.start && sent < d.window.end) {
      arrives += d.extra;
    }
  }
  return arrives;
}

void SimExecutor::on_enqueued(KernelId from, KernelId to, MessageType type, Instant sent,
                              Instant arrives) {
  trace_.record(sent, from, SimEvent::send, to, type, ns(arrives));
  last_enqueued_ = Enqueued{to, arrives};
  if (from >= sent_until_.size()) sent_until_.resize(from + 1);
  sent_until_[from] = std::max(sent_until_[from], arrives);
  wake_at(to, arrives);
}

void SimExecutor::wake_at(KernelId kernel, Instant when) {
  SimKernel& k = *kernels_[kernel];
  k.due.push(when);
  // An awake kernel looks at what is due when it next goes to sleep.
  if (k.asleep) schedule(kernel, std::max(when, k.local));
}

void SimExecutor::on_received(KernelId to, KernelId from, MessageType type, Duration cost) {
  SimKernel& receiver = *kernels_[to];
  receiver.local += cost;
  trace_.record(receiver.local, to, SimEvent::receive, from, type);
}

void SimExecutor::notify(KernelId kernel) noexcept {
  SimKernel& target = *kernels_[kernel];
  std::optional<Enqueued> enqueued = std::exchange(last_enqueued_, std::nullopt);
  if (!target.asleep) return;  // Scheduled already, or running and about to look again.
  if (!running_) {
    schedule(kernel, std::max(target.local, now_));  // Work handed over from outside.
    return;
  }
  // A wake-up from another kernel travels like a message. Rung right after a message to the
  // same kernel, it arrives with it (unless a fault holds the message back): the kernel is
  // already due then, and waking it earlier would only find an empty channel.
  const Instant doorbell = clock_now() + one_way(*running_, kernel);
  if (enqueued && enqueued->to == kernel && enqueued->arrives <= doorbell + costs_.jitter) return;
  schedule(kernel, std::max(target.local, doorbell));
}

void SimExecutor::schedule(KernelId kernel, Instant when) {
  SimKernel& target = *kernels_[kernel];
  if (target.crashed || target.stopped) return;
  if (target.next_run && *target.next_run <= when) return;
  target.next_run = when;
  queue_.push(Event{when, random_.next(), seq_++, kernel, ++target.generation});
}

bool SimExecutor::next_event(Instant limit) {
  for (;;) {
    while (!queue_.empty()) {
      const Event& top = queue_.top();
      const SimKernel& target = *kernels_[top.kernel];
      if (top.generation == target.generation && !target.crashed && !target.stopped) break;
      queue_.pop();
    }
    if (!unreported_.empty()) {
      const auto [at, kernel] = unreported_.front();
      if (at <= limit && (queue_.empty() || at <= queue_.top().when)) {
        unreported_.pop_front();
        now_ = std::max(now_, at);
        // The failure detector: the survivors learn of it now, through the System.
        if (sink_ != nullptr) sink_->kernel_failed(kernel, "crashed (simulator)");
        continue;
      }
    }
    return !queue_.empty();
  }
}

std::optional<Instant> SimExecutor::stalled_until(const SimKernel& kernel, Instant at) const {
  std::optional<Instant> resume;
  bool moved = true;
  while (moved) {
    moved = false;
    const Instant from = resume.value_or(at);
    for (const Window& w : kernel.stalls) {
      if (w.start <= from && from < w.end) {
        resume = w.end;
        moved = true;
      }
    }
  }
  return resume;
}

void SimExecutor::step() {
  const Event event = queue_.top();
  queue_.pop();
  SimKernel& k = *kernels_[event.kernel];
  const KernelId id = event.kernel;
  last_enqueued_.reset();
  k.next_run.reset();
  now_ = std::max(now_, event.when);
  const Instant at = std::max(event.when, k.local);

  if (k.crash_at && at >= *k.crash_at) {
    crash_now(id, *k.crash_at);
    return;
  }
  if (auto resume = stalled_until(k, at)) {
    k.local = *resume;
    trace_.record(at, id, SimEvent::stall, ns(*resume));
    schedule(id, *resume);
    return;
  }

  k.local = at;
  if (k.asleep) {
    k.asleep = false;
    k.kernel->end_sleep();
  }
  running_ = id;
  if (k.mid_turn) k.sends_left = k.mid_turn->sends;
  skip_cpu();
  const bool worked = k.kernel->run_turn();
  charge_cpu(id);
  k.local += costs_.turn;
  trace_.record(at, id, SimEvent::turn, worked ? 1 : 0);
  if (k.crashing) {
    // It died after its last send went: what the rest of the turn did stays with it.
    running_.reset();
    crash_now(id, k.local);
    return;
  }
  if (k.kernel->stopped()) {
    running_.reset();
    k.stopped = true;
    trace_.record(k.local, id, SimEvent::stop);
    return;
  }
  if (worked) {
    running_.reset();
    schedule(id, k.local);
    return;
  }
  const bool may_sleep = k.kernel->prepare_to_sleep();
  running_.reset();
  if (!may_sleep) {
    k.kernel->end_sleep();
    schedule(id, k.local);
    return;
  }
  k.asleep = true;
  // What was due up to now was seen (the re-check found nothing); the next thing due, or the
  // next timer, wakes it.
  while (!k.due.empty() && k.due.top() <= k.local)
    k.due.pop();
  std::optional<Instant> wake = k.kernel->next_deadline();
  if (!k.due.empty() && (!wake || k.due.top() < *wake)) wake = k.due.top();
  // A crash to come is an event of its own: the kernel must run then to meet it, even when a
  // later wake-up replaced the turn crash() scheduled.
  if (k.crash_at && (!wake || *k.crash_at < *wake)) wake = *k.crash_at;
  trace_.record(k.local, id, SimEvent::sleep, wake ? ns(*wake) : 0);
  if (wake) schedule(id, std::max(*wake, k.local));
}

Result<void> SimExecutor::drive(FunctionRef<bool()> done) {
  const Instant deadline = now_ + run_limit_;
  while (!done()) {
    if (!next_event(deadline)) {
      return error(Errc::timed_out,
                   fmt::format("simulation: at {} ns nothing is left to simulate (every live "
                               "kernel sleeps with no timer and no message on its way) and the "
                               "task has not finished: a deadlock, or a wait on a crashed kernel",
                               ns(now_)));
    }
    if (queue_.top().when > deadline) {
      now_ = deadline;
      return error(Errc::timed_out,
                   fmt::format("simulation: the task did not finish within its limit of {} ns "
                               "of virtual time (now {} ns)",
                               ns(run_limit_), ns(now_)));
    }
    step();
  }
  return {};
}

void SimExecutor::crash_now(KernelId kernel, Instant when) {
  kernels_[kernel]->crashed = true;
  trace_.record(when, kernel, SimEvent::crash);
  // Reported once what it sent has arrived (next_event), in the order crashes are reported.
  Instant report = std::max(now_, when);
  if (kernel < sent_until_.size()) report = std::max(report, sent_until_[kernel]);
  auto at = std::upper_bound(
      unreported_.begin(), unreported_.end(), report,
      [](Instant value, const std::pair<Instant, KernelId>& entry) { return value < entry.first; });
  unreported_.insert(at, {report, kernel});
}

Result<void> SimExecutor::run_for(Duration duration) {
  if (duration < Duration::zero()) {
    return error(Errc::invalid_argument,
                 fmt::format("run_for: duration {} ns is negative", duration.count()));
  }
  const Instant deadline = now_ + duration;
  while (next_event(deadline) && queue_.top().when <= deadline)
    step();
  now_ = std::max(now_, deadline);
  return {};
}

Result<void> SimExecutor::run_until_idle(Duration limit) {
  if (limit < Duration::zero()) {
    return error(Errc::invalid_argument,
                 fmt::format("run_until_idle: limit {} ns is negative", limit.count()));
  }
  const Instant deadline = now_ + limit;
  auto busy = [&] {
    now_ = deadline;
    return error(Errc::timed_out,
                 fmt::format("simulation: kernels still had work after {} ns of virtual time",
                             limit.count()));
  };
  while (next_event(deadline)) {
    if (queue_.top().when > deadline) return busy();
    step();
  }
  // A crash not yet reported is work still to come.
  if (!unreported_.empty()) return busy();
  return {};
}

void SimExecutor::join() {
  if (joined_) return;
  joined_ = true;
  auto all_done = [this] {
    return std::all_of(kernels_.begin(), kernels_.end(),
                       [](const auto& k) { return k->stopped || k->crashed; });
  };
  // Stopping takes a bounded number of turns (the runtime cuts a stopping kernel off), and
  // every stopping kernel was woken, so this ends; the check on the queue is a safety net.
  while (!all_done() && next_event(Instant::max()))
    step();
}

Result<void> SimExecutor::check_kernel(KernelId kernel, const char* field) const {
  if (kernel >= kernels_.size()) {
    return error(Errc::not_found, fmt::format("{}: no kernel {} (the simulation has {})", field,
                                              kernel, kernels_.size()));
  }
  return {};
}

Result<void> SimExecutor::check_future(Instant at, const char* field) const {
  if (at < now_) {
    return error(
        Errc::invalid_argument,
        fmt::format("{}: {} ns is before the simulation's time, {} ns", field, ns(at), ns(now_)));
  }
  return {};
}

Result<void> SimExecutor::stall(KernelId kernel, Instant at, Duration duration) {
  if (auto ok = check_kernel(kernel, "stall kernel"); !ok) return ok;
  if (auto ok = check_future(at, "stall at"); !ok) return ok;
  if (duration <= Duration::zero()) {
    return error(Errc::invalid_argument,
                 fmt::format("stall duration: {} ns is not positive", duration.count()));
  }
  kernels_[kernel]->stalls.push_back(Window{at, at + duration});
  return {};
}

Result<void> SimExecutor::crash_mid_turn(KernelId kernel, Instant at, std::size_t after_sends) {
  if (auto ok = check_kernel(kernel, "crash kernel"); !ok) return ok;
  if (auto ok = check_future(at, "crash at"); !ok) return ok;
  SimKernel& k = *kernels_[kernel];
  if (!k.mid_turn || at < k.mid_turn->at) k.mid_turn = SimKernel::MidTurn{at, after_sends};
  schedule(kernel, at);
  return {};
}

Result<void> SimExecutor::crash(KernelId kernel, Instant at) {
  if (auto ok = check_kernel(kernel, "crash kernel"); !ok) return ok;
  if (auto ok = check_future(at, "crash at"); !ok) return ok;
  SimKernel& k = *kernels_[kernel];
  if (!k.crash_at || at < *k.crash_at) k.crash_at = at;
  // A turn at that instant, so that the crash is noticed (and reported) when it happens, not
  // when the kernel would next have run.
  schedule(kernel, at);
  return {};
}

Result<void> SimExecutor::delay(KernelId from, KernelId to, Instant start, Instant end,
                                Duration extra) {
  if (auto ok = check_kernel(from, "delay from"); !ok) return ok;
  if (auto ok = check_kernel(to, "delay to"); !ok) return ok;
  if (auto ok = check_future(start, "delay start"); !ok) return ok;
  if (end <= start) {
    return error(Errc::invalid_argument,
                 fmt::format("delay end: {} ns is not after start, {} ns", ns(end), ns(start)));
  }
  if (extra <= Duration::zero()) {
    return error(Errc::invalid_argument,
                 fmt::format("delay extra: {} ns is not positive", extra.count()));
  }
  delays_.push_back(Delay{from, to, Window{start, end}, extra});
  return {};
}

bool SimExecutor::crashed(KernelId kernel) const noexcept {
  if (kernel >= kernels_.size()) return false;
  const SimKernel& k = *kernels_[kernel];
  return k.crashed || (k.crash_at && *k.crash_at <= now_);
}

}  // namespace mk::runtime
