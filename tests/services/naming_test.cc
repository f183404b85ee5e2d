// NameService: register, unregister, lookup, watch, and their bad input; with kernels as
// threads and as processes.
#include "mk/naming.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mk/codec.h"
#include "mk/simulation.h"
#include "runtime/runtime_test_util.h"
#include "test_scale.h"

namespace naming_test {

/// What a watch on one kernel reported, kept on that kernel until the test collects it: a
/// kernel process cannot write it into the test's memory.
struct Watched {
  std::uint64_t start_sequence = 0;
  std::vector<mk::NameEvent> events;
  /// Why the watch ended before it saw every change it waited for; ok when it did not.
  mk::Result<void> failure;
};

}  // namespace naming_test

/// A NameEvent crosses back from a kernel process field by field.
template <>
struct mk::Codec<mk::NameEvent> {
  static void encode(const mk::NameEvent& event, std::vector<std::byte>& out) {
    auto fields = detail::encode_all(static_cast<std::uint8_t>(event.kind), event.sequence,
                                     event.name, event.value);
    out.insert(out.end(), fields.begin(), fields.end());
  }
  static Result<mk::NameEvent> decode(std::span<const std::byte> bytes) {
    auto fields = detail::decode_all<std::uint8_t, std::uint64_t, std::string, std::string>(bytes);
    if (!fields) return std::move(fields).error();
    auto& [kind, sequence, name, value] = *fields;
    if (kind > static_cast<std::uint8_t>(mk::NameEvent::Kind::unregistered)) {
      return error(Errc::parse_error, "NameEvent: kind " + std::to_string(kind));
    }
    return mk::NameEvent{static_cast<mk::NameEvent::Kind>(kind), std::move(name), std::move(value),
                         sequence};
  }
};

/// So does a Watched.
template <>
struct mk::Codec<naming_test::Watched> {
  static void encode(const naming_test::Watched& watched, std::vector<std::byte>& out) {
    auto fields = detail::encode_all(watched.start_sequence, watched.events, watched.failure);
    out.insert(out.end(), fields.begin(), fields.end());
  }
  static Result<naming_test::Watched> decode(std::span<const std::byte> bytes) {
    auto fields =
        detail::decode_all<std::uint64_t, std::vector<mk::NameEvent>, Result<void>>(bytes);
    if (!fields) return std::move(fields).error();
    auto& [start_sequence, events, failure] = *fields;
    return naming_test::Watched{start_sequence, std::move(events), std::move(failure)};
  }
};

namespace naming_test {

using mk::Errc;
using mk::Isolation;
using mk::Kernel;
using mk::NameEvent;
using mk::NameService;
using mk::Task;

struct Fixture {
  std::unique_ptr<mk::System> system;
  std::optional<NameService> names;

