// mk-bench caps: the capability service's copy, transfer, retype and revoke latencies, each
// beside the same operation on one derivation tree in shared memory under one mutex, applied by
// threads on the same cores (what a shared-memory kernel does); and the simulator's projection
// of revoke, one ordered update over every member, to the 8 x 4-core AMD machine.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "layout.h"
#include "mk/capability_service.h"
#include "mk/node_memory.h"
#include "mk/system.h"
#include "pinned_threads.h"
#include "profile.h"
#include "projection.h"
#include "services/cap_table.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {

/// What kernel 0 sends the kernel it passes a capability to: the grant to accept. Outside the
/// anonymous namespace, since mk's task frames that hold it have external linkage.
struct CapsOffer {
  static constexpr MessageType kType = 0xE030;
  /// The steady clock's reading, in ns, when the receiver's accept completed: the capability
  /// was usable there from then on.
  struct Reply {
    std::int64_t accepted_ns;
  };
  CapGrant grant;
  /// 1: the receiver keeps the capability (for a revoke to remove); 0: it removes it again.
  std::uint8_t keep;
};

namespace {

using services::CapMemory;
using services::CapOp;
using services::CapTable;

/// Pages of the pool each side hands out: room for the two RAM capabilities below.
constexpr std::size_t kPoolPages = 64;
/// Pages of the RAM capability retype carves one Frame from, again and again.
constexpr std::size_t kRetypePages = 16;
/// Loads of a mailbox before a baseline thread starts yielding between loads.
constexpr std::size_t kSpinsBeforeYield = 4096;

std::int64_t steady_ns(Clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
}

/// Latencies of one operation, in ns, from every repetition; failed once one run of it failed.
struct Figure {
  std::vector<double> samples;
  bool failed = false;
};

/// What one side measured.
struct Figures {
  Figure copy, transfer, retype;
  std::vector<Figure> revoke;  ///< [n - 1]: the capability had copies on n kernels.
};

/// Marks every figure failed: what measures them could not be set up.
void fail_all(Figures& figures) {
  figures.copy.failed = figures.transfer.failed = figures.retype.failed = true;
  for (Figure& figure : figures.revoke)
    figure.failed = true;
}

/// Rounds of each measurement: one unmeasured tenth more first, to warm caches and rings.
struct Rounds {
  std::size_t single = 0;  ///< Of copy, transfer and retype.
  std::size_t revoke = 0;  ///< Of revoke, for each number of kernels with copies.
};

/// Adds `samples` without their first `warmup` to `figure`.
void keep_samples(const std::vector<float>& samples, std::size_t warmup, Figure& figure) {
  if (samples.size() <= warmup) return;
  figure.samples.insert(figure.samples.end(), samples.begin() + static_cast<long>(warmup),
                        samples.end());
}

// ---- The capability service ----

using Samples = mk::Result<std::vector<float>>;

/// Passes a copy of `slot` to kernel `to`: transfer, then a call whose handler (serve_offers)
/// accepts it. The steady clock's reading, in ns, when the accept completed.
Task<mk::Result<std::int64_t>> pass_copy(Kernel& k, CapabilityService caps, CapSlot slot,
                                         KernelId to, bool keep) {
  auto grant = co_await caps.transfer(k, slot, to);
  if (!grant) co_return std::move(grant).error();
  const CapsOffer offer{*grant, static_cast<std::uint8_t>(keep ? 1 : 0)};
  auto accepted = co_await k.call(to, offer);
  if (!accepted) co_return std::move(accepted).error();
  co_return accepted->accepted_ns;
}

/// On a receiving kernel: answers CapsOffer by accepting its grant.
Task<mk::Result<void>> serve_offers(Kernel& k, CapabilityService caps) {
  co_return k.handle<CapsOffer>(
      [caps](CapsOffer offer, const MessageContext& context) -> Task<mk::Result<CapsOffer::Reply>> {
        // Copies in the frame: the handler's captures and context need not outlive a suspension.
        const CapabilityService service = caps;
        Kernel& kernel = context.kernel;
        auto slot = co_await service.accept(kernel, offer.grant);
        const Clock::time_point accepted = Clock::now();
        if (!slot) co_return std::move(slot).error();
        if (offer.keep == 0) {
          auto removed = co_await service.remove(kernel, *slot);
          if (!removed) co_return std::move(removed).error();
        }
        co_return CapsOffer::Reply{steady_ns(accepted)};
      });
}

/// A RAM capability of `pages` pages of node `node` in k's CSpace.
Task<mk::Result<CapSlot>> allocate_pages(Kernel& k, CapabilityService caps, std::size_t pages,
                                         int node) {
  co_return co_await caps.allocate(k, pages * NodeMemory::page_size(), node);
}

/// `rounds` copies of `ram`, each removed again after it was timed.
Task<Samples> copy_rounds(Kernel& k, CapabilityService caps, CapSlot ram, std::size_t rounds) {
  std::vector<float> samples;
  for (std::size_t i = 0; i < rounds; ++i) {
    const auto t0 = Clock::now();
    auto copy = co_await caps.copy(k, ram);
    const auto t1 = Clock::now();
    if (!copy) co_return std::move(copy).error();
    auto removed = co_await caps.remove(k, *copy);
    if (!removed) co_return std::move(removed).error();
    samples.push_back(static_cast<float>(ns_between(t0, t1)));
  }
  co_return samples;
}

/// `rounds` transfers of `ram` to kernel `to`, each until `to` accepted it (and then removed it,
/// untimed).
Task<Samples> transfer_rounds(Kernel& k, CapabilityService caps, CapSlot ram, KernelId to,
                              std::size_t rounds) {
  std::vector<float> samples;
  for (std::size_t i = 0; i < rounds; ++i) {
    const auto t0 = Clock::now();
    auto accepted_ns = co_await pass_copy(k, caps, ram, to, false);
    if (!accepted_ns) co_return std::move(accepted_ns).error();
    samples.push_back(static_cast<float>(*accepted_ns - steady_ns(t0)));
  }
  co_return samples;
}

/// `rounds` retypes of the first page of `ram` into one Frame, each removed again after it was
/// timed, so that the next finds the range free.
Task<Samples> retype_rounds(Kernel& k, CapabilityService caps, CapSlot ram, std::size_t rounds) {
  std::vector<float> samples;
  for (std::size_t i = 0; i < rounds; ++i) {
    const auto t0 = Clock::now();
    auto frames = co_await caps.retype(k, ram, CapType::frame, 0, NodeMemory::page_size(), 1);
    const auto t1 = Clock::now();
    if (!frames) co_return std::move(frames).error();
    if (frames->size() != 1) {
      co_return error(Errc::internal, fmt::format("retype made {} frames, not 1", frames->size()));
    }
    auto removed = co_await caps.remove(k, frames->front());
    if (!removed) co_return std::move(removed).error();
    samples.push_back(static_cast<float>(ns_between(t0, t1)));
  }
  co_return samples;
}

/// `rounds` revokes of `ram`, each after giving it copies on `holders` kernels: one local copy
/// for 1, else a copy accepted by each of kernels 1 to holders - 1.
Task<Samples> revoke_rounds(Kernel& k, CapabilityService caps, CapSlot ram, std::size_t holders,
                            std::size_t rounds) {
  std::vector<float> samples;
  const std::size_t expected = holders == 1 ? 1 : holders - 1;
  for (std::size_t i = 0; i < rounds; ++i) {
    if (holders == 1) {
      auto copy = co_await caps.copy(k, ram);
      if (!copy) co_return std::move(copy).error();
    }
    for (std::size_t to = 1; to < holders; ++to) {
      auto passed = co_await pass_copy(k, caps, ram, static_cast<KernelId>(to), true);
      if (!passed) co_return std::move(passed).error();
    }
    const auto t0 = Clock::now();
    auto removed = co_await caps.revoke(k, ram);
    const auto t1 = Clock::now();
    if (!removed) co_return std::move(removed).error();
    if (*removed != expected) {
      co_return error(Errc::internal,
                      fmt::format("revoke removed {} capabilities, not {}", *removed, expected));
    }
    samples.push_back(static_cast<float>(ns_between(t0, t1)));
  }
  co_return samples;
}

/// Adds what one measuring run returned to `figure`, or says what failed and marks it failed.
void collect(const std::string& what, mk::Result<Samples> measured, std::size_t warmup,
             Figure& figure) {
  if (measured && *measured) {
    keep_samples(**measured, warmup, figure);
    return;
  }
  const Error& failure = measured ? measured->error() : measured.error();
  fmt::print(stderr, "mk-bench caps: {}: {}\n", what, failure.describe());
  figure.failed = true;
}

/// One repetition on the service: boots the layout's kernels, makes a service on `memory`'s
/// `node` and measures every operation from kernel 0.
void measure_service(const Layout& layout, const CapabilityMemory& memory, int node,
                     const Rounds& rounds, Figures& figures) {
  auto booted = System::boot(layout.config);
  if (!booted) {
    fmt::print(stderr, "mk-bench caps: {} kernels: {}\n", layout.kernels,
               booted.error().describe());
    fail_all(figures);
    return;
  }
  System& system = **booted;
  const auto last = static_cast<KernelId>(layout.kernels - 1);
  CapabilityOptions options;
  options.replica.sequencer = last;
  auto caps = CapabilityService::create(system, memory, options);
  mk::Result<void> ready = caps ? mk::Result<void>{} : mk::Result<void>(caps.error());
  for (KernelId id = 1; ready && id < layout.kernels; ++id) {
    auto served = system.run(
        id, [](Kernel& k, CapabilityService c) { return serve_offers(k, std::move(c)); }, *caps);
    if (!served) ready = served.error();
    if (served && !*served) ready = served->error();
  }
  auto allocate = [&](std::size_t pages) -> mk::Result<CapSlot> {
    auto made = system.run(
        0,
        [](Kernel& k, CapabilityService c, std::size_t n, int at) {
          return allocate_pages(k, std::move(c), n, at);
        },
        *caps, pages, node);
    if (!made) return made.error();
    return *made;
  };
  mk::Result<CapSlot> page = ready ? allocate(1) : mk::Result<CapSlot>(ready.error());
  mk::Result<CapSlot> carved = page ? allocate(kRetypePages) : mk::Result<CapSlot>(page.error());
  if (!carved) {
    fmt::print(stderr, "mk-bench caps: the service on {} kernels: {}\n", layout.kernels,
               carved.error().describe());
    fail_all(figures);
    return;
  }

  const std::size_t single = rounds.single + rounds.single / 10;
  if (!figures.copy.failed) {
    collect("copy",
            system.run(
                0,
                [](Kernel& k, CapabilityService c, CapSlot ram, std::size_t n) {
                  return copy_rounds(k, std::move(c), ram, n);
                },
                *caps, *page, single),
            rounds.single / 10, figures.copy);
  }
  if (!figures.transfer.failed) {
    collect("transfer",
            system.run(
                0,
                [](Kernel& k, CapabilityService c, CapSlot ram, KernelId to, std::size_t n) {
                  return transfer_rounds(k, std::move(c), ram, to, n);
                },
                *caps, *page, last, single),
            rounds.single / 10, figures.transfer);
  }
  if (!figures.retype.failed) {
    collect("retype",
            system.run(
                0,
                [](Kernel& k, CapabilityService c, CapSlot ram, std::size_t n) {
                  return retype_rounds(k, std::move(c), ram, n);
                },
                *caps, *carved, single),
            rounds.single / 10, figures.retype);
  }
  for (std::size_t holders = 1; holders <= layout.kernels; ++holders) {
    Figure& figure = figures.revoke[holders - 1];
    if (figure.failed) continue;
    collect(fmt::format("revoke with copies on {} kernels", holders),
            system.run(
                0,
                [](Kernel& k, CapabilityService c, CapSlot ram, std::size_t h, std::size_t n) {
                  return revoke_rounds(k, std::move(c), ram, h, n);
                },
                *caps, *page, holders, rounds.revoke + rounds.revoke / 10),
            rounds.revoke / 10, figure);
  }
}

// ---- The baseline: one CapTable in shared memory under one std::mutex ----

/// The derivation tree as a shared-memory kernel keeps it: one table every core's thread
/// applies its own operations to, under one lock, and the memory it hands out.
class LockedTable {
 public:
  LockedTable(int node, std::size_t pool_bytes, std::span<std::byte> memory)
      : table_(1, CapabilityOptions{}.cspace_slots, {{node, pool_bytes}}, NodeMemory::page_size()),
        memory_(memory) {}

