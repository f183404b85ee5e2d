// CapabilityService: memory from allocation to another kernel's read, revoke across kernels,
// retype, CNodes, endpoints, and every refusal the API documents; kernels as threads and as
// processes.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mk/capability_service.h"
#include "runtime/messages.h"
#include "runtime/runtime_test_util.h"

namespace capability_test {

using mk::CapabilityMemory;
using mk::CapabilityService;
using mk::CapGrant;
using mk::CapRights;
using mk::CapSlot;
using mk::CapType;
using mk::Errc;
using mk::Kernel;
using mk::Task;
using mk::test::code_of;
using mk::test::kSucceeded;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPoolBytes = 64 * kPage;

/// A slot or a count as a task's value, or -100 minus the error's code when there is none, so
/// that the two never meet.
template <class R>
std::int64_t slot_or_code(const R& result) {
  return result ? static_cast<std::int64_t>(*result) : -100 - code_of(result);
}

struct Fixture {
  std::optional<CapabilityMemory> memory;
  std::unique_ptr<mk::System> system;
  std::optional<CapabilityService> caps;

  /// One page of node 0 allocated on kernel `on`: its slot, or the error's code.
  std::int64_t allocate_on(mk::KernelId on) {
    auto done = system->run(
        on,
        [](Kernel& k, CapabilityService c) -> Task<std::int64_t> {
          co_return slot_or_code(co_await c.allocate(k, kPage, 0));
        },
        *caps);
    return done ? *done : -100 - code_of(done);
  }
  /// Kernel 0 transfers a copy of its `slot` to kernel `to`, which accepts it: the slot there,
  /// or the error's code.
  std::int64_t give(CapSlot slot, mk::KernelId to) {
    auto grant = system->run(
        0,
        [](Kernel& k, CapabilityService c, CapSlot s, mk::KernelId dest)
            -> Task<mk::Result<CapGrant>> { co_return co_await c.transfer(k, s, dest); },
        *caps, slot, to);
    if (!grant) return -100 - code_of(grant);
    if (!*grant) return -100 - code_of(*grant);
    auto accepted = system->run(
        to,
        [](Kernel& k, CapabilityService c, CapGrant g) -> Task<std::int64_t> {
          co_return slot_or_code(co_await c.accept(k, g));
        },
        *caps, **grant);
    return accepted ? *accepted : -100 - code_of(accepted);
  }
  /// What identify says of `slot` on kernel `on`: kSucceeded or the error's code.
  std::int64_t identify_on(mk::KernelId on, CapSlot slot) {
    auto done = system->run(
        on,
        [](Kernel& k, CapabilityService c, CapSlot s) -> Task<std::int64_t> {
          co_return code_of(co_await c.identify(k, s));
        },
        *caps, slot);
    return done ? *done : -100 - code_of(done);
  }
  /// revoke of `slot` on kernel 0: how many were removed, or the error's code.
  std::int64_t revoke_on_0(CapSlot slot) {
    auto done = system->run(
        0,
        [](Kernel& k, CapabilityService c, CapSlot s) -> Task<std::int64_t> {
          co_return slot_or_code(co_await c.revoke(k, s));
        },
        *caps, slot);
    return done ? *done : -100 - code_of(done);
  }
};

/// Memory first, so that kernel processes forked by boot map it too.
Fixture start(mk::Config config, mk::CapabilityOptions options = {}) {
  Fixture f;
  const mk::NodeBytes pool{0, kPoolBytes};
  auto memory = CapabilityMemory::create(std::span(&pool, 1));
  EXPECT_TRUE(memory.ok()) << memory.error().describe();
  if (!memory) return f;
  f.memory = *memory;
  f.system = mk::test::boot(std::move(config));
  if (!f.system) return f;
  auto made = CapabilityService::create(*f.system, *f.memory, std::move(options));
  EXPECT_TRUE(made.ok()) << made.error().describe();
  if (made) f.caps = *made;
  return f;
}

/// A value from a task, or -1000 - the run's own error code when the task could not run.
template <class T>
T value_of(mk::Result<T> result, T otherwise) {
  EXPECT_TRUE(result.ok()) << result.error().describe();
  return result ? *result : otherwise;
}

class Capabilities : public mk::test::BothIsolations {};

TEST_P(Capabilities, BytesWrittenOnOneKernelAreReadOnAnotherAfterTransfer) {
  auto f = start(config(4));
  ASSERT_TRUE(f.caps);
  auto sent = f.system->run(
      0,
      [](Kernel& k, CapabilityService caps) -> Task<mk::Result<CapGrant>> {
        auto ram = co_await caps.allocate(k, 2 * kPage, 0);
        if (!ram) co_return ram.error();
        auto frames = co_await caps.retype(k, *ram, CapType::frame, 0, kPage, 2);
        if (!frames) co_return frames.error();
        const char text[] = "across kernels";
        auto wrote =
            co_await caps.write(k, (*frames)[1], 100, std::as_bytes(std::span(text, sizeof text)));
        if (!wrote) co_return wrote.error();
        co_return co_await caps.transfer(k, (*frames)[1], 2, CapRights::read);
      },
      *f.caps);
  ASSERT_TRUE(sent.ok()) << sent.error().describe();
  ASSERT_TRUE(sent->ok()) << sent->error().describe();
  const CapGrant grant = **sent;
  EXPECT_EQ(grant.from, 0u);
  EXPECT_EQ(grant.to, 2u);
  auto read = f.system->run(
      2,
      [](Kernel& k, CapabilityService caps, CapGrant g) -> Task<mk::Result<std::string>> {
        auto slot = co_await caps.accept(k, g);
        if (!slot) co_return slot.error();
        auto info = co_await caps.identify(k, *slot);
        if (!info) co_return info.error();
        if (info->type != CapType::frame || info->rights != CapRights::read ||
            info->size != kPage || info->node != 0) {
          co_return mk::error(Errc::internal, "identify reported the wrong capability");
        }
        std::vector<std::byte> out(15);
        auto got = co_await caps.read(k, *slot, 100, out);
        if (!got) co_return got.error();
        auto denied = co_await caps.write(k, *slot, 0, out);
        if (denied || denied.error().code != Errc::permission_denied) {
          co_return mk::error(Errc::internal, "a read-only Frame was written");
        }
        co_return std::string(reinterpret_cast<const char*>(out.data()));
      },
      *f.caps, grant);
  ASSERT_TRUE(read.ok()) << read.error().describe();
  ASSERT_TRUE(read->ok()) << read->error().describe();
  EXPECT_EQ(**read, "across kernels");
}

TEST_P(Capabilities, RevokeRemovesCopiesOnEveryKernel) {
  auto f = start(config(4));
  ASSERT_TRUE(f.caps);
  // Kernel 0 holds RAM and passes copies to 1, 2 and 3, which each copy theirs once more.
  const std::int64_t ram = f.allocate_on(0);
  ASSERT_GE(ram, 0);
  const auto root = static_cast<CapSlot>(ram);
  std::vector<std::pair<CapSlot, CapSlot>> held(4);
  for (mk::KernelId to = 1; to < 4; ++to) {
    const std::int64_t accepted = f.give(root, to);
    ASSERT_GE(accepted, 0) << "kernel " << to;
    auto copied = f.system->run(
        to,
        [](Kernel& k, CapabilityService caps, CapSlot slot) -> Task<std::int64_t> {
          co_return slot_or_code(co_await caps.copy(k, slot));
        },
        *f.caps, static_cast<CapSlot>(accepted));
    ASSERT_TRUE(copied.ok());
    ASSERT_GE(*copied, 0) << "kernel " << to;
    held[to] = {static_cast<CapSlot>(accepted), static_cast<CapSlot>(*copied)};
  }
  EXPECT_EQ(f.revoke_on_0(root), 6);
  for (mk::KernelId on = 1; on < 4; ++on) {
    EXPECT_EQ(f.identify_on(on, held[on].first), code_of(Errc::not_found)) << "kernel " << on;
    EXPECT_EQ(f.identify_on(on, held[on].second), code_of(Errc::not_found)) << "kernel " << on;
    auto used = f.system->run(
        on,
        [](Kernel& k, CapabilityService caps) -> Task<std::int64_t> {
          co_return static_cast<std::int64_t>(*caps.used_slots(k));
        },
        *f.caps);
    ASSERT_TRUE(used.ok());
    EXPECT_EQ(*used, 0) << "kernel " << on;
  }
  EXPECT_EQ(f.identify_on(0, root), kSucceeded) << "revoke keeps the capability it was called on";
}

TEST_P(Capabilities, LastReferenceReturnsTheMemoryToThePool) {
  auto f = start(config(2));
  ASSERT_TRUE(f.caps);
  auto free_bytes = f.system->run(
      1,
      [](Kernel& k, CapabilityService caps) -> Task<std::vector<std::int64_t>> {
        std::vector<std::int64_t> out;
        const auto free_now = [&] {
          return static_cast<std::int64_t>(caps.memory_usage(k, 0)->free_bytes);
        };
        out.push_back(free_now());
        auto ram = co_await caps.allocate(k, 3 * kPage, 0);
        if (!ram) co_return out;
        auto copy = co_await caps.copy(k, *ram);
        auto frame = co_await caps.retype(k, *ram, CapType::frame, kPage, kPage, 1);
        if (!copy || !frame) co_return out;
        out.push_back(free_now());
        (void)co_await caps.remove(k, *ram);
        (void)co_await caps.remove(k, *copy);
        out.push_back(free_now());  // the Frame still holds the RAM's memory
        (void)co_await caps.remove(k, frame->front());
        out.push_back(free_now());
        co_return out;
      },
      *f.caps);
  ASSERT_TRUE(free_bytes.ok());
  const auto full = static_cast<std::int64_t>(kPoolBytes);
  const auto less = full - static_cast<std::int64_t>(3 * kPage);
  EXPECT_EQ(*free_bytes, (std::vector<std::int64_t>{full, less, less, full}));
}

TEST_P(Capabilities, RetypeRefusesOverlapsWithLiveObjectsThroughAnyCopy) {
  auto f = start(config(2));
  ASSERT_TRUE(f.caps);
  auto codes = f.system->run(
      0,
      [](Kernel& k, CapabilityService caps) -> Task<std::vector<std::int64_t>> {
        std::vector<std::int64_t> out;
        auto ram = co_await caps.allocate(k, 4 * kPage, 0);
        auto copy = co_await caps.copy(k, *ram);
        auto first = co_await caps.retype(k, *ram, CapType::frame, 0, 2 * kPage, 1);
        out.push_back(code_of(first));
        out.push_back(code_of(co_await caps.retype(k, *copy, CapType::frame, kPage, kPage, 1)));
        out.push_back(code_of(co_await caps.retype(k, *copy, CapType::frame, 2 * kPage, kPage, 2)));
        out.push_back(code_of(co_await caps.retype(k, *ram, CapType::frame, 3 * kPage, kPage, 2)));
        out.push_back(code_of(co_await caps.retype(k, *ram, CapType::frame, 100, kPage, 1)));
        out.push_back(code_of(co_await caps.retype(k, *ram, CapType::endpoint, 0, kPage, 1)));
        out.push_back(
            code_of(co_await caps.retype(k, first->front(), CapType::frame, 0, kPage, 1)));
        (void)co_await caps.remove(k, first->front());
        out.push_back(code_of(co_await caps.retype(k, *copy, CapType::frame, kPage, kPage, 1)));
        co_return out;
      },
      *f.caps);
  ASSERT_TRUE(codes.ok());
  EXPECT_EQ(*codes,
            (std::vector<std::int64_t>{
                kSucceeded, code_of(Errc::conflict), kSucceeded, code_of(Errc::invalid_argument),
                code_of(Errc::invalid_argument), code_of(Errc::invalid_argument),
                code_of(Errc::invalid_argument), kSucceeded}));
}

TEST_P(Capabilities, ForgedStaleAndUnderprivilegedSlotsAreRefused) {
  mk::CapabilityOptions options;
  options.cspace_slots = 8;
  auto f = start(config(3), options);
  ASSERT_TRUE(f.caps);
  auto codes = f.system->run(
      1,
      [](Kernel& k, CapabilityService caps) -> Task<std::vector<std::int64_t>> {
        std::vector<std::int64_t> out;
        out.push_back(code_of(co_await caps.identify(k, 8)));  // outside the CSpace
        out.push_back(code_of(co_await caps.identify(k, 3)));  // empty
        auto ram = co_await caps.allocate(k, kPage, 0);
        auto frame = co_await caps.retype(k, *ram, CapType::frame, 0, kPage, 1);
        const CapSlot f0 = frame->front();
        auto reader = co_await caps.mint(k, f0, CapRights::read);
        out.push_back(code_of(co_await caps.mint(k, *reader, CapRights::read | CapRights::write)));
        out.push_back(code_of(co_await caps.transfer(k, *reader, 2)));  // no grant right
        auto granter = co_await caps.mint(k, f0, CapRights::read | CapRights::grant);
        out.push_back(code_of(co_await caps.transfer(k, *granter, 2, CapRights::all)));
        out.push_back(code_of(co_await caps.transfer(k, 7, 2)));   // not held
        out.push_back(code_of(co_await caps.transfer(k, f0, 1)));  // to itself
        out.push_back(code_of(co_await caps.transfer(k, f0, 9)));  // not a member
        std::vector<std::byte> buffer(8);
        out.push_back(code_of(co_await caps.write(k, *reader, 0, buffer)));
        out.push_back(code_of(co_await caps.read(k, f0, kPage - 4, buffer)));  // past the end
        out.push_back(code_of(co_await caps.read(k, *ram, 0, buffer)));        // not a Frame
        out.push_back(code_of(co_await caps.retype(k, *ram, CapType::frame, 0, kPage, 1)));
        out.push_back(code_of(co_await caps.revoke(k, *ram)));
        out.push_back(code_of(co_await caps.read(k, f0, 0, buffer)));  // stale after revoke
        out.push_back(code_of(co_await caps.read(k, *reader, 0, buffer)));
        out.push_back(code_of(co_await caps.mint(k, *ram, CapRights::read)));
        out.push_back(code_of(co_await caps.remove(k, *ram)));
        out.push_back(code_of(co_await caps.remove(k, *ram)));
        co_return out;
      },
      *f.caps);
  ASSERT_TRUE(codes.ok());
  const auto code = [](Errc e) { return code_of(e); };
  EXPECT_EQ(
      *codes,
      (std::vector<std::int64_t>{
          code(Errc::invalid_argument), code(Errc::not_found), code(Errc::permission_denied),
          code(Errc::permission_denied), code(Errc::permission_denied), code(Errc::not_found),
          code(Errc::invalid_argument), code(Errc::invalid_argument), code(Errc::permission_denied),
          code(Errc::invalid_argument), code(Errc::invalid_argument), code(Errc::conflict),
          kSucceeded, code(Errc::not_found), code(Errc::not_found), kSucceeded, kSucceeded,
          code(Errc::not_found)}));
}

TEST_P(Capabilities, GrantsAreCheckedByTheReceivingKernel) {
  auto f = start(config(3));
  ASSERT_TRUE(f.caps);
  auto grant = f.system->run(
      0,
      [](Kernel& k, CapabilityService caps) -> Task<mk::Result<CapGrant>> {
        auto ram = co_await caps.allocate(k, kPage, 0);
        if (!ram) co_return ram.error();
        co_return co_await caps.transfer(k, *ram, 1);
      },
      *f.caps);
  ASSERT_TRUE(grant.ok() && grant->ok());
  const CapGrant real = **grant;
  auto codes = f.system->run(
      1,
      [](Kernel& k, CapabilityService caps, CapGrant g) -> Task<std::vector<std::int64_t>> {
        std::vector<std::int64_t> out;
        CapGrant guessed = g;
        guessed.secret ^= 1;
        out.push_back(code_of(co_await caps.accept(k, guessed)));
        CapGrant other_number = g;
        other_number.transfer += 1;
        out.push_back(code_of(co_await caps.accept(k, other_number)));
        CapGrant other_sender = g;
        other_sender.from = 2;
        out.push_back(code_of(co_await caps.accept(k, other_sender)));
        CapGrant other_service = g;
        other_service.service ^= 0x100;
        out.push_back(code_of(co_await caps.accept(k, other_service)));
        out.push_back(code_of(co_await caps.accept(k, g)));
        out.push_back(code_of(co_await caps.accept(k, g)));  // accepted already
        co_return out;
      },
      *f.caps, real);
  ASSERT_TRUE(codes.ok());
  EXPECT_EQ(*codes,
            (std::vector<std::int64_t>{code_of(Errc::not_found), code_of(Errc::not_found),
                                       code_of(Errc::not_found), code_of(Errc::invalid_argument),
                                       kSucceeded, code_of(Errc::not_found)}));
  auto elsewhere = f.system->run(
      2,
      [](Kernel& k, CapabilityService caps, CapGrant g) -> Task<std::int64_t> {
        co_return code_of(co_await caps.accept(k, g));
      },
      *f.caps, real);
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_EQ(*elsewhere, code_of(Errc::invalid_argument)) << "a grant for kernel 1 on kernel 2";
}

TEST_P(Capabilities, RevokeBeforeAcceptLeavesTheGrantDead) {
  auto f = start(config(2));
  ASSERT_TRUE(f.caps);
  auto grant = f.system->run(
      0,
      [](Kernel& k, CapabilityService caps) -> Task<mk::Result<CapGrant>> {
        auto ram = co_await caps.allocate(k, kPage, 0);
        if (!ram) co_return ram.error();
        auto copy = co_await caps.copy(k, *ram);
        if (!copy) co_return copy.error();
        auto granted = co_await caps.transfer(k, *copy, 1);
        auto revoked = co_await caps.revoke(k, *ram);
        if (!revoked || *revoked != 2)
          co_return mk::error(Errc::internal, "revoke missed the grant");
        co_return granted;
      },
      *f.caps);
  ASSERT_TRUE(grant.ok() && grant->ok());
  auto accepted = f.system->run(
      1,
      [](Kernel& k, CapabilityService caps, CapGrant g) -> Task<std::int64_t> {
        co_return code_of(co_await caps.accept(k, g));
      },
      *f.caps, **grant);
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(*accepted, code_of(Errc::not_found));
}

TEST_P(Capabilities, AnAttachedCNodeAddsSlotsThatGoWithIt) {
  mk::CapabilityOptions options;
  options.cspace_slots = 4;
  auto f = start(config(2), options);
  ASSERT_TRUE(f.caps);
  auto steps = f.system->run(
      0,
      [](Kernel& k, CapabilityService caps) -> Task<std::vector<std::int64_t>> {
        std::vector<std::int64_t> out;
        auto ram = co_await caps.allocate(k, kPage, 0);                           // slot 0
        auto cnode = co_await caps.retype(k, *ram, CapType::cnode, 0, kPage, 1);  // slot 1
        auto first = co_await caps.attach(k, cnode->front());
        out.push_back(first ? static_cast<std::int64_t>(*first) : code_of(first));
        out.push_back(code_of(co_await caps.attach(k, cnode->front())));
        for (int i = 0; i < 3; ++i)
          (void)co_await caps.copy(k, *ram);  // slots 2, 3, then 4
        auto in_cnode = co_await caps.copy(k, *ram);
        out.push_back(in_cnode ? static_cast<std::int64_t>(*in_cnode) : code_of(in_cnode));
        out.push_back(static_cast<std::int64_t>(*caps.used_slots(k)));
        (void)co_await caps.remove(k, cnode->front());
        out.push_back(code_of(co_await caps.identify(k, *in_cnode)));
        out.push_back(static_cast<std::int64_t>(*caps.used_slots(k)));
        co_return out;
      },
      *f.caps);
  ASSERT_TRUE(steps.ok());
  const auto slots = static_cast<std::int64_t>(kPage / mk::kCNodeSlotBytes);
  EXPECT_EQ(*steps, (std::vector<std::int64_t>{4, code_of(Errc::already_exists), 5, 6,
                                               code_of(Errc::invalid_argument), 3}))
      << "a CNode of " << slots << " slots";
}

TEST_P(Capabilities, AnEndpointSendsOnlyItsMessageType) {
  mk::Config boot_config = config(3);
  boot_config.setup = [](Kernel& k) -> mk::Result<void> {
    return k.handle<mk_test::Numbered>([&k](const mk_test::Numbered& m, const mk::MessageContext&) {
      mk::test::record(k, 7, m.number);
    });
  };
  auto f = start(std::move(boot_config));
  ASSERT_TRUE(f.caps);
  auto grant = f.system->run(
      1,
      [](Kernel& k, CapabilityService caps) -> Task<mk::Result<CapGrant>> {
        auto endpoint = co_await caps.make_endpoint(k, mk_test::Numbered::kType);
        if (!endpoint) co_return endpoint.error();
        auto sender = co_await caps.mint(k, *endpoint, CapRights::write | CapRights::grant);
        if (!sender) co_return sender.error();
        co_return co_await caps.transfer(k, *sender, 2, CapRights::write);
      },
      *f.caps);
  ASSERT_TRUE(grant.ok() && grant->ok());
  auto codes = f.system->run(
      2,
      [](Kernel& k, CapabilityService caps, CapGrant g) -> Task<std::vector<std::int64_t>> {
        auto slot = co_await caps.accept(k, g);
        if (!slot) co_return std::vector<std::int64_t>{code_of(slot)};
        std::vector<std::int64_t> out;
        out.push_back(code_of(co_await caps.send(k, *slot, mk_test::Echo{5, 2})));
        out.push_back(code_of(co_await caps.send(k, *slot, mk_test::Numbered{2, 42})));
        auto powerless = co_await caps.mint(k, *slot, CapRights::none);
        if (!powerless) co_return std::vector<std::int64_t>{code_of(powerless)};
        out.push_back(code_of(co_await caps.send(k, *powerless, mk_test::Numbered{2, 43})));
        co_return out;
      },
      *f.caps, **grant);
  ASSERT_TRUE(codes.ok()) << codes.error().describe();
  EXPECT_EQ(*codes, (std::vector<std::int64_t>{code_of(Errc::invalid_argument), kSucceeded,
                                               code_of(Errc::permission_denied)}));
  auto got = mk::test::collect(*f.system, 1, 7);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, 42);
}

