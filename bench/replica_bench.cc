// mk-bench replica: reads of a Replicated map on every kernel beside the same reads of a
// std::shared_mutex-protected std::unordered_map by threads on the same cores; updates beside
// a std::mutex-protected map.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mk/replicated.h"
#include "mk/system.h"
#include "pinned_threads.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {

/// The replicated object: a key-value map; an update sets one key and returns its old value.
struct BenchMap {
  struct Op {
    std::uint64_t key;
    std::uint64_t value;
  };
  using Result = std::uint64_t;
  std::unordered_map<std::uint64_t, std::uint64_t> entries;

  Result apply(const Op& op) { return std::exchange(entries[op.key], op.value); }
};

}  // namespace mk::bench

/// A BenchMap as bytes: the entry count, then (key, value) pairs.
template <>
struct mk::Codec<mk::bench::BenchMap> {
  static void encode(const mk::bench::BenchMap& map, std::vector<std::byte>& out) {
    append(out, map.entries.size());
    for (const auto& [key, value] : map.entries) {
      append(out, key);
      append(out, value);
    }
  }
  static mk::Result<mk::bench::BenchMap> decode(std::span<const std::byte> bytes) {
    std::uint64_t count = 0;
    if (bytes.size() < sizeof count) {
      return mk::error(mk::Errc::parse_error, "BenchMap: no entry count");
    }
    std::memcpy(&count, bytes.data(), sizeof count);
    if ((bytes.size() - sizeof count) / 16 != count || (bytes.size() - sizeof count) % 16 != 0) {
      return mk::error(mk::Errc::parse_error, "BenchMap: " + std::to_string(bytes.size()) +
                                                  " bytes for " + std::to_string(count) +
                                                  " entries");
    }
    mk::bench::BenchMap map;
    for (std::uint64_t i = 0; i < count; ++i) {
      std::uint64_t pair[2];
      std::memcpy(pair, bytes.data() + sizeof count + 16 * i, sizeof pair);
      map.entries[pair[0]] = pair[1];
    }
    return map;
  }

 private:
  static void append(std::vector<std::byte>& out, std::uint64_t word) {
    const auto* raw = reinterpret_cast<const std::byte*>(&word);
    out.insert(out.end(), raw, raw + sizeof word);
  }
};

namespace mk::bench {

/// When one reader or writer started and ended; aggregate rates span the earliest start to
/// the latest end. (Outside the anonymous namespace: tasks return it through System::run.)
struct Span {
  Clock::time_point begin, end;
  bool ok = true;
};

namespace {

constexpr std::uint64_t kKeys = 1024;
// Proposals a kernel keeps in flight while measuring update throughput.
constexpr std::size_t kWindow = 32;
// Reads between yields of a reading kernel, so its channels are still served.
constexpr std::size_t kReadsPerYield = 1024;

// Where read loops leave their sums, so that the lookups stay in the program.
std::atomic<std::uint64_t> read_sink{0};

/// The keys a reader looks up: xorshift64, seeded per reader, the same for both sides.
class KeyStream {
 public:
  explicit KeyStream(std::uint64_t seed) : x_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint64_t next() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_ % kKeys;
  }

