// NameService: register, unregister, lookup, watch, and their bad input.
#include "mk/naming.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "mk/simulation.h"
#include "runtime/runtime_test_util.h"
#include "test_scale.h"

namespace naming_test {

using mk::Errc;
using mk::Kernel;
using mk::NameEvent;
using mk::NameService;
using mk::Task;

struct Fixture {
  std::unique_ptr<mk::System> system;
  std::optional<NameService> names;

  /// register_name from a task on kernel `on`; System::run's own error if it fails.
  mk::Result<void> register_on(mk::KernelId on, std::string name, std::string value) {
    auto done = system->run(on, [ns = *names, name, value](Kernel& k) -> Task<mk::Result<void>> {
      co_return co_await ns.register_name(k, name, value);
    });
    if (!done) return std::move(done).error();
    return std::move(*done);
  }
  /// lookup from a task on kernel `on`; System::run's own error if it fails.
  mk::Result<std::string> lookup_on(mk::KernelId on, std::string name) {
    auto done = system->run(on, [ns = *names, name](Kernel& k) -> Task<mk::Result<std::string>> {
      co_return co_await ns.lookup(k, name);
    });
    if (!done) return std::move(done).error();
    return std::move(*done);
  }
};

Fixture start(std::size_t kernels = 8, mk::NameServiceOptions options = {}) {
  Fixture f;
  f.system = mk::test::boot(mk::test::config_for(kernels));
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

/// What a watcher took from an overflowing watch.
struct Seen {
  std::vector<NameEvent> events;
  std::vector<mk::Error> errors;
};

/// A bad name and what its error must say.
struct Case {
  std::string name;
  std::string says;
};

bool mentions(const mk::Error& e, const std::string& text) {
  return e.message.find(text) != std::string::npos;
}

TEST(Naming, RegisteredNameIsSeenByLookupOnEveryKernel) {
  auto f = start();
  ASSERT_TRUE(f.names);
  ASSERT_TRUE(f.register_on(2, "svc/fs", "kernel-2").ok());
  for (mk::KernelId id = 0; id < 8; ++id) {
    auto value = f.lookup_on(id, "svc/fs");
    ASSERT_TRUE(value.ok()) << "kernel " << id << ": " << value.error().describe();
    EXPECT_EQ(*value, "kernel-2");
  }
}

TEST(Naming, RegisterOfATakenNameFailsAndKeepsTheFirstValue) {
  auto f = start();
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

TEST(Naming, UnregisterOfAMissingNameFails) {
  auto f = start();
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  auto steps = f.system->run(3, [ns](Kernel& k) -> Task<std::vector<mk::Result<void>>> {
    std::vector<mk::Result<void>> out;
    out.push_back(co_await ns.unregister(k, "ghost"));
    out.push_back(co_await ns.register_name(k, "ghost", "boo"));
    out.push_back(co_await ns.unregister(k, "ghost"));
    out.push_back(co_await ns.unregister(k, "ghost"));
    out.push_back(co_await ns.register_name(k, "ghost", "again"));
    co_return out;
  });
  ASSERT_TRUE(steps.ok());
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

TEST(Naming, LookupSendsNoMessage) {
  auto f = start();
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  ASSERT_TRUE(f.register_on(0, "here", "v").ok());
  auto counts = f.system->run(5, [ns](Kernel& k) -> Task<Counts> {
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
  });
  ASSERT_TRUE(counts.ok());
  EXPECT_TRUE(counts->all_ok);
  EXPECT_EQ(counts->after_lookups, counts->before_lookups);
  // The counter does move when the kernel talks: an update sends at least its proposal.
  EXPECT_GT(counts->after_register, counts->after_lookups);
}

TEST(Naming, MaximalNamesAndBinaryValuesRoundTrip) {
  auto f = start(2);
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  const std::string name(mk::kMaxNameLength, 'n');
  std::string value(mk::kMaxValueSize, '\0');
  for (std::size_t i = 0; i < value.size(); ++i)
    value[i] = static_cast<char>(i * 37);
  auto got = f.system->run(0, [ns, name, value](Kernel& k) -> Task<mk::Result<std::string>> {
    auto made = co_await ns.register_name(k, name, value);
    if (!made) co_return std::move(made).error();
    auto empty = co_await ns.register_name(k, "empty-value", "");
    if (!empty) co_return std::move(empty).error();
    co_return co_await ns.lookup(k, name);
  });
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->ok()) << got->error().describe();
  EXPECT_EQ(**got, value);
  auto empty = f.lookup_on(1, "empty-value");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(Naming, BadNamesAndValuesAreRejectedWithTheReason) {
  auto f = start(2);
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  const std::vector<Case> cases{
      {"", "name is empty"},
      {std::string(mk::kMaxNameLength + 1, 'x'), "64 bytes, over the limit of 63"},
      {"has space", "character 0x20 at index 3"},
      {std::string("nul\0x", 5), "character 0x00 at index 3"},
      {"caf\xc3\xa9", "character 0xc3 at index 3"},
      {"semi;colon", "character 0x3b at index 4"},
  };
  for (const Case& c : cases) {
    auto results = f.system->run(0, [ns, c](Kernel& k) -> Task<std::vector<mk::Error>> {
      std::vector<mk::Error> out;
      auto reg = co_await ns.register_name(k, c.name, "v");
      out.push_back(reg ? mk::Error{Errc::internal, "accepted"} : reg.error());
      auto unreg = co_await ns.unregister(k, c.name);
      out.push_back(unreg ? mk::Error{Errc::internal, "accepted"} : unreg.error());
      auto look = co_await ns.lookup(k, c.name);
      out.push_back(look ? mk::Error{Errc::internal, "accepted"} : look.error());
      auto now = ns.lookup_now(k, c.name);
      out.push_back(now ? mk::Error{Errc::internal, "accepted"} : now.error());
      co_return out;
    });
    ASSERT_TRUE(results.ok());
    for (const mk::Error& e : *results) {
      EXPECT_EQ(e.code, Errc::invalid_argument) << e.describe();
      EXPECT_TRUE(mentions(e, c.says)) << "expected '" << c.says << "' in: " << e.describe();
    }
  }
  auto value = f.register_on(0, "ok-name", std::string(mk::kMaxValueSize + 1, 'v'));
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.error().code, Errc::too_large);
  EXPECT_TRUE(mentions(value.error(), "65 bytes, over the limit of 64"));
  // Nothing of the rejected calls reached the table.
  auto applied = f.system->run(
      1, [ns](Kernel& k) -> Task<mk::Result<std::uint64_t>> { co_return ns.sequence(k); });
  ASSERT_TRUE(applied.ok() && applied->ok());
  EXPECT_EQ(**applied, 0u);
}

TEST(Naming, BadOptionsAndPrefixesAreRejected) {
  auto f = start(2);
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

  NameService ns = *f.names;
  auto errors = f.system->run(0, [ns](Kernel& k) -> Task<std::vector<mk::Error>> {
    std::vector<mk::Error> out;
    for (auto [prefix, capacity] : {std::pair<std::string, std::size_t>{"bad prefix", 8},
                                    {"ok/", 0},
                                    {"ok/", mk::kMaxWatchCapacity + 1}}) {
      auto w = ns.watch(k, prefix, mk::WatchOptions{capacity});
      out.push_back(w ? mk::Error{Errc::internal, "accepted"} : w.error());
    }
    co_return out;
  });
  ASSERT_TRUE(errors.ok());
  ASSERT_EQ(errors->size(), 3u);
  for (const auto& e : *errors)
    EXPECT_EQ(e.code, Errc::invalid_argument) << e.describe();
  EXPECT_TRUE(mentions((*errors)[0], "prefix 'bad prefix': character 0x20 at index 3"));
  EXPECT_TRUE(mentions((*errors)[1], "options.capacity"));
  EXPECT_TRUE(mentions((*errors)[2], "options.capacity"));
}

TEST(Naming, NonMembersAreTurnedAway) {
  mk::NameServiceOptions options;
  options.replica.kernels = {0, 1, 2};
  auto f = start(4, options);
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  auto errors = f.system->run(3, [ns](Kernel& k) -> Task<std::vector<mk::Error>> {
    std::vector<mk::Error> out;
    auto reg = co_await ns.register_name(k, "x", "v");
    out.push_back(reg ? mk::Error{Errc::internal, "accepted"} : reg.error());
    auto look = co_await ns.lookup(k, "x");
    out.push_back(look ? mk::Error{Errc::internal, "accepted"} : look.error());
    auto now = ns.lookup_now(k, "x");
    out.push_back(now ? mk::Error{Errc::internal, "accepted"} : now.error());
    auto w = ns.watch(k, "");
    out.push_back(w ? mk::Error{Errc::internal, "accepted"} : w.error());
    co_return out;
  });
  ASSERT_TRUE(errors.ok());
  for (const auto& e : *errors)
    EXPECT_EQ(e.code, Errc::invalid_argument) << e.describe();
}

/// Watches `prefix` on kernel `id` and collects `count` events (or the first error). The watch
/// is made after a lookup of `catch_up`, so that every change completed before is already
/// applied on the kernel and not reported.
struct Watcher {
  std::atomic<bool> ready{false};
  std::atomic<bool> done{false};
  std::vector<NameEvent> events;
  std::optional<mk::Error> failure;
  std::uint64_t start_sequence = 0;
};

void watch_on(mk::System& system, mk::KernelId id, NameService ns, std::string catch_up,
              std::string prefix, std::size_t count, Watcher& out) {
  auto spawned = system.spawn(id, [ns, catch_up, prefix, count, &out](Kernel& k) -> Task<void> {
    (void)co_await ns.lookup(k, catch_up);
    auto watch = ns.watch(k, prefix);
    if (!watch) {
      out.failure = watch.error();
      out.done = true;
      out.ready = true;
      co_return;
    }
    out.start_sequence = watch->start_sequence();
    out.ready = true;
    while (out.events.size() < count) {
      auto event = co_await watch->next();
      if (!event) {
        out.failure = event.error();
        break;
      }
      out.events.push_back(*event);
    }
    out.done = true;
  });
  ASSERT_TRUE(spawned.ok());
  mk::test::wait_until([&out] { return out.ready.load(); });
}

TEST(Naming, WatchSeesEveryLaterChangeInOrderOnAnotherKernel) {
  auto f = start();
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  // A change applied on the watcher's kernel before the watch is not reported.
  ASSERT_TRUE(f.register_on(2, "svc/early", "0").ok());
  constexpr std::size_t kRounds = mk::test::scaled(50);
  // Each round: register svc/<i>, register other/<i> (not watched), fail to register svc/<i>
  // again (no change), unregister svc/<i>: two reported changes per round.
  Watcher svc, all;
  watch_on(*f.system, 5, ns, "svc/early", "svc/", 2 * kRounds, svc);
  watch_on(*f.system, 7, ns, "svc/early", "", 3 * kRounds, all);
  auto made = f.system->run(2, [ns](Kernel& k) -> Task<mk::Result<void>> {
    for (std::size_t i = 0; i < kRounds; ++i) {
      const std::string n = std::to_string(i);
      if (auto r = co_await ns.register_name(k, "svc/" + n, "v" + n); !r) co_return r;
      if (auto r = co_await ns.register_name(k, "other/" + n, "o" + n); !r) co_return r;
      if (auto r = co_await ns.register_name(k, "svc/" + n, "dup"); r) {
        co_return mk::error(Errc::internal, "a taken name was registered");
      }
      if (auto r = co_await ns.unregister(k, "svc/" + n); !r) co_return r;
    }
    co_return mk::Result<void>();
  });
  ASSERT_TRUE(made.ok());
  ASSERT_TRUE(made->ok()) << made->error().describe();
  mk::test::wait_until([&] { return svc.done.load() && all.done.load(); });
  ASSERT_FALSE(svc.failure) << svc.failure->describe();
  ASSERT_FALSE(all.failure) << all.failure->describe();
  EXPECT_EQ(svc.start_sequence, 1u);
  EXPECT_EQ(all.start_sequence, 1u);

  ASSERT_EQ(svc.events.size(), 2 * kRounds);
  for (std::size_t i = 0; i < kRounds; ++i) {
    const std::string n = std::to_string(i);
    // Sequence numbers: early was 1; round i's changes are 2+3i, 3+3i, 4+3i.
    EXPECT_EQ(svc.events[2 * i],
              (NameEvent{NameEvent::Kind::registered, "svc/" + n, "v" + n, 2 + 3 * i}));
    EXPECT_EQ(svc.events[2 * i + 1],
              (NameEvent{NameEvent::Kind::unregistered, "svc/" + n, "v" + n, 4 + 3 * i}));
  }
  ASSERT_EQ(all.events.size(), 3 * kRounds);
  for (std::size_t i = 0; i < all.events.size(); ++i) {
    EXPECT_EQ(all.events[i].sequence, 2 + i) << "every change, once, in order";
  }
  EXPECT_EQ(all.events[1].name, "other/0");
}

TEST(Naming, WatchThatFallsBehindReportsOverflowNotASilentDrop) {
  auto f = start(2);
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  auto seen = f.system->run(1, [ns](Kernel& k) -> Task<mk::Result<Seen>> {
    auto watch = ns.watch(k, "", mk::WatchOptions{4});
    if (!watch) co_return watch.error();
    for (int i = 0; i < 10; ++i) {
      if (auto r = co_await ns.register_name(k, "n" + std::to_string(i), "v"); !r) {
        co_return std::move(r).error();
      }
    }
    Seen s;
    for (int i = 0; i < 6; ++i) {
      auto event = co_await watch->next();
      if (event) {
        s.events.push_back(*event);
      } else {
        s.errors.push_back(event.error());
      }
    }
    co_return s;
  });
  ASSERT_TRUE(seen.ok());
  ASSERT_TRUE(seen->ok()) << seen->error().describe();
  ASSERT_EQ((*seen)->events.size(), 4u);
  for (std::uint64_t i = 0; i < 4; ++i)
    EXPECT_EQ((*seen)->events[i].sequence, i + 1);
  ASSERT_EQ((*seen)->errors.size(), 2u) << "the watch stays ended";
  for (const auto& e : (*seen)->errors) {
    EXPECT_EQ(e.code, Errc::full);
    EXPECT_TRUE(mentions(e, "6 changes from sequence 5")) << e.describe();
  }
}

TEST(Naming, WatchIsUsedOnItsOwnKernelOnly) {
  auto f = start(2);
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

TEST(Naming, JoiningKernelGetsTheTableAndServesLookups) {
  mk::NameServiceOptions options;
  options.replica.kernels = {0, 1, 2};
  auto f = start(4, options);
  ASSERT_TRUE(f.names);
  NameService ns = *f.names;
  auto joined = f.system->run(0, [ns](Kernel& k) -> Task<mk::Result<void>> {
    for (int i = 0; i < 5; ++i) {
      if (auto r = co_await ns.register_name(k, "pre/" + std::to_string(i), "v"); !r) co_return r;
    }
    co_return co_await ns.join(k, 3);
  });
  ASSERT_TRUE(joined.ok());
  ASSERT_TRUE(joined->ok()) << joined->error().describe();
  auto seen = f.system->run(3, [ns](Kernel& k) -> Task<mk::Result<std::string>> {
    auto late = co_await ns.register_name(k, "post", "w");
    if (!late) co_return std::move(late).error();
    auto early = co_await ns.lookup(k, "pre/4");
    if (!early) co_return early;
    auto mine = co_await ns.lookup(k, "post");
    if (!mine) co_return mine;
    co_return *early + *mine;
  });
  ASSERT_TRUE(seen.ok());
  ASSERT_TRUE(seen->ok()) << seen->error().describe();
  EXPECT_EQ(**seen, "vw");
}

/// "s<i>", built by appending: GCC 12 warns (-Wrestrict, wrongly) on "s" + std::to_string(i).
std::string simulated_name(std::size_t i) {
  std::string name = "s";
  name += std::to_string(i);
  return name;
}

TEST(Naming, WatchesUnderTheSimulatorSeeTheirOwnKernelsChangesOnce) {
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

namespace naming_test {

TEST(Naming, AFailedMemberIsRemovedAndTheTableGoesOn) {
  auto f = start(4);
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
  auto members = f.system->run(3, [ns = *f.names](Kernel& k) -> Task<std::vector<mk::KernelId>> {
    co_return ns.members(k);
  });
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(*members, (std::vector<mk::KernelId>{0, 1, 3}));
}

}  // namespace naming_test