TEST_P(Capabilities, AFullCSpaceRefusesAndLosesNothing) {
  mk::CapabilityOptions options;
  options.cspace_slots = 2;
  auto f = start(config(2), options);
  ASSERT_TRUE(f.caps);
  auto codes = f.system->run(
      0,
      [](Kernel& k, CapabilityService caps) -> Task<std::vector<std::int64_t>> {
        std::vector<std::int64_t> out;
        auto ram = co_await caps.allocate(k, kPage, 0);
        out.push_back(code_of(co_await caps.copy(k, *ram)));
        out.push_back(code_of(co_await caps.copy(k, *ram)));
        out.push_back(code_of(co_await caps.allocate(k, kPage, 0)));
        out.push_back(static_cast<std::int64_t>(caps.memory_usage(k, 0)->free_bytes));
        out.push_back(code_of(co_await caps.allocate(k, kPage, 5)));
        co_return out;
      },
      *f.caps);
  ASSERT_TRUE(codes.ok());
  EXPECT_EQ(*codes, (std::vector<std::int64_t>{kSucceeded, code_of(Errc::full), code_of(Errc::full),
                                               static_cast<std::int64_t>(kPoolBytes - kPage),
                                               code_of(Errc::not_found)}));
}

TEST_P(Capabilities, AKernelFailingDuringARevokeNeitherHangsItNorKeepsWhatItRemoved) {
  auto f = start(config(4));
  ASSERT_TRUE(f.caps);
  const std::int64_t ram = f.allocate_on(0);
  ASSERT_GE(ram, 0);
  const auto root = static_cast<CapSlot>(ram);
  std::vector<CapSlot> held(4);
  for (mk::KernelId to = 1; to < 4; ++to) {
    const std::int64_t accepted = f.give(root, to);
    ASSERT_GE(accepted, 0) << "kernel " << to;
    held[to] = static_cast<CapSlot>(accepted);
  }
  // The revoke races with kernel 3's failure: it may commit before the view change or in the
  // new view, but it completes, and it removes the survivors' copies either way.
  std::int64_t revoked = -1;
  std::thread revoker([&] { revoked = f.revoke_on_0(root); });
  EXPECT_TRUE(f.system->declare_failed(3).ok());
  revoker.join();
  EXPECT_EQ(revoked, 3) << "kernel 3's copy is in the table too, and goes with the rest";
  for (mk::KernelId on = 1; on < 3; ++on) {
    EXPECT_EQ(f.identify_on(on, held[on]), code_of(Errc::not_found)) << "kernel " << on;
  }
  EXPECT_GE(f.allocate_on(2), 0) << "the survivors go on";
}