  /// register_name from a task on kernel `on`; System::run's own error if it fails.
  mk::Result<void> register_on(mk::KernelId on, std::string name, std::string value) {
    auto done = system->run(
        on,
        [](Kernel& k, NameService ns, std::string n, std::string v) -> Task<mk::Result<void>> {
          co_return co_await ns.register_name(k, n, v);
        },
        *names, std::move(name), std::move(value));
    if (!done) return std::move(done).error();
    return std::move(*done);
  }
  /// lookup from a task on kernel `on`; System::run's own error if it fails.
  mk::Result<std::string> lookup_on(mk::KernelId on, std::string name) {
    auto done = system->run(
        on,
        [](Kernel& k, NameService ns, std::string n) -> Task<mk::Result<std::string>> {
          co_return co_await ns.lookup(k, n);
        },
        *names, std::move(name));
    if (!done) return std::move(done).error();
    return std::move(*done);
  }
};

Fixture start(Isolation isolation, std::size_t kernels = 8, mk::NameServiceOptions options = {}) {
  Fixture f;
  f.system = mk::test::boot(mk::test::config_for(kernels, isolation));
  if (!f.system) return f;
  auto made = NameService::create(*f.system, std::move(options));
  EXPECT_TRUE(made.ok()) << made.error().describe();
  if (made) f.names = *made;
  return f;
}

/// Message counts around a run of lookups.
struct Counts {
  std::uint64_t before_lookups, after_lookups, after_register;
  bool all_ok;
};

/// A bad name and what its error must say.
struct Case {
  std::string name;
  std::string says;
};

bool mentions(const mk::Error& e, const std::string& text) {
  return e.message.find(text) != std::string::npos;
}

/// How a call that must be refused ended: its error, or ok when it was accepted. (A
/// Result<void>, so that it crosses back from a kernel process.)
template <class R>
mk::Result<void> refusal(const R& result) {
  if (result) return {};
  return result.error();
}

class Naming : public mk::test::BothIsolations {};

TEST_P(Naming, RegisteredNameIsSeenByLookupOnEveryKernel) {
  auto f = start(isolation());
  ASSERT_TRUE(f.names);
  ASSERT_TRUE(f.register_on(2, "svc/fs", "kernel-2").ok());
  for (mk::KernelId id = 0; id < 8; ++id) {
    auto value = f.lookup_on(id, "svc/fs");
    ASSERT_TRUE(value.ok()) << "kernel " << id << ": " << value.error().describe();
    EXPECT_EQ(*value, "kernel-2");
  }
}

TEST_P(Naming, RegisterOfATakenNameFailsAndKeepsTheFirstValue) {
  auto f = start(isolation());
  ASSERT_TRUE(f.names);
  ASSERT_TRUE(f.register_on(1, "dup", "one").ok());
  auto second = f.register_on(6, "dup", "two");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, Errc::already_exists);
  EXPECT_TRUE(mentions(second.error(), "'dup'")) << second.error().describe();
  auto value = f.lookup_on(6, "dup");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "one");
}

TEST_P(Naming, UnregisterOfAMissingNameFails) {
  auto f = start(isolation());
  ASSERT_TRUE(f.names);
  auto steps = f.system->run(
      3,
      [](Kernel& k, NameService ns) -> Task<std::vector<mk::Result<void>>> {
        std::vector<mk::Result<void>> out;
        out.push_back(co_await ns.unregister(k, "ghost"));
        out.push_back(co_await ns.register_name(k, "ghost", "boo"));
        out.push_back(co_await ns.unregister(k, "ghost"));
        out.push_back(co_await ns.unregister(k, "ghost"));
        out.push_back(co_await ns.register_name(k, "ghost", "again"));
        co_return out;
      },
      *f.names);
  ASSERT_TRUE(steps.ok()) << steps.error().describe();
  ASSERT_EQ(steps->size(), 5u);
  const auto& r = *steps;
  ASSERT_FALSE(r[0].ok());
  EXPECT_EQ(r[0].error().code, Errc::not_found);
  EXPECT_TRUE(mentions(r[0].error(), "'ghost'"));
  EXPECT_TRUE(r[1].ok());
  EXPECT_TRUE(r[2].ok());
  ASSERT_FALSE(r[3].ok());
  EXPECT_EQ(r[3].error().code, Errc::not_found);
  EXPECT_TRUE(r[4].ok()) << "a name is free again once unregistered";
  auto value = f.lookup_on(0, "ghost");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "again");
}

TEST_P(Naming, LookupSendsNoMessage) {
  auto f = start(isolation());
  ASSERT_TRUE(f.names);
  ASSERT_TRUE(f.register_on(0, "here", "v").ok());
  auto counts = f.system->run(
      5,
      [](Kernel& k, NameService ns) -> Task<Counts> {
        // Catch up first, so that the lookups measured need not wait for anything.
        (void)co_await ns.lookup(k, "here");
        Counts c{};
        c.all_ok = true;
        c.before_lookups = k.stats().messages_sent;
        for (std::size_t i = 0; i < mk::test::scaled(100); ++i) {
          auto found = co_await ns.lookup(k, "here");
          auto missing = co_await ns.lookup(k, "absent");
          auto now = ns.lookup_now(k, "here");
          c.all_ok = c.all_ok && found.ok() && *found == "v" && !missing.ok() &&
                     missing.error().code == Errc::not_found && now.ok() && *now == "v";
        }
        c.after_lookups = k.stats().messages_sent;
        (void)co_await ns.register_name(k, "there", "w");
        c.after_register = k.stats().messages_sent;
        co_return c;
      },
      *f.names);
  ASSERT_TRUE(counts.ok()) << counts.error().describe();
  EXPECT_TRUE(counts->all_ok);
  EXPECT_EQ(counts->after_lookups, counts->before_lookups);
  // The counter does move when the kernel talks: an update sends at least its proposal.
  EXPECT_GT(counts->after_register, counts->after_lookups);
}