  /// Applies `op` under the lock.
  CapTable::Result apply(const CapOp& op) {
    std::lock_guard lock(mutex_);
    return table_.apply(op);
  }

  /// Retype as a shared-memory kernel does it: the table's update under the lock, then the new
  /// Frame's memory zeroed, as the service's proposer zeroes it. Its slot.
  mk::Result<CapSlot> retype(const CapOp& op) {
    CapMemory bytes;
    CapSlot slot = 0;
    {
      std::lock_guard lock(mutex_);
      auto made = table_.apply(op);
      if (!made) return std::move(made).error();
      slot = made->slots.front();
      auto frame = table_.frame(op.kernel, slot, CapRights::write);
      if (!frame) return std::move(frame).error();
      bytes = *frame;
    }
    if (bytes.offset > memory_.size() || bytes.size > memory_.size() - bytes.offset) {
      return error(Errc::internal, fmt::format("retype's frame at {} + {} lies outside the {} "
                                               "bytes of the pool",
                                               bytes.offset, bytes.size, memory_.size()));
    }
    std::memset(memory_.data() + bytes.offset, 0, bytes.size);
    return slot;
  }

 private:
  std::mutex mutex_;
  CapTable table_;
  std::span<std::byte> memory_;
};

/// How baseline thread 0 asks thread j to apply one of j's operations (accepting a transfer,
/// removing what it accepted): a line in shared memory both poll, the shared-memory kernel's
/// way of telling another core.
struct alignas(64) Mailbox {
  enum State : int { idle, posted, done, stop };
  std::atomic<int> state{idle};
  CapOp op{};
  std::optional<CapTable::Result> result;
  Clock::time_point applied{};
};

/// Waits until `wanted(state)`: spins `spins` loads, then yields between loads, so that threads
/// sharing a core let each other run (as kernels sharing one sleep instead of polling).
template <class Wanted>
int wait_for(const std::atomic<int>& state, std::size_t spins, Wanted wanted) {
  for (std::size_t looks = 0;; ++looks) {
    const int now = state.load();
    if (wanted(now)) return now;
    if (looks >= spins) std::this_thread::yield();
  }
}

/// Baseline thread j: applies what thread 0 posts to its mailbox until told to stop.
void serve_mailbox(LockedTable& table, Mailbox& box, std::size_t spins) {
  for (;;) {
    const int state = wait_for(box.state, spins,
                               [](int s) { return s == Mailbox::posted || s == Mailbox::stop; });
    if (state == Mailbox::stop) return;
    box.result.emplace(table.apply(box.op));
    box.applied = Clock::now();
    box.state.store(Mailbox::done);
  }
}

/// Thread 0's side of a mailbox: posts `op` and waits until it was applied.
const CapTable::Result& ask(Mailbox& box, const CapOp& op, std::size_t spins) {
  box.op = op;
  box.state.store(Mailbox::posted);
  wait_for(box.state, spins, [](int s) { return s == Mailbox::done; });
  return *box.result;
}

CapOp op_on(CapOp::Kind kind, KernelId kernel, CapSlot slot) {
  CapOp op;
  op.kind = kind;
  op.kernel = kernel;
  op.slot = slot;
  return op;
}

/// Baseline thread 0: the same operations, in the same order, as the service's kernel 0.
class BaselineDriver {
 public:
  BaselineDriver(LockedTable& table, std::vector<Mailbox>& boxes, std::size_t spins, int node)
      : table_(table), boxes_(boxes), spins_(spins), node_(node) {}