TEST_P(Capabilities, ReclaimReturnsWhatAFailedKernelHeld) {
  auto f = start(config(3));
  ASSERT_TRUE(f.caps);
  // Kernel 2 allocates memory of its own: a root nobody else can revoke.
  ASSERT_GE(f.allocate_on(2), 0);
  auto before = f.system->run(
      2,
      [](Kernel& k, CapabilityService caps) -> Task<std::int64_t> {
        auto ram = co_await caps.allocate(k, 2 * kPage, 0);
        if (!ram) co_return -1;
        (void)co_await caps.retype(k, *ram, CapType::frame, 0, kPage, 1);
        co_return static_cast<std::int64_t>(caps.memory_usage(k, 0)->free_bytes);
      },
      *f.caps);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*before, static_cast<std::int64_t>(kPoolBytes - 3 * kPage));
  auto refused = f.system->run(
      0,
      [](Kernel& k, CapabilityService caps) -> Task<std::int64_t> {
        co_return slot_or_code(co_await caps.reclaim(k, 2));
      },
      *f.caps);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(*refused, -100 - code_of(Errc::invalid_argument)) << "kernel 2 is still a member";
  ASSERT_TRUE(f.system->declare_failed(2).ok());
  auto reclaimed = f.system->run(
      0,
      [](Kernel& k, CapabilityService caps) -> Task<std::vector<std::int64_t>> {
        // The view change may still be under way: wait until kernel 2 is no member here.
        for (int i = 0; i < 10'000; ++i) {
          const auto members = caps.members(k);
          if (std::find(members.begin(), members.end(), 2u) == members.end()) break;
          co_await k.sleep_for(std::chrono::milliseconds(1));
        }
        auto removed = co_await caps.reclaim(k, 2);
        co_return std::vector<std::int64_t>{
            slot_or_code(removed), static_cast<std::int64_t>(caps.memory_usage(k, 0)->free_bytes)};
      },
      *f.caps);
  ASSERT_TRUE(reclaimed.ok());
  EXPECT_EQ(*reclaimed, (std::vector<std::int64_t>{3, static_cast<std::int64_t>(kPoolBytes)}));
}