TEST_P(Naming, MaximalNamesAndBinaryValuesRoundTrip) {
  auto f = start(isolation(), 2);
  ASSERT_TRUE(f.names);
  const std::string name(mk::kMaxNameLength, 'n');
  std::string value(mk::kMaxValueSize, '\0');
  for (std::size_t i = 0; i < value.size(); ++i)
    value[i] = static_cast<char>(i * 37);
  auto got = f.system->run(
      0,
      [](Kernel& k, NameService ns, std::string n, std::string v) -> Task<mk::Result<std::string>> {
        auto made = co_await ns.register_name(k, n, v);
        if (!made) co_return std::move(made).error();
        auto empty = co_await ns.register_name(k, "empty-value", "");
        if (!empty) co_return std::move(empty).error();
        co_return co_await ns.lookup(k, n);
      },
      *f.names, name, value);
  ASSERT_TRUE(got.ok()) << got.error().describe();
  ASSERT_TRUE(got->ok()) << got->error().describe();
  EXPECT_EQ(**got, value);
  auto empty = f.lookup_on(1, "empty-value");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST_P(Naming, BadNamesAndValuesAreRejectedWithTheReason) {
  auto f = start(isolation(), 2);
  ASSERT_TRUE(f.names);
  const std::vector<Case> cases{
      {"", "name is empty"},
      {std::string(mk::kMaxNameLength + 1, 'x'), "64 bytes, over the limit of 63"},
      {"has space", "character 0x20 at index 3"},
      {std::string("nul\0x", 5), "character 0x00 at index 3"},
      {"caf\xc3\xa9", "character 0xc3 at index 3"},
      {"semi;colon", "character 0x3b at index 4"},
  };
  for (const Case& c : cases) {
    auto results = f.system->run(
        0,
        [](Kernel& k, NameService ns, std::string name) -> Task<std::vector<mk::Result<void>>> {
          std::vector<mk::Result<void>> out;
          out.push_back(refusal(co_await ns.register_name(k, name, "v")));
          out.push_back(refusal(co_await ns.unregister(k, name)));
          out.push_back(refusal(co_await ns.lookup(k, name)));
          out.push_back(refusal(ns.lookup_now(k, name)));
          co_return out;
        },
        *f.names, c.name);
    ASSERT_TRUE(results.ok()) << results.error().describe();
    ASSERT_EQ(results->size(), 4u);
    for (const mk::Result<void>& r : *results) {
      ASSERT_FALSE(r.ok()) << "accepted: '" << c.name << "'";
      EXPECT_EQ(r.error().code, Errc::invalid_argument) << r.error().describe();
      EXPECT_TRUE(mentions(r.error(), c.says))
          << "expected '" << c.says << "' in: " << r.error().describe();
    }
  }
  auto value = f.register_on(0, "ok-name", std::string(mk::kMaxValueSize + 1, 'v'));
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.error().code, Errc::too_large);
  EXPECT_TRUE(mentions(value.error(), "65 bytes, over the limit of 64"));
  // Nothing of the rejected calls reached the table.
  auto applied = f.system->run(
      1,
      [](Kernel& k, NameService ns) -> Task<mk::Result<std::uint64_t>> {
        co_return ns.sequence(k);
      },
      *f.names);
  ASSERT_TRUE(applied.ok() && applied->ok());
  EXPECT_EQ(**applied, 0u);
}

