// kv_store: a replicated key-value service, found by name, with conflicting writes.
//
//   $ ./kv_store [kernels] [writes]
//
// `kernels` (default 8, at least 4) kernels share the machine's cores (8 kernels on a 2-core
// host: Config::kernels_per_core). All but the last two are the service: each keeps a replica
// of a std::map<std::string, std::string> (mk::Replicated with two-phase commit) and answers
// Get and Put requests. Reads are served by the answering kernel's own replica; a Put is a
// two-phase transaction that reserves its key, so two Puts of one key proposed on different
// kernels at once conflict and at most one commits; the loser retries with backoff. The
// service registers itself in the name service; the last two kernels are clients that are
// given nothing but the name service, look the service up by name, and write one shared
// ("hot") key and a key of their own from six writers at once, `writes` times each (default
// 20). The program then checks that conflicts happened and were retried, that no committed
// write was lost (the hot key's writes form one chain, each overwriting the one before), and
// that every replica holds the same map; it exits 1 otherwise.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mk/codec.h"
#include "mk/config.h"
#include "mk/kernel.h"
#include "mk/message_codec.h"
#include "mk/naming.h"
#include "mk/replicated.h"
#include "mk/system.h"
#include "mk/task.h"

using namespace std::chrono_literals;

namespace kv {

/// The replicated state machine: the map, updated by Puts.
struct KvStore {
  /// Sets `key` to `value`.
  struct Op {
    std::string key;
    std::string value;
  };
  /// What a Put returns to its proposer: the value it replaced.
  using Result = std::optional<std::string>;

  std::map<std::string, std::string> entries;

  Result apply(const Op& op) {
    std::string& slot = entries[op.key];
    Result previous = slot.empty() ? Result() : Result(slot);
    slot = op.value;
    return previous;
  }

  /// Runs before anything is applied (at prepare, on every replica): a bad Put aborts
  /// everywhere with this error.
  mk::Result<void> check(const Op& op) const {
    if (op.key.empty() || op.value.empty()) {
      return mk::error(mk::Errc::invalid_argument, "kv: empty key or value");
    }
    return {};
  }

  /// The keys a Put touches, for two-phase commit: Puts of one key conflict, Puts of different
  /// keys commute. The hash must be the same on every kernel, so it is spelled out (FNV-1a)
  /// rather than left to std::hash.
  void keys(const Op& op, std::vector<std::uint64_t>& out) const {
    std::uint64_t hash = 1469598103934665603ull;
    for (unsigned char c : op.key)
      hash = (hash ^ c) * 1099511628211ull;
    out.push_back(hash);
  }
};

/// The reply to a Put: the value it replaced, and how many tries it took.
struct PutReply {
  std::uint32_t attempts = 0;
  std::optional<std::string> previous;
};

/// A client's write, answered once it has committed on every replica.
struct Put {
  static constexpr mk::MessageType kType = 1;
  using Reply = PutReply;
  KvStore::Op entry;
};

/// A client's read of one key: its value, or nothing.
struct Get {
  static constexpr mk::MessageType kType = 2;
  using Reply = std::optional<std::string>;
  std::string key;
};

}  // namespace kv

// The Codecs: how the state (for a joining kernel) and an operation (in every agreement
// message) become bytes. decode rejects every malformed input with parse_error.

template <>
struct mk::Codec<kv::KvStore::Op> {
  static void encode(const kv::KvStore::Op& op, std::vector<std::byte>& out) {
    mk::encode_fields(out, op.key, op.value);
  }
  static mk::Result<kv::KvStore::Op> decode(std::span<const std::byte> bytes) {
    auto fields = mk::decode_fields<std::string, std::string>(bytes);
    if (!fields) return std::move(fields).error();
    auto& [key, value] = *fields;
    return kv::KvStore::Op{std::move(key), std::move(value)};
  }
};