  void measure(const Rounds& rounds, Figures& figures) {
    auto page = allocate(1);
    auto carved = page ? allocate(kRetypePages) : page;
    if (!carved) {
      fmt::print(stderr, "mk-bench caps: baseline: {}\n", carved.error().describe());
      fail_all(figures);
      return;
    }
    const std::size_t single = rounds.single + rounds.single / 10;
    run("copy", single, rounds.single / 10, figures.copy, [&] { return copy(*page); });
    run("transfer", single, rounds.single / 10, figures.transfer, [&] { return transfer(*page); });
    run("retype", single, rounds.single / 10, figures.retype, [&] { return retype(*carved); });
    for (std::size_t holders = 1; holders <= boxes_.size(); ++holders) {
      run(fmt::format("revoke with copies on {}", holders), rounds.revoke + rounds.revoke / 10,
          rounds.revoke / 10, figures.revoke[holders - 1], [&] { return revoke(*page, holders); });
    }
  }

 private:
  /// `count` rounds of `once`, which returns one latency in ns or an error.
  template <class Once>
  void run(const std::string& what, std::size_t count, std::size_t warmup, Figure& figure,
           Once once) {
    if (figure.failed) return;
    std::vector<float> samples;
    for (std::size_t i = 0; i < count; ++i) {
      auto ns = once();
      if (!ns) {
        fmt::print(stderr, "mk-bench caps: baseline {}: {}\n", what, ns.error().describe());
        figure.failed = true;
        return;
      }
      samples.push_back(static_cast<float>(*ns));
    }
    keep_samples(samples, warmup, figure);
  }