TEST_P(Capabilities, ARamRequestNamesANodeOrARule) {
  auto f = start(config(2));
  ASSERT_TRUE(f.caps);
  auto codes = f.system->run(
      1,
      [](Kernel& k, CapabilityService caps) -> Task<std::vector<std::int64_t>> {
        std::vector<std::int64_t> out;
        for (const mk::MemoryRequest& request :
             {mk::MemoryRequest::largest_node(), mk::MemoryRequest::nearest_to(k.core()),
              mk::MemoryRequest::numa_node(0), mk::MemoryRequest::numa_node(999),
              mk::MemoryRequest::largest_node().of_kind("no-such-kind")}) {
          auto slot = co_await caps.allocate(k, kPage, request);
          if (!slot) {
            out.push_back(code_of(slot));
            continue;
          }
          auto info = co_await caps.identify(k, *slot);
          out.push_back(info ? info->node : code_of(info));
        }
        co_return out;
      },
      *f.caps);
  ASSERT_TRUE(codes.ok());
  // This host's nodes are 0 only, or the pool is on 0 alone: a rule that picks another node
  // finds no pool there.
  ASSERT_EQ(codes->size(), 5u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE((*codes)[i] == 0 || (*codes)[i] == code_of(Errc::not_found)) << "request " << i;
  }
  EXPECT_EQ((*codes)[2], 0) << "node 0 by number";
  EXPECT_EQ((*codes)[3], code_of(Errc::not_found));
  EXPECT_EQ((*codes)[4], code_of(Errc::not_found));
}