TEST_P(Naming, BadOptionsAndPrefixesAreRejected) {
  auto f = start(isolation(), 2);
  ASSERT_TRUE(f.names);
  mk::NameServiceOptions two_phase;
  two_phase.replica.protocol = mk::Protocol::two_phase;
  auto made = NameService::create(*f.system, two_phase);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().code, Errc::invalid_argument);
  EXPECT_TRUE(mentions(made.error(), "options.replica.protocol"));
  mk::NameServiceOptions stranger;
  stranger.replica.kernels = {0, 9};
  made = NameService::create(*f.system, stranger);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().code, Errc::invalid_argument) << made.error().describe();

  auto errors = f.system->run(
      0,
      [](Kernel& k, NameService ns) -> Task<std::vector<mk::Result<void>>> {
        std::vector<mk::Result<void>> out;
        for (auto [prefix, capacity] : {std::pair<std::string, std::size_t>{"bad prefix", 8},
                                        {"ok/", 0},
                                        {"ok/", mk::kMaxWatchCapacity + 1}}) {
          out.push_back(refusal(ns.watch(k, prefix, mk::WatchOptions{capacity})));
        }
        co_return out;
      },
      *f.names);
  ASSERT_TRUE(errors.ok()) << errors.error().describe();
  ASSERT_EQ(errors->size(), 3u);
  for (const auto& r : *errors) {
    ASSERT_FALSE(r.ok()) << "accepted";
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << r.error().describe();
  }
  EXPECT_TRUE(mentions((*errors)[0].error(), "prefix 'bad prefix': character 0x20 at index 3"));
  EXPECT_TRUE(mentions((*errors)[1].error(), "options.capacity"));
  EXPECT_TRUE(mentions((*errors)[2].error(), "options.capacity"));
}

TEST_P(Naming, NonMembersAreTurnedAway) {
  mk::NameServiceOptions options;
  options.replica.kernels = {0, 1, 2};
  auto f = start(isolation(), 4, options);
  ASSERT_TRUE(f.names);
  auto errors = f.system->run(
      3,
      [](Kernel& k, NameService ns) -> Task<std::vector<mk::Result<void>>> {
        std::vector<mk::Result<void>> out;
        out.push_back(refusal(co_await ns.register_name(k, "x", "v")));
        out.push_back(refusal(co_await ns.lookup(k, "x")));
        out.push_back(refusal(ns.lookup_now(k, "x")));
        out.push_back(refusal(ns.watch(k, "")));
        co_return out;
      },
      *f.names);
  ASSERT_TRUE(errors.ok()) << errors.error().describe();
  ASSERT_EQ(errors->size(), 4u);
  for (const auto& r : *errors) {
    ASSERT_FALSE(r.ok()) << "accepted";
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << r.error().describe();
  }
}

/// The Watched of the watch on this kernel, and whether its watcher has finished.
struct Watching {
  explicit Watching(Kernel&) {}
  Watched watched;
  bool done = false;
};

/// Takes `count` events from `watch` (or up to its first error) into the kernel's Watching.
Task<void> take_events(Kernel& k, mk::NameWatch watch, std::size_t count) {
  Watching& out = k.extension<Watching>();
  while (out.watched.events.size() < count) {
    auto event = co_await watch.next();
    if (!event) {
      out.watched.failure = std::move(event).error();
      break;
    }
    out.watched.events.push_back(std::move(*event));
  }
  out.done = true;
}

/// Watches `prefix` on kernel `id` and leaves a task there taking `count` events (collect them
/// with watched_on). The watch is made after a lookup of `catch_up`, so that every change
/// completed before is already applied on the kernel and not reported. The watch exists when
/// this returns.
mk::Result<void> watch_on(mk::System& system, mk::KernelId id, NameService ns, std::string catch_up,
                          std::string prefix, std::size_t count) {
  auto made = system.run(
      id,
      [](Kernel& k, NameService service, std::string seen, std::string watched,
         std::size_t events) -> Task<mk::Result<void>> {
        (void)co_await service.lookup(k, seen);
        auto watch = service.watch(k, watched);
        if (!watch) co_return std::move(watch).error();
        k.extension<Watching>().watched.start_sequence = watch->start_sequence();
        k.spawn(take_events(k, std::move(*watch), events));
        co_return mk::Result<void>();
      },
      ns, std::move(catch_up), std::move(prefix), count);
  if (!made) return std::move(made).error();
  return std::move(*made);
}