template <>
struct mk::Codec<kv::KvStore> {
  // The map as its keys and values in turn.
  static void encode(const kv::KvStore& store, std::vector<std::byte>& out) {
    std::vector<std::string> flat;
    for (const auto& [key, value] : store.entries) {
      flat.push_back(key);
      flat.push_back(value);
    }
    mk::Codec<std::vector<std::string>>::encode(flat, out);
  }
  static mk::Result<kv::KvStore> decode(std::span<const std::byte> bytes) {
    auto flat = mk::Codec<std::vector<std::string>>::decode(bytes);
    if (!flat) return std::move(flat).error();
    if (flat->size() % 2 != 0) return mk::error(mk::Errc::parse_error, "kv: a key without value");
    kv::KvStore store;
    for (std::size_t i = 0; i < flat->size(); i += 2) {
      // Keys come out of a std::map in order, once each; anything else is not an encoding.
      std::string& key = (*flat)[i];
      if (!store.entries.empty() && key <= store.entries.rbegin()->first) {
        return mk::error(mk::Errc::parse_error, "kv: keys out of order");
      }
      store.entries.emplace_hint(store.entries.end(), std::move(key), std::move((*flat)[i + 1]));
    }
    return store;
  }
};

template <>
struct mk::Codec<kv::Put> {
  static void encode(const kv::Put& put, std::vector<std::byte>& out) {
    mk::Codec<kv::KvStore::Op>::encode(put.entry, out);
  }
  static mk::Result<kv::Put> decode(std::span<const std::byte> bytes) {
    auto entry = mk::Codec<kv::KvStore::Op>::decode(bytes);
    if (!entry) return std::move(entry).error();
    return kv::Put{std::move(*entry)};
  }
};

template <>
struct mk::Codec<kv::Get> {
  static void encode(const kv::Get& get, std::vector<std::byte>& out) {
    mk::Codec<std::string>::encode(get.key, out);
  }
  static mk::Result<kv::Get> decode(std::span<const std::byte> bytes) {
    auto key = mk::Codec<std::string>::decode(bytes);
    if (!key) return std::move(key).error();
    return kv::Get{std::move(*key)};
  }
};

template <>
struct mk::Codec<kv::PutReply> {
  static void encode(const kv::PutReply& reply, std::vector<std::byte>& out) {
    mk::encode_fields(out, reply.attempts, reply.previous);
  }
  static mk::Result<kv::PutReply> decode(std::span<const std::byte> bytes) {
    auto fields = mk::decode_fields<std::uint32_t, std::optional<std::string>>(bytes);
    if (!fields) return std::move(fields).error();
    return kv::PutReply{std::get<0>(*fields), std::move(std::get<1>(*fields))};
  }
};