  mk::Result<CapSlot> allocate(std::size_t pages) {
    CapOp op = op_on(CapOp::Kind::allocate, 0, 0);
    op.node = node_;
    op.bytes = pages * NodeMemory::page_size();
    auto made = table_.apply(op);
    if (!made) return std::move(made).error();
    return made->slots.front();
  }

  mk::Result<double> copy(CapSlot ram) {
    const auto t0 = Clock::now();
    auto copied = table_.apply(op_on(CapOp::Kind::copy, 0, ram));
    const auto t1 = Clock::now();
    if (!copied) return std::move(copied).error();
    auto removed = table_.apply(op_on(CapOp::Kind::remove, 0, copied->slots.front()));
    if (!removed) return std::move(removed).error();
    return ns_between(t0, t1);
  }

  /// Thread 0 applies the transfer and thread `to` the accept: when the accept was applied.
  mk::Result<Clock::time_point> pass_copy(CapSlot ram, KernelId to, CapSlot& accepted) {
    CapOp transfer = op_on(CapOp::Kind::transfer, 0, ram);
    transfer.to = to;
    transfer.rights = CapRights::all;
    transfer.secret = ++secret_;
    auto pending = table_.apply(transfer);
    if (!pending) return std::move(pending).error();
    CapOp accept = op_on(CapOp::Kind::accept, to, 0);
    accept.transfer = pending->transfer;
    accept.secret = transfer.secret;
    accept.to = 0;  // accept's `from`, the sender
    const auto& done = ask(boxes_[to], accept, spins_);
    if (!done) return done.error();
    accepted = done->slots.front();
    return boxes_[to].applied;
  }