/// What the watch watch_on left on kernel `id` reported, once its task has finished.
mk::Result<Watched> watched_on(mk::System& system, mk::KernelId id) {
  return system.run(id, [](Kernel& k) -> Task<Watched> {
    while (!k.extension<Watching>().done)
      co_await k.sleep_for(std::chrono::milliseconds(1));
    co_return k.extension<Watching>().watched;
  });
}

TEST_P(Naming, WatchSeesEveryLaterChangeInOrderOnAnotherKernel) {
  auto f = start(isolation());
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  // A change applied on the watcher's kernel before the watch is not reported.
  ASSERT_TRUE(f.register_on(2, "svc/early", "0").ok());
  constexpr std::size_t kRounds = mk::test::scaled(50);
  // Each round: register svc/<i>, register other/<i> (not watched), fail to register svc/<i>
  // again (no change), unregister svc/<i>: two reported changes per round.
  auto svc_watch = watch_on(*f.system, 5, ns, "svc/early", "svc/", 2 * kRounds);
  ASSERT_TRUE(svc_watch.ok()) << svc_watch.error().describe();
  auto all_watch = watch_on(*f.system, 7, ns, "svc/early", "", 3 * kRounds);
  ASSERT_TRUE(all_watch.ok()) << all_watch.error().describe();
  auto made = f.system->run(
      2,
      [](Kernel& k, NameService service) -> Task<mk::Result<void>> {
        for (std::size_t i = 0; i < kRounds; ++i) {
          const std::string n = std::to_string(i);
          if (auto r = co_await service.register_name(k, "svc/" + n, "v" + n); !r) co_return r;
          if (auto r = co_await service.register_name(k, "other/" + n, "o" + n); !r) co_return r;
          if (auto r = co_await service.register_name(k, "svc/" + n, "dup"); r) {
            co_return mk::error(Errc::internal, "a taken name was registered");
          }
          if (auto r = co_await service.unregister(k, "svc/" + n); !r) co_return r;
        }
        co_return mk::Result<void>();
      },
      ns);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  ASSERT_TRUE(made->ok()) << made->error().describe();
  auto svc = watched_on(*f.system, 5);
  ASSERT_TRUE(svc.ok()) << svc.error().describe();
  auto all = watched_on(*f.system, 7);
  ASSERT_TRUE(all.ok()) << all.error().describe();
  ASSERT_TRUE(svc->failure.ok()) << svc->failure.error().describe();
  ASSERT_TRUE(all->failure.ok()) << all->failure.error().describe();
  EXPECT_EQ(svc->start_sequence, 1u);
  EXPECT_EQ(all->start_sequence, 1u);

  ASSERT_EQ(svc->events.size(), 2 * kRounds);
  for (std::size_t i = 0; i < kRounds; ++i) {
    const std::string n = std::to_string(i);
    // Sequence numbers: early was 1; round i's changes are 2+3i, 3+3i, 4+3i.
    EXPECT_EQ(svc->events[2 * i],
              (NameEvent{NameEvent::Kind::registered, "svc/" + n, "v" + n, 2 + 3 * i}));
    EXPECT_EQ(svc->events[2 * i + 1],
              (NameEvent{NameEvent::Kind::unregistered, "svc/" + n, "v" + n, 4 + 3 * i}));
  }
  ASSERT_EQ(all->events.size(), 3 * kRounds);
  for (std::size_t i = 0; i < all->events.size(); ++i) {
    EXPECT_EQ(all->events[i].sequence, 2 + i) << "every change, once, in order";
  }
  EXPECT_EQ(all->events[1].name, "other/0");
}