INSTANTIATE_TEST_SUITE_P(Isolations, Capabilities, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

TEST(CapabilityOptions, BadOptionsAreNamed) {
  const mk::NodeBytes pool{0, kPoolBytes};
  auto memory = CapabilityMemory::create(std::span(&pool, 1));
  ASSERT_TRUE(memory.ok());
  auto system = mk::test::boot(mk::test::config_for(2));
  ASSERT_TRUE(system);
  mk::CapabilityOptions zero_slots;
  zero_slots.cspace_slots = 0;
  auto refused = CapabilityService::create(*system, *memory, zero_slots);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("cspace_slots"), std::string::npos);
  mk::CapabilityOptions one_phase;
  one_phase.replica.protocol = mk::Protocol::one_phase;
  refused = CapabilityService::create(*system, *memory, one_phase);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("ordered"), std::string::npos);
  const mk::NodeBytes twice[] = {{0, kPage}, {0, kPage}};
  EXPECT_EQ(CapabilityMemory::create(twice).error().code, Errc::invalid_argument);
  EXPECT_EQ(CapabilityMemory::create(std::span<const mk::NodeBytes>()).error().code,
            Errc::invalid_argument);
}

TEST(CapabilityMemoryTest, FramesLieInTheNodesMemfd) {
  const mk::NodeBytes pool{0, kPoolBytes};
  auto memory = CapabilityMemory::create(std::span(&pool, 1));
  ASSERT_TRUE(memory.ok());
  ASSERT_NE(memory->pool(0), nullptr);
  EXPECT_EQ(memory->bytes(0).size(), kPoolBytes);
  EXPECT_EQ(memory->pool(1), nullptr);
  EXPECT_TRUE(memory->bytes(1).empty());
  auto found = CapabilityMemory::find(memory->id());
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->bytes(0).data(), memory->bytes(0).data());
  EXPECT_EQ(CapabilityMemory::find(memory->id() + 1000).error().code, Errc::not_found);
}

}  // namespace capability_test
