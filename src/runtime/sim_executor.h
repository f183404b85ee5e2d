// The simulated executor: every kernel of a System on the calling thread, on virtual time,
// scheduled by a discrete-event loop whose ties and jitter come from a seed.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <span>
#include <vector>

#include "mk/executor.h"
#include "mk/kernel.h"
#include "mk/sim_options.h"
#include "mk/skb.h"
#include "runtime/sim_channel.h"
#include "runtime/sim_random.h"
#include "runtime/sim_trace.h"

namespace mk::runtime {

class SimExecutor;

/// The simulated clock: the running kernel's own time during its turn, the scheduler's time
/// outside turns. Each kernel's time only moves forward; two kernels' times may differ (one may
/// be busy until later than another), which kernel code cannot observe.
class SimClock final : public Clock {
 public:
  explicit SimClock(const SimExecutor& executor) : executor_(executor) {}
  Instant now() const noexcept override;

 private:
  const SimExecutor& executor_;
};

/// Turns a kernel's wake-up into "schedule this kernel".
class SimNotifier final : public Notifier {
 public:
  SimNotifier(SimExecutor& executor, KernelId kernel) : executor_(executor), kernel_(kernel) {}
  void notify() noexcept override;

 private:
  SimExecutor& executor_;
  KernelId kernel_;
};

/// Runs kernels one turn at a time. Each kernel has a local time (busy until); the scheduler
/// repeatedly takes the kernel with the earliest instant at which it has something to do
/// (start, a message delivered, a timer due, a wake-up, a stall's end), sets its clock to that
/// instant, runs one turn and charges the turn's costs. Ties go to a seeded draw.
class SimExecutor final : public Executor {
 public:
  SimExecutor(Skb skb, const SimCosts& costs, std::uint64_t seed, bool keep_trace,
              Duration run_limit);
  SimExecutor(const SimExecutor&) = delete;
  SimExecutor& operator=(const SimExecutor&) = delete;

  // Executor.
  const Clock& clock() const noexcept override { return clock_; }
  Result<void> start(std::span<Kernel* const> kernels) override;
  /// The kernel's clock starts at the simulation's present; its first turn is scheduled now.
  Result<void> add(Kernel& kernel, int numa_node) override;
  /// Runs the simulation until the kernel has stopped.
  Result<void> retire(Kernel& kernel) override;
  void join() override;
  Result<ChannelEnds> make_channel(KernelId from, KernelId to, ChannelKind kind,
                                   const ChannelOptions& options) override;
  Result<void> drive(FunctionRef<bool()> done) override;
  /// Crashes are reported to `sink` at the instant they happen.
  void watch_failures(FailureSink& sink) override { sink_ = &sink; }
  /// Under the cache-line model, the sends of `fan_out` that go into their rings at once are
  /// priced by the fan-out's buffers (placement()); otherwise it changes nothing.
  void begin_fan_out(KernelId from, const FanOut& fan_out) override;
  void end_fan_out(KernelId from) override;

  // What the Simulation asks.
  Instant now() const noexcept { return now_; }
  void set_run_limit(Duration limit) noexcept { run_limit_ = limit; }
  Result<void> run_for(Duration duration);
  Result<void> run_until_idle(Duration limit);
  Result<void> stall(KernelId kernel, Instant at, Duration duration);
  Result<void> crash(KernelId kernel, Instant at);
  Result<void> crash_mid_turn(KernelId kernel, Instant at, std::size_t after_sends);
  Result<void> delay(KernelId from, KernelId to, Instant start, Instant end, Duration extra);
  bool crashed(KernelId kernel) const noexcept;
  Duration one_way(KernelId from, KernelId to) const;
  /// The cache-line model's price of one line transfer between `kernel`'s core and NUMA node
  /// `node` (SimCosts::lines), whether or not the model is enabled.
  Duration line_transfer(KernelId kernel, int node) const;
  const SimTrace& trace() const noexcept { return trace_; }
  std::size_t size() const noexcept { return kernels_.size(); }

  // What the simulated channels, the clock and the notifiers ask.
  Instant clock_now() const noexcept;
  /// Kernel `kernel`'s virtual time, by reference: it stays valid as long as the executor.
  const Instant& time_of(KernelId kernel) const noexcept {
    return kernel < kernels_.size() ? kernels_[kernel]->local : unstarted_time_;
  }
  /// Charges a send costing `cost` to `from` and returns the instant the message leaves.
  Instant charge_send(KernelId from, Duration cost);
  /// With SimCosts::host_cpu_time, moves `kernel`'s clock on by the host CPU time since the
  /// last charge (the running kernel's only); otherwise nothing.
  void charge_cpu(KernelId kernel);
  /// With SimCosts::host_cpu_time, forgets the host CPU time since the last charge: the
  /// simulator's own bookkeeping, which the model prices instead.
  void skip_cpu() noexcept;
  /// False when the message `from` is about to send is lost: `from` is crashing in the middle
  /// of its turn and has sent all it was to send.
  bool may_send(KernelId from);
  /// When a message sent at `sent` arrives, before the channel's ordering: latency, jitter and
  /// delay faults.
  Instant delivery_instant(KernelId from, KernelId to, Instant sent, Duration latency);
  void on_enqueued(KernelId from, KernelId to, MessageType type, Instant sent, Instant arrives);
  /// Kernel `kernel` has something to look at again from `when` on.
  void wake_at(KernelId kernel, Instant when);
  /// Where the message `from` is sending to `to` is written, when the fan-out `from` is in
  /// says (and the cache-line model is on): one buffer shared with the fan-out's other
  /// receivers, or a buffer on a node of the route's choosing. Empty: the channel's own.
  SimPlacement placement(KernelId from, KernelId to);
  /// Charges a receipt costing `cost` to `to`.
  void on_received(KernelId to, KernelId from, MessageType type, Duration cost);
  void notify(KernelId kernel) noexcept;