TEST_P(Naming, WatchThatFallsBehindReportsOverflowNotASilentDrop) {
  auto f = start(isolation(), 2);
  ASSERT_TRUE(f.names);
  // Each next() as it ended, in order.
  auto seen = f.system->run(
      1,
      [](Kernel& k, NameService ns) -> Task<mk::Result<std::vector<mk::Result<NameEvent>>>> {
        auto watch = ns.watch(k, "", mk::WatchOptions{4});
        if (!watch) co_return watch.error();
        for (int i = 0; i < 10; ++i) {
          if (auto r = co_await ns.register_name(k, "n" + std::to_string(i), "v"); !r) {
            co_return std::move(r).error();
          }
        }
        std::vector<mk::Result<NameEvent>> nexts;
        for (int i = 0; i < 6; ++i)
          nexts.push_back(co_await watch->next());
        co_return nexts;
      },
      *f.names);
  ASSERT_TRUE(seen.ok()) << seen.error().describe();
  ASSERT_TRUE(seen->ok()) << seen->error().describe();
  std::vector<NameEvent> events;
  std::vector<mk::Error> errors;
  for (const auto& next : **seen) {
    if (next) {
      events.push_back(*next);
    } else {
      errors.push_back(next.error());
    }
  }
  ASSERT_EQ(events.size(), 4u);
  for (std::uint64_t i = 0; i < 4; ++i)
    EXPECT_EQ(events[i].sequence, i + 1);
  ASSERT_EQ(errors.size(), 2u) << "the watch stays ended";
  for (const auto& e : errors) {
    EXPECT_EQ(e.code, Errc::full);
    EXPECT_TRUE(mentions(e, "6 changes from sequence 5")) << e.describe();
  }
}

// Thread-only: a NameWatch lives in its kernel's memory and has no Codec, so with kernels as
// processes it cannot reach another kernel at all; the misuse checked here exists only when
// kernels share one address space.
TEST(NamingOnThreads, WatchIsUsedOnItsOwnKernelOnly) {
  auto f = start(Isolation::threads, 2);
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  auto watch = f.system->run(
      0, [ns](Kernel& k) -> Task<mk::Result<mk::NameWatch>> { co_return ns.watch(k, "x"); });
  ASSERT_TRUE(watch.ok() && watch->ok());
  mk::NameWatch w = std::move(**watch);
  auto misuse = f.system->run(
      1, [&w](Kernel&) -> Task<mk::Result<NameEvent>> { co_return co_await w.next(); });
  ASSERT_TRUE(misuse.ok());
  ASSERT_FALSE(misuse->ok());
  EXPECT_EQ(misuse->error().code, Errc::invalid_argument);
  EXPECT_TRUE(mentions(misuse->error(), "kernel that made it"));
}

TEST_P(Naming, JoiningKernelGetsTheTableAndServesLookups) {
  mk::NameServiceOptions options;
  options.replica.kernels = {0, 1, 2};
  auto f = start(isolation(), 4, options);
  ASSERT_TRUE(f.names);
  auto joined = f.system->run(
      0,
      [](Kernel& k, NameService ns) -> Task<mk::Result<void>> {
        for (int i = 0; i < 5; ++i) {
          if (auto r = co_await ns.register_name(k, "pre/" + std::to_string(i), "v"); !r) {
            co_return r;
          }
        }
        co_return co_await ns.join(k, 3);
      },
      *f.names);
  ASSERT_TRUE(joined.ok()) << joined.error().describe();
  ASSERT_TRUE(joined->ok()) << joined->error().describe();
  auto seen = f.system->run(
      3,
      [](Kernel& k, NameService ns) -> Task<mk::Result<std::string>> {
        auto late = co_await ns.register_name(k, "post", "w");
        if (!late) co_return std::move(late).error();
        auto early = co_await ns.lookup(k, "pre/4");
        if (!early) co_return early;
        auto mine = co_await ns.lookup(k, "post");
        if (!mine) co_return mine;
        co_return *early + *mine;
      },
      *f.names);
  ASSERT_TRUE(seen.ok()) << seen.error().describe();
  ASSERT_TRUE(seen->ok()) << seen->error().describe();
  EXPECT_EQ(**seen, "vw");
}