 private:
  std::uint64_t x_;
};

double ops_per_second(const std::vector<Span>& spans, std::size_t ops_each) {
  if (spans.empty()) return 0;
  for (const auto& s : spans) {
    if (!s.ok) return 0;
  }
  auto begin = spans.front().begin;
  auto end = spans.front().end;
  for (const auto& s : spans) {
    begin = std::min(begin, s.begin);
    end = std::max(end, s.end);
  }
  return static_cast<double>(ops_each * spans.size()) / (ns_between(begin, end) / 1e9);
}

/// Looks up one key in `map`'s entries into `sum`: the read both sides of the bench do.
void look_up(const BenchMap& map, KeyStream& keys, std::uint64_t& sum) {
  auto found = map.entries.find(keys.next());
  if (found != map.entries.end()) sum += found->second;
}

/// A BenchMap holding every key, for the lock-based baselines.
BenchMap filled_map() {
  BenchMap map;
  for (std::uint64_t key = 0; key < kKeys; ++key)
    map.entries[key] = key;
  return map;
}

double shared_mutex_reads(std::span<const CoreId> cores, std::size_t reads) {
  std::shared_mutex mutex;
  const BenchMap map = filled_map();
  std::vector<Span> spans(cores.size());
  run_pinned(cores, [&](std::size_t i) {
    KeyStream keys(i + 1);
    std::uint64_t sum = 0;
    spans[i].begin = Clock::now();
    for (std::size_t r = 0; r < reads; ++r) {
      std::shared_lock lock(mutex);
      look_up(map, keys, sum);
    }
    spans[i].end = Clock::now();
    read_sink.fetch_add(sum);
  });
  return ops_per_second(spans, reads);
}

double mutex_updates(std::span<const CoreId> cores, std::size_t updates) {
  std::mutex mutex;
  BenchMap map = filled_map();
  std::vector<Span> spans(cores.size());
  run_pinned(cores, [&](std::size_t i) {
    KeyStream keys(i + 1);
    spans[i].begin = Clock::now();
    for (std::size_t u = 0; u < updates; ++u) {
      std::lock_guard lock(mutex);
      map.apply({keys.next(), u});
    }
    spans[i].end = Clock::now();
  });
  return ops_per_second(spans, updates);
}

/// Runs `body(kernel, args...)` on every kernel of `system` at once, each from a thread of the
/// bench's own (System::run blocks), and collects what each returns. `body` captures nothing,
/// so that it also runs in kernel processes.
template <class F, class... Args>
std::vector<Span> on_every_kernel(System& system, F body, Args... args) {
  std::vector<Span> spans(system.size());
  std::vector<std::thread> waiters;
  for (KernelId id = 0; id < system.size(); ++id) {
    waiters.emplace_back([&, id] {
      auto span = system.run(id, body, args...);
      if (span) {
        spans[id] = *span;
      } else {
        spans[id].ok = false;
        fmt::print(stderr, "mk-bench replica: kernel {}: {}\n", id, span.error().describe());
      }
    });
  }
  for (auto& waiter : waiters)
    waiter.join();
  return spans;
}

/// `reads` lookups, each in `co_await map.read(k, f)` (linearizable) or map.local(k, f). Two
/// loops, not one with `linearizable ? co_await .. : ..`: GCC 12 miscompiles co_await in ?:.
Task<Span> read_loop(Kernel& k, Replicated<BenchMap> map, std::size_t reads, bool linearizable) {
  KeyStream keys(k.id() + 1);
  std::uint64_t sum = 0;
  Span span;
  span.begin = k.now();
  for (std::size_t r = 0; r < reads && span.ok; ++r) {
    if (linearizable) {
      auto read = co_await map.read(k, [&](const BenchMap& state) { look_up(state, keys, sum); });
      span.ok = read.ok();
    } else {
      auto read = map.local(k, [&](const BenchMap& state) { look_up(state, keys, sum); });
      span.ok = read.ok();
    }
    if (r % kReadsPerYield == kReadsPerYield - 1) co_await k.yield();
  }
  span.end = k.now();
  read_sink.fetch_add(sum);
  co_return span;
}

Task<Span> update_loop(Kernel& k, Replicated<BenchMap> map, std::size_t updates) {
  KeyStream keys(k.id() + 1);
  std::deque<Proposal<std::uint64_t>> in_flight;
  Span span;
  span.begin = k.now();
  for (std::size_t u = 0; u < updates; ++u) {
    if (in_flight.size() == kWindow) {
      auto done = co_await in_flight.front();
      in_flight.pop_front();
      if (!done) span.ok = false;
    }
    in_flight.push_back(map.propose(k, {keys.next(), u}));
  }
  while (!in_flight.empty()) {
    auto done = co_await in_flight.front();
    in_flight.pop_front();
    if (!done) span.ok = false;
  }
  span.end = k.now();
  co_return span;
}

/// Fills `map` with every key, from kernel 0, and waits until every replica shows them all.
bool populate(System& system, const Replicated<BenchMap>& map) {
  auto filled = system.run(
      0,
      [](Kernel& k, Replicated<BenchMap> m) -> Task<bool> {
        for (std::uint64_t key = 0; key < kKeys; ++key) {
          if (!co_await m.propose(k, {key, key})) co_return false;
        }
        co_return true;
      },
      map);
  if (!filled || !*filled) return false;
  for (KernelId id = 0; id < system.size(); ++id) {
    auto complete = system.run(
        id,
        [](Kernel& k, Replicated<BenchMap> m) -> Task<bool> {
          // Ordered updates reach the other replicas shortly after the proposer's completes.
          for (int tries = 0; tries < 1000; ++tries) {
            auto size =
                co_await m.read(k, [](const BenchMap& state) { return state.entries.size(); });
            if (!size) co_return false;
            if (*size == kKeys) co_return true;
            co_await k.sleep_for(std::chrono::milliseconds(1));
          }
          co_return false;
        },
        map);
    if (!complete || !*complete) return false;
  }
  return true;
}

/// Read and update rates of one System.
struct Rates {
  double read = 0;
  double local_read = 0;
  double update = 0;
};

/// Boots `config` isolated as `isolation` says and measures its rates; nothing if it failed.
std::optional<Rates> measure_rates(Config config, Isolation isolation, std::size_t reads,
                                   std::size_t updates) {
  config.isolation = isolation;
  auto booted = System::boot(config);
  if (!booted) {
    fmt::print(stderr, "mk-bench replica: {}\n", booted.error().describe());
    return std::nullopt;
  }
  System& system = **booted;
  ReplicaOptions replica;
  replica.protocol = Protocol::ordered;
  replica.route = RouteKind::multicast;
  auto map = Replicated<BenchMap>::create(system, {}, replica);
  if (!map) {
    fmt::print(stderr, "mk-bench replica: {}\n", map.error().describe());
    return std::nullopt;
  }
  if (!populate(system, *map)) {
    fmt::print(stderr, "mk-bench replica: filling the map failed\n");
    return std::nullopt;
  }
  auto reader = [](Kernel& k, Replicated<BenchMap> m, std::size_t n, bool linearizable) {
    return read_loop(k, std::move(m), n, linearizable);
  };
  auto writer = [](Kernel& k, Replicated<BenchMap> m, std::size_t n) {
    return update_loop(k, std::move(m), n);
  };
  Rates rates;
  rates.read = ops_per_second(on_every_kernel(system, reader, *map, reads, true), reads);
  rates.local_read = ops_per_second(on_every_kernel(system, reader, *map, reads, false), reads);
  rates.update = ops_per_second(on_every_kernel(system, writer, *map, updates), updates);
  return rates;
}

/// Core counts to measure: every usable core; in a sweep also 2, 4, 8, ... below it.
std::vector<std::size_t> core_counts(std::size_t usable, bool sweep) {
  std::vector<std::size_t> counts;
  if (sweep) {
    for (std::size_t n = 2; n < usable; n *= 2)
      counts.push_back(n);
  }
  counts.push_back(usable);
  return counts;
}

/// Measures the maps with one kernel (or thread) on each of `cores`; `scope` goes into every
/// result name ("" for every usable core, the names the README quotes).
void measure_cores(const std::vector<CoreId>& cores, const std::string& scope,
                   const Options& options, Report& report) {
  Config config;
  config.cores = cores;
  if (cores.size() == 1) {
    config.cores.assign(2, cores.front());
    config.kernels_per_core = 2;
  }
  const std::size_t repetitions = options.quick ? 3 : 7;
  const std::size_t reads = options.quick ? 1'000'000 : 10'000'000;
  const std::size_t updates = options.quick ? 5'000 : 50'000;
  std::vector<double> mk_reads, mk_local_reads, locked_reads, mk_updates, locked_updates;
  std::vector<double> process_reads;
  for (std::size_t r = 0; r < repetitions; ++r) {
    // Threads first, with no kernel running, so the two never share a core.
    locked_reads.push_back(shared_mutex_reads(cores, reads));
    locked_updates.push_back(mutex_updates(cores, updates));
    auto threads = measure_rates(config, Isolation::threads, reads, updates);
    auto processes = measure_rates(config, Isolation::processes, reads, updates);
    if (!threads || !processes) return;
    // A failed read or update makes a rate meaningless: leave it out rather than report it.
    if (threads->read > 0) mk_reads.push_back(threads->read);
    if (threads->local_read > 0) mk_local_reads.push_back(threads->local_read);
    if (threads->update > 0) mk_updates.push_back(threads->update);
    if (processes->read > 0) process_reads.push_back(processes->read);
  }
  const auto name = [&](std::string_view what, std::string_view figure) {
    return fmt::format("{}.{}{}", what, scope, figure);
  };
  report.add(
      {name("shared_mutex", "read_ops"), median(locked_reads), "op/s", std::nullopt, std::nullopt});
  if (!mk_reads.empty()) {
    report.add({name("replica", "read_ops"), median(mk_reads), "op/s",
                name("shared_mutex", "read_ops"), Target{Target::Kind::at_least, 5.0}});
  }
  if (!mk_local_reads.empty()) {
    report.add({name("replica", "local_read_ops"), median(mk_local_reads), "op/s",
                name("shared_mutex", "read_ops"), std::nullopt});
  }
  // Kernels as processes: the same reads, each kernel's replica in its own address space.
  if (!process_reads.empty()) {
    report.add({name("process.replica", "read_ops"), median(process_reads), "op/s",
                name("replica", "read_ops"), std::nullopt});
  }
  report.add(
      {name("mutex", "update_ops"), median(locked_updates), "op/s", std::nullopt, std::nullopt});
  if (!mk_updates.empty()) {
    report.add({name("replica", "update_ops"), median(mk_updates), "op/s",
                name("mutex", "update_ops"), std::nullopt});
  }
}

}  // namespace

void run_replica(const Options& options, Report& report) {
  auto skb = Skb::discover();
  if (!skb) {
    fmt::print(stderr, "mk-bench replica: {}\n", skb.error().describe());
    return;
  }
  const std::vector<CoreId>& usable = skb->usable_cores();
  fmt::print(
      stderr,
      "mk-bench replica: a map of {} keys, ordered protocol over multicast; one kernel\n"
      "  (or thread) per usable core (cores_N: on the first N); reads are co_await read(k, f),\n"
      "  f a lookup (local_read: local(k, f), no wait for agreed updates); updates\n"
      "  keep {} proposals in flight per kernel\n",
      kKeys, kWindow);
  for (std::size_t n : core_counts(usable.size(), options.sweep)) {
    std::vector<CoreId> cores = usable;
    cores.resize(n);
    measure_cores(cores, n == usable.size() ? "" : fmt::format("cores_{}.", n), options, report);
  }
}

}  // namespace mk::bench