 private:
  struct Window {
    Instant start;
    Instant end;
  };
  struct Delay {
    KernelId from;
    KernelId to;
    Window window;
    Duration extra;
  };
  struct SimKernel {
    SimKernel(SimExecutor& executor, KernelId id, Kernel& k) : kernel(&k), notifier(executor, id) {}
    Kernel* kernel;
    SimNotifier notifier;
    Instant local{};
    std::optional<Instant> next_run;
    std::uint64_t generation = 0;
    bool asleep = false;
    bool stopped = false;
    bool crashed = false;
    std::optional<Instant> crash_at;
    /// A crash in the middle of a turn: after `sends` sends of the first turn, at or after
    /// `at`, that sends more.
    struct MidTurn {
      Instant at;
      std::size_t sends;
    };
    std::optional<MidTurn> mid_turn;
    std::size_t sends_left = 0;  ///< In the running turn, while a mid-turn crash is armed.
    bool crashing = false;       ///< The running turn sent its last message; it crashes after.
    std::vector<Window> stalls;
    /// Instants at which something it cannot see yet becomes visible (a message arrives, room
    /// appears in a channel it waits on), earliest first.
    std::priority_queue<Instant, std::vector<Instant>, std::greater<>> due;
  };
  struct Event {
    Instant when;
    std::uint64_t tie;  ///< Seeded: decides between kernels due at the same instant.
    std::uint64_t seq;
    KernelId kernel;
    std::uint64_t generation;  ///< Stale when the kernel was rescheduled since.
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const noexcept {
      if (a.when != b.when) return a.when > b.when;
      if (a.tie != b.tie) return a.tie > b.tie;
      return a.seq > b.seq;
    }
  };

  void schedule(KernelId kernel, Instant when);
  /// Marks `kernel` crashed at `when` and tells the System.
  void crash_now(KernelId kernel, Instant when);
  /// Drops stale events at the front, and reports the crashes due by then (up to `limit`);
  /// false when no event is left.
  bool next_event(Instant limit);
  void step();
  Duration model_latency(KernelId from, KernelId to) const;
  Duration core_latency(CoreId a, CoreId b) const;
  std::optional<Instant> stalled_until(const SimKernel& kernel, Instant at) const;
  Result<void> check_kernel(KernelId kernel, const char* field) const;
  Result<void> check_future(Instant at, const char* field) const;

  SimClock clock_;
  Skb skb_;
  SimCosts costs_;
  SimRandom random_;
  SimTrace trace_;
  Duration run_limit_;
  std::vector<std::unique_ptr<SimKernel>> kernels_;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::uint64_t seq_ = 0;
  std::vector<Delay> delays_;
  /// one_way() by from * size() + to; negative until first asked.
  mutable std::vector<Duration> latencies_;
  /// The message the running kernel enqueued last: the doorbell the runtime rings right after
  /// it travels with it.
  struct Enqueued {
    KernelId to;
    Instant arrives;
  };
  std::optional<Enqueued> last_enqueued_;
  Instant now_{};
  /// The time of the channels made before start (the boot's probe), which never carry messages.
  Instant unstarted_time_{};
  std::optional<KernelId> running_;
  /// The fan-out the running kernel is posting: its sends (the caller's, valid until
  /// end_fan_out), the next one expected (they come in order, so a lookup is one compare), and
  /// its shared buffer once its first send made it.
  struct ActiveFanOut {
    KernelId from = 0;
    std::span<const FanOutSend> sends;
    std::size_t next = 0;
    bool shared_wanted = false;
    std::shared_ptr<SimSharedBuffer> shared;
  };
  std::optional<ActiveFanOut> fan_out_;
  /// With SimCosts::host_cpu_time: the host instant up to which the running kernel has been
  /// charged its CPU time.
  std::chrono::steady_clock::time_point cpu_mark_{};
  bool joined_ = false;
  FailureSink* sink_ = nullptr;
  /// By KernelId: when the last message it sent arrives. A crash is reported once everything
  /// the kernel sent before it has arrived, as a real failure detector sees a dead process
  /// only after what it wrote into shared rings is there to read.
  std::vector<Instant> sent_until_;
  /// Crashes not yet reported, earliest first.
  std::deque<std::pair<Instant, KernelId>> unreported_;
};

}  // namespace mk::runtime