namespace kv {

/// The service's name in the name service; its value is the range of front-end kernels.
constexpr std::string_view kServiceName = "svc/kv";
/// Tries of one Put before it gives up.
constexpr std::uint32_t kMaxAttempts = 64;

/// What a service kernel serves from: its handle on the replicated map, once the map exists.
/// The Get/Put handlers are registered at boot (Config::setup), before the map is created, so
/// they find it here, in the kernel's own state.
struct FrontEnd {
  explicit FrontEnd(mk::Kernel& k) : backoff(k.id() + 1) {}
  std::optional<mk::Replicated<KvStore>> store;
  std::minstd_rand backoff;  ///< Draws retry delays, differently on each kernel.
};

/// Get: a linearizable read of the local replica, no message sent.
mk::Task<mk::Result<std::optional<std::string>>> serve_get(const Get& get,
                                                           const mk::MessageContext& context) {
  mk::Kernel& k = context.kernel;
  const auto& store = k.extension<FrontEnd>().store;
  if (!store) co_return mk::error(mk::Errc::unavailable, "kv: not serving yet");
  // Named, not a temporary inside the co_await (see write()).
  auto value_of = [&key = get.key](const KvStore& state) -> std::optional<std::string> {
    auto found = state.entries.find(key);
    if (found == state.entries.end()) return std::nullopt;
    return found->second;
  };
  co_return co_await store->read(k, value_of);
}

/// Put: proposes the write; on a conflict with another kernel's write of the same key, backs
/// off and proposes again. The delay is drawn at random from a window that doubles with each
/// try (exponential backoff), so that writers that collided do not collide again in step.
mk::Task<mk::Result<PutReply>> serve_put(const Put& put, const mk::MessageContext& context) {
  mk::Kernel& k = context.kernel;
  FrontEnd& front_end = k.extension<FrontEnd>();
  const auto& store = front_end.store;
  if (!store) co_return mk::error(mk::Errc::unavailable, "kv: not serving yet");
  for (std::uint32_t attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    auto replaced = co_await store->propose(k, put.entry);
    if (replaced) co_return PutReply{attempt, std::move(*replaced)};
    if (replaced.error().code != mk::Errc::conflict) co_return std::move(replaced).error();
    const std::uint32_t window = 10u << std::min(attempt, 10u);  // microseconds
    co_await k.sleep_for(std::chrono::microseconds(front_end.backoff() % window));
  }
  co_return mk::error(mk::Errc::conflict, "kv: gave up after " + std::to_string(kMaxAttempts) +
                                              " conflicting tries on " + put.entry.key);
}

/// Config::setup: every kernel answers Get and Put (a kernel outside the service says so).
mk::Result<void> register_handlers(mk::Kernel& k) {
  if (auto added = k.handle<Get>(serve_get); !added) return added;
  return k.handle<Put>(serve_put);
}

/// The front-end kernels named by the service's entry, "first-last".
mk::Result<std::vector<mk::KernelId>> parse_front_ends(const std::string& value) {
  unsigned first = 0;
  unsigned last = 0;
  if (std::sscanf(value.c_str(), "%u-%u", &first, &last) != 2 || first > last) {
    return mk::error(mk::Errc::parse_error, "kv: bad service entry '" + value + "'");
  }
  std::vector<mk::KernelId> kernels;
  for (unsigned id = first; id <= last; ++id)
    kernels.push_back(id);
  return kernels;
}

/// What one writer saw.
struct WriterReport {
  std::uint64_t puts = 0;       ///< Puts that committed.
  std::uint64_t conflicts = 0;  ///< Tries that lost to a conflicting Put, then were retried.
  /// For each committed Put of the hot key, (value it replaced, value it wrote).
  std::vector<std::pair<std::string, std::string>> hot_chain;
  std::string service;                 ///< What the name service gave for kServiceName.
  std::optional<std::string> failure;  ///< The first error, if any.
};

/// A writer on a client kernel: looks the service up by name, then writes the hot key and a
/// key of its own `writes` times each, through the front-ends in turn, and reads its own key
/// back.
mk::Task<WriterReport> write(mk::Kernel& k, mk::NameService names, unsigned writer,
                             unsigned writes) {
  WriterReport report;
  auto entry = co_await names.lookup(k, kServiceName);
  if (!entry) {
    report.failure = "lookup: " + entry.error().describe();
    co_return report;
  }
  report.service = *entry;
  auto front_ends = parse_front_ends(*entry);
  if (!front_ends) {
    report.failure = front_ends.error().describe();
    co_return report;
  }
  const std::string own_key = "writer-" + std::to_string(writer);
  const std::array<std::string, 2> keys{"hot", own_key};
  for (unsigned i = 0; i < writes; ++i) {
    for (const std::string& key : keys) {
      const mk::KernelId to = (*front_ends)[(writer + i) % front_ends->size()];
      const std::string value = "w" + std::to_string(writer) + "." + std::to_string(i);
      // A named request, not a temporary in the co_await: GCC 12 mishandles the destruction
      // of brace-initialised temporaries with members that own memory inside co_await.
      const Put put{{key, value}};
      auto done = co_await k.call(to, put);
      if (!done) {
        report.failure =
            "put " + key + " on kernel " + std::to_string(to) + ": " + done.error().describe();
        co_return report;
      }
      ++report.puts;
      report.conflicts += done->attempts - 1;
      if (key == "hot") report.hot_chain.emplace_back(done->previous.value_or(""), value);
    }
  }
  const Get get{own_key};
  auto mine = co_await k.call(front_ends->back(), get);
  const std::string last = "w" + std::to_string(writer) + "." + std::to_string(writes - 1);
  if (!mine || *mine != last) {
    report.failure = "get " + own_key + ": not the value last written";
  }
  co_return report;
}

/// Registers the service: hands each front-end kernel its handle, then publishes the name.
mk::Result<void> start_service(mk::System& system, const mk::Replicated<KvStore>& store,
                               mk::NameService names, mk::KernelId front_ends) {
  for (mk::KernelId id = 0; id < front_ends; ++id) {
    auto served = system.run(id, [store](mk::Kernel& k) -> mk::Task<void> {
      k.extension<FrontEnd>().store = store;
      co_return;
    });
    if (!served) return std::move(served).error();
  }
  const std::string entry = "0-" + std::to_string(front_ends - 1);
  auto registered = system.run(
      0, [names, entry](mk::Kernel& k) { return names.register_name(k, kServiceName, entry); });
  if (!registered) return std::move(registered).error();
  return *registered;
}

/// The map as every front-end's replica has it, once it applied what it was told of.
mk::Result<std::vector<std::map<std::string, std::string>>> replicas(
    mk::System& system, const mk::Replicated<KvStore>& store, mk::KernelId front_ends) {
  std::vector<std::map<std::string, std::string>> maps;
  for (mk::KernelId id = 0; id < front_ends; ++id) {
    auto map = system.run(
        id, [store](mk::Kernel& k) -> mk::Task<mk::Result<std::map<std::string, std::string>>> {
          co_return co_await store.read(k, [](const KvStore& state) { return state.entries; });
        });
    if (!map) return std::move(map).error();
    if (!*map) return std::move(*map).error();
    maps.push_back(std::move(**map));
  }
  return maps;
}

/// True when the hot key's committed writes form one chain from "" (no value) to `final`:
/// each replaced the one committed before it, so none was lost or applied twice.
bool one_chain(const std::vector<WriterReport>& reports, const std::string& final) {
  std::map<std::string, std::string> next;  // replaced value -> value that replaced it
  std::size_t writes = 0;
  for (const WriterReport& report : reports) {
    for (const auto& [replaced, written] : report.hot_chain) {
      if (!next.emplace(replaced, written).second) return false;  // two writes replaced one
      ++writes;
    }
  }
  std::string at;
  for (std::size_t i = 0; i < writes; ++i) {
    auto found = next.find(at);
    if (found == next.end()) return false;
    at = found->second;
  }
  return at == final;
}

int run(std::size_t kernels, unsigned writes) {
  mk::Config config;
  auto skb = mk::Skb::discover();
  if (!skb) {
    std::fprintf(stderr, "%s\n", skb.error().describe().c_str());
    return 1;
  }
  const auto& usable = skb->usable_cores();
  for (std::size_t i = 0; i < kernels; ++i)
    config.cores.push_back(usable[i % usable.size()]);
  // More kernels than cores: they share, and sleep when idle instead of polling.
  config.kernels_per_core = (kernels + usable.size() - 1) / usable.size();
  config.setup = register_handlers;
  auto system = mk::System::boot(config);
  if (!system) {
    std::fprintf(stderr, "boot: %s\n", system.error().describe().c_str());
    return 1;
  }

  // Every kernel, clients included, is a member of the name service; only the front-ends
  // hold replicas of the map.
  const auto front_ends = static_cast<mk::KernelId>(kernels - 2);
  auto names = mk::NameService::create(**system);
  if (!names) {
    std::fprintf(stderr, "name service: %s\n", names.error().describe().c_str());
    return 1;
  }
  mk::ReplicaOptions options;
  options.protocol = mk::Protocol::two_phase;
  for (mk::KernelId id = 0; id < front_ends; ++id)
    options.kernels.push_back(id);
  auto store = mk::Replicated<KvStore>::create(**system, KvStore{}, options);
  if (!store) {
    std::fprintf(stderr, "create: %s\n", store.error().describe().c_str());
    return 1;
  }
  if (auto started = start_service(**system, *store, *names, front_ends); !started) {
    std::fprintf(stderr, "start: %s\n", started.error().describe().c_str());
    return 1;
  }

  // Six writers, three on each client kernel, each a System::run from a thread of its own.
  // The clients get the name service only: they find the front-ends by name.
  constexpr unsigned kWriters = 6;
  std::vector<mk::Result<WriterReport>> reports(kWriters, mk::error(mk::Errc::internal, ""));
  std::vector<std::thread> threads;
  for (unsigned writer = 0; writer < kWriters; ++writer) {
    const auto client = static_cast<mk::KernelId>(front_ends + writer % 2);
    threads.emplace_back([&, writer, client] {
      reports[writer] = (*system)->run(client, [ns = *names, writer, writes](mk::Kernel& k) {
        return write(k, ns, writer, writes);
      });
    });
  }
  for (auto& thread : threads)
    thread.join();

  bool ok = true;
  std::vector<WriterReport> seen;
  std::uint64_t puts = 0;
  std::uint64_t conflicts = 0;
  for (unsigned writer = 0; writer < kWriters; ++writer) {
    if (!reports[writer]) {
      std::fprintf(stderr, "writer %u: %s\n", writer, reports[writer].error().describe().c_str());
      ok = false;
      continue;
    }
    if (reports[writer]->failure) {
      std::fprintf(stderr, "writer %u: %s\n", writer, reports[writer]->failure->c_str());
      ok = false;
    }
    puts += reports[writer]->puts;
    conflicts += reports[writer]->conflicts;
    seen.push_back(std::move(*reports[writer]));
  }

  auto maps = replicas(**system, *store, front_ends);
  if (!maps) {
    std::fprintf(stderr, "read: %s\n", maps.error().describe().c_str());
    return 1;
  }
  const auto& first = maps->front();
  const bool agree =
      std::all_of(maps->begin(), maps->end(), [&](const auto& map) { return map == first; });
  const std::string hot = first.count("hot") ? first.at("hot") : "";
  const bool chained = one_chain(seen, hot);

  const std::string name(kServiceName);
  std::size_t hot_writes = 0;
  for (const WriterReport& report : seen)
    hot_writes += report.hot_chain.size();
  std::printf("%zu kernels on %zu cores: kernels 0-%u serve '%s', kernels %u-%u are clients\n",
              kernels, usable.size(), front_ends - 1, name.c_str(), front_ends, front_ends + 1);
  std::printf("the clients looked '%s' up by name: front-end kernels %s\n", name.c_str(),
              seen.empty() ? "?" : seen.front().service.c_str());
  std::printf("%llu puts committed by %u writers; %llu tries lost a conflict and were retried\n",
              static_cast<unsigned long long>(puts), kWriters,
              static_cast<unsigned long long>(conflicts));
  std::printf("hot key: %zu writes, %s, ending in %s; %zu replicas %s (%zu keys each)\n",
              hot_writes, chained ? "one unbroken chain" : "NOT ONE CHAIN", hot.c_str(),
              maps->size(), agree ? "agree" : "DISAGREE", first.size());
  if (conflicts == 0) std::fprintf(stderr, "no conflict happened: raise the writes\n");
  if (auto stopped = (*system)->shutdown(); !stopped) return 1;
  return ok && agree && chained && conflicts > 0 && puts == 2ull * kWriters * writes ? 0 : 1;
}

}  // namespace kv

int main(int argc, char** argv) {
  const std::size_t kernels = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 8;
  const unsigned writes = argc > 2 ? static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10)) : 20;
  if (kernels < 4 || writes == 0) {
    std::fprintf(stderr, "usage: kv_store [kernels >= 4] [writes >= 1]\n");
    return 2;
  }
  return kv::run(kernels, writes);
}