  mk::Result<double> transfer(CapSlot ram) {
    const auto to = static_cast<KernelId>(boxes_.size() - 1);
    CapSlot accepted = 0;
    const auto t0 = Clock::now();
    auto at = pass_copy(ram, to, accepted);
    if (!at) return std::move(at).error();
    const auto& removed = ask(boxes_[to], op_on(CapOp::Kind::remove, to, accepted), spins_);
    if (!removed) return removed.error();
    return ns_between(t0, *at);
  }

  mk::Result<double> retype(CapSlot ram) {
    CapOp op = op_on(CapOp::Kind::retype, 0, ram);
    op.type = CapType::frame;
    op.offset = 0;
    op.bytes = NodeMemory::page_size();
    op.count = 1;
    const auto t0 = Clock::now();
    auto frame = table_.retype(op);
    const auto t1 = Clock::now();
    if (!frame) return std::move(frame).error();
    auto removed = table_.apply(op_on(CapOp::Kind::remove, 0, *frame));
    if (!removed) return std::move(removed).error();
    return ns_between(t0, t1);
  }

  mk::Result<double> revoke(CapSlot ram, std::size_t holders) {
    if (holders == 1) {
      auto copied = table_.apply(op_on(CapOp::Kind::copy, 0, ram));
      if (!copied) return std::move(copied).error();
    }
    for (std::size_t to = 1; to < holders; ++to) {
      CapSlot accepted = 0;
      auto at = pass_copy(ram, static_cast<KernelId>(to), accepted);
      if (!at) return std::move(at).error();
    }
    const auto t0 = Clock::now();
    auto removed = table_.apply(op_on(CapOp::Kind::revoke, 0, ram));
    const auto t1 = Clock::now();
    if (!removed) return std::move(removed).error();
    const std::size_t expected = holders == 1 ? 1 : holders - 1;
    if (removed->removed != expected) {
      return error(Errc::internal, fmt::format("revoke removed {} capabilities, not {}",
                                               removed->removed, expected));
    }
    return ns_between(t0, t1);
  }