TEST_P(Naming, AFailedMemberIsRemovedAndTheTableGoesOn) {
  auto f = start(isolation(), 4);
  ASSERT_TRUE(f.names);
  ASSERT_TRUE(f.register_on(1, "svc/before", "one").ok());
  // The sequencer or not, kernel 2 fails: the others remove it and keep every name.
  ASSERT_TRUE(f.system->declare_failed(2).ok());
  for (mk::KernelId on : {0u, 1u, 3u}) {
    auto done = f.register_on(on, "svc/after" + std::to_string(on), "v");
    EXPECT_TRUE(done.ok()) << done.error().describe();
  }
  for (mk::KernelId on : {0u, 1u, 3u}) {
    auto before = f.lookup_on(on, "svc/before");
    ASSERT_TRUE(before.ok()) << before.error().describe();
    EXPECT_EQ(*before, "one");
    for (mk::KernelId from : {0u, 1u, 3u})
      EXPECT_TRUE(f.lookup_on(on, "svc/after" + std::to_string(from)).ok());
  }
  auto members = f.system->run(
      3,
      [](Kernel& k, NameService ns) -> Task<std::vector<mk::KernelId>> { co_return ns.members(k); },
      *f.names);
  ASSERT_TRUE(members.ok()) << members.error().describe();
  EXPECT_EQ(*members, (std::vector<mk::KernelId>{0, 1, 3}));
}

INSTANTIATE_TEST_SUITE_P(Isolations, Naming, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

/// "s<i>", built by appending: GCC 12 warns (-Wrestrict, wrongly) on "s" + std::to_string(i).
std::string simulated_name(std::size_t i) {
  std::string name = "s";
  name += std::to_string(i);
  return name;
}

// Thread-only: the simulator runs its kernels as threads.
TEST(NamingSimulated, WatchesUnderTheSimulatorSeeTheirOwnKernelsChangesOnce) {
  mk::SimulationOptions options;
  options.topology = "pack:2 numa:1 core:4 pu:1";
  options.kernels = 8;
  auto made_sim = mk::Simulation::create(options);
  ASSERT_TRUE(made_sim.ok()) << made_sim.error().describe();
  mk::Simulation& sim = **made_sim;
  auto made = sim.run(0, [](Kernel& k) { return NameService::create_async(k); });
  ASSERT_TRUE(made.ok() && made->ok());
  NameService ns = **made;
  // All kernels share one thread here: each change must still reach each watch once, from
  // its own kernel's replica.
  constexpr std::size_t kChanges = 20;
  std::vector<std::vector<NameEvent>> seen(8);
  for (mk::KernelId id : {3u, 6u, 7u}) {
    ASSERT_TRUE(sim.spawn(id,
                          [ns, &seen](Kernel& k) -> Task<void> {
                            auto watch = ns.watch(k, "");
                            if (!watch) co_return;
                            while (seen[k.id()].size() < kChanges) {
                              auto event = co_await watch->next();
                              if (!event) co_return;
                              seen[k.id()].push_back(*event);
                            }
                          })
                    .ok());
  }
  auto updated = sim.run(1, [ns](Kernel& k) -> Task<mk::Result<void>> {
    for (std::size_t i = 0; i < kChanges; ++i) {
      if (auto r = co_await ns.register_name(k, simulated_name(i), "v"); !r) co_return r;
    }
    co_return mk::Result<void>();
  });
  ASSERT_TRUE(updated.ok() && updated->ok());
  ASSERT_TRUE(sim.run_until_idle(std::chrono::seconds(10)).ok());
  for (mk::KernelId id : {3u, 6u, 7u}) {
    ASSERT_EQ(seen[id].size(), kChanges) << "kernel " << id;
    for (std::size_t i = 0; i < kChanges; ++i) {
      EXPECT_EQ(seen[id][i].sequence, i + 1);
      EXPECT_EQ(seen[id][i].name, simulated_name(i));
    }
  }
  EXPECT_TRUE(seen[0].empty() && seen[1].empty());
}

}  // namespace naming_test