  LockedTable& table_;
  std::vector<Mailbox>& boxes_;
  std::size_t spins_;
  int node_;
  std::uint64_t secret_ = 0;
};

/// One repetition of the baseline: a thread pinned to each kernel's core; thread 0 measures.
void measure_baseline(const Layout& layout, const CapabilityMemory& memory, int node,
                      const Rounds& rounds, Figures& figures) {
  LockedTable table(node, kPoolPages * NodeMemory::page_size(), memory.bytes(node));
  std::vector<Mailbox> boxes(layout.kernels);
  const std::size_t spins = layout.shared_cores ? 0 : kSpinsBeforeYield;
  run_pinned(layout.config.cores, [&](std::size_t i) {
    if (i != 0) {
      serve_mailbox(table, boxes[i], spins);
      return;
    }
    BaselineDriver(table, boxes, spins, node).measure(rounds, figures);
    for (std::size_t j = 1; j < boxes.size(); ++j)
      boxes[j].state.store(Mailbox::stop);
  });
}

// ---- Report ----

void add_pair(Report& report, const std::string& stem, const Figure& service,
              const Figure& locked) {
  const std::string baseline = stem + "shared_mutex_ns";
  const bool have_baseline = !locked.failed && !locked.samples.empty();
  if (have_baseline) {
    std::vector<double> samples = locked.samples;
    report.add({baseline, median(samples), "ns", std::nullopt, std::nullopt});
  }
  if (!service.failed && !service.samples.empty()) {
    std::vector<double> samples = service.samples;
    report.add({stem + "latency_ns", median(samples), "ns",
                have_baseline ? std::optional(baseline) : std::nullopt, std::nullopt});
  }
}

/// The simulator's revoke on every core of the profile's machine (the amd-8x4 profile unless
/// --profile names another), for each route kind: an ordered update from kernel 0 that
/// completes once every kernel applied it, under the cache-line model with the profile's
/// asserted latencies.
void project_revoke(const Options& options, Report& report) {
  const std::string name = options.profile.empty() ? std::string("amd-8x4") : options.profile;
  auto profile = load_profile(name);
  if (!profile) {
    fmt::print(stderr, "mk-bench caps: projection: {}\n", profile.error().describe());
    return;
  }
  SimCosts costs;
  costs.lines.enabled = true;
  const std::size_t cores = profile->machine->usable_cores().size();
  const std::string unicast = fmt::format("caps.revoke.projected.unicast.{}.latency_ns", cores);
  bool have_unicast = false;
  for (RouteKind route : kRoutes) {
    // Revoke completes once every member applied it (its unmapping and freeing are done).
    auto projected =
        project_ordered_point(*profile->machine, cores, route, costs, Completion::everywhere);
    if (!projected) {
      fmt::print(stderr, "mk-bench caps: projection over {}: {}\n", to_string(route),
                 projected.error().describe());
      continue;
    }
    const bool is_unicast = route == RouteKind::unicast;
    have_unicast = have_unicast || is_unicast;
    report.add({fmt::format("caps.revoke.projected.{}.{}.latency_ns", route_name(route), cores),
                *projected, "ns",
                is_unicast || !have_unicast ? std::nullopt : std::optional(unicast), std::nullopt});
  }
}

}  // namespace

void run_caps(const Options& options, Report& report) {
  auto skb = Skb::discover();
  if (!skb) {
    fmt::print(stderr, "mk-bench caps: {}\n", skb.error().describe());
    return;
  }
  const auto& usable = skb->usable_cores();
  const Layout layout = layout_for(usable, std::max<std::size_t>(usable.size(), 2));
  auto node = skb->memory_node(MemoryRequest::nearest_to(layout.config.cores.front()));
  if (!node) {
    fmt::print(stderr, "mk-bench caps: {}\n", node.error().describe());
    return;
  }
  const NodeBytes pool{*node, kPoolPages * NodeMemory::page_size()};
  // Each side its own pools: the baseline zeroes a retyped Frame's page as the service does.
  auto memory = CapabilityMemory::create(std::span(&pool, 1));
  auto baseline_memory = CapabilityMemory::create(std::span(&pool, 1));
  if (!memory || !baseline_memory) {
    fmt::print(stderr, "mk-bench caps: {}\n",
               (!memory ? memory.error() : baseline_memory.error()).describe());
    return;
  }
  fmt::print(stderr,
             "mk-bench caps: {} kernels{}; every operation from kernel 0, one at a time (the\n"
             "  sequencer: kernel {}; transfer: to kernel {}, until its accept completed;\n"
             "  retype: one page of a RAM capability into a Frame); revoke.N: the capability\n"
             "  had copies on N kernels. Baseline (shared_mutex_ns): one capability table in\n"
             "  shared memory under one std::mutex, the same operations applied by threads on\n"
             "  the same cores. revoke.projected: the simulator's ordered update over every\n"
             "  core of the {} profile, complete once every kernel applied it (as revoke)\n",
             layout.kernels, layout.shared_cores ? " sharing the usable cores" : ", one per core",
             layout.kernels - 1, layout.kernels - 1,
             options.profile.empty() ? std::string("amd-8x4") : options.profile);

  Rounds rounds;
  rounds.single = options.quick ? 1'000 : 10'000;
  rounds.revoke = options.quick ? 200 : 2'000;
  // Kernels that share cores sleep, and every update then costs wakeups (tens of us).
  if (layout.shared_cores) {
    rounds.single /= 10;
    rounds.revoke /= 4;
  }
  const std::size_t repetitions = options.quick ? 2 : 5;
  Figures service, locked;
  service.revoke.resize(layout.kernels);
  locked.revoke.resize(layout.kernels);
  // Repetitions interleave the two sides, so that noise from the rest of the machine hits both
  // alike; the baseline runs with no kernel running, so the two never share a core.
  for (std::size_t r = 0; r < repetitions; ++r) {
    measure_baseline(layout, *baseline_memory, *node, rounds, locked);
    measure_service(layout, *memory, *node, rounds, service);
  }
  add_pair(report, "caps.copy.", service.copy, locked.copy);
  add_pair(report, "caps.transfer.", service.transfer, locked.transfer);
  add_pair(report, "caps.retype.", service.retype, locked.retype);
  for (std::size_t holders = 1; holders <= layout.kernels; ++holders) {
    add_pair(report, fmt::format("caps.revoke.{}.", holders), service.revoke[holders - 1],
             locked.revoke[holders - 1]);
  }
  project_revoke(options, report);
}

}  // namespace mk::bench
