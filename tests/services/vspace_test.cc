// VSpace: mappings on every spanned kernel's page table, the shootdown of unmap, protect,
// revoke of a mapped Frame, the pager, and every refusal leaving the page tables as they were;
// kernels as threads and as processes.
#include "mk/vspace.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mk/capability_service.h"
#include "runtime/runtime_test_util.h"

namespace vspace_test {

using mk::CapabilityMemory;
using mk::CapabilityService;
using mk::CapRights;
using mk::CapSlot;
using mk::CapType;
using mk::Errc;
using mk::Kernel;
using mk::KernelId;
using mk::Task;
using mk::VSpace;
using mk::test::code_of;
using mk::test::kSucceeded;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPoolBytes = 64 * kPage;
constexpr KernelId kKernels = 4;

struct Fixture {
  std::optional<CapabilityMemory> memory;
  std::unique_ptr<mk::System> system;
  std::optional<CapabilityService> caps;
  std::optional<VSpace> vspace;

  std::uintptr_t base() const {
    return reinterpret_cast<std::uintptr_t>(vspace->address_range().data());
  }

  /// A Frame of `pages` pages on kernel `on` whose first bytes are `text`: its slot, or -100
  /// minus the error's code.
  std::int64_t frame_on(KernelId on, std::size_t pages, const std::string& text) {
    auto done = system->run(
        on,
        [](Kernel& k, CapabilityService c, std::size_t n, std::string t) -> Task<std::int64_t> {
          auto ram = co_await c.allocate(k, n * kPage, 0);
          if (!ram) co_return -100 - code_of(ram);
          auto frames = co_await c.retype(k, *ram, CapType::frame, 0, n * kPage, 1);
          if (!frames) co_return -100 - code_of(frames);
          auto wrote = co_await c.write(k, frames->front(), 0, std::as_bytes(std::span(t)));
          if (!wrote) co_return -100 - code_of(wrote);
          co_return static_cast<std::int64_t>(frames->front());
        },
        *caps, pages, text);
    return done ? *done : -100 - code_of(done);
  }
  /// A copy of kernel 0's `slot` with `rights` (mint), in kernel 0's CSpace: its slot, or -100
  /// minus the error's code.
  std::int64_t mint_on_0(CapSlot slot, CapRights rights) {
    auto done = system->run(
        0,
        [](Kernel& k, CapabilityService c, CapSlot s, CapRights r) -> Task<std::int64_t> {
          auto copy = co_await c.mint(k, s, r);
          co_return copy ? static_cast<std::int64_t>(*copy) : -100 - code_of(copy);
        },
        *caps, slot, rights);
    return done ? *done : -100 - code_of(done);
  }
  /// map on kernel `on`: kSucceeded or the error's code.
  std::int64_t map_on(KernelId on, CapSlot frame, std::uintptr_t address, std::size_t size,
                      CapRights rights) {
    auto done = system->run(
        on,
        [](Kernel& k, VSpace v, CapSlot f, std::uintptr_t a, std::size_t s,
           CapRights r) -> Task<std::int64_t> { co_return code_of(co_await v.map(k, f, a, s, r)); },
        *vspace, frame, address, size, rights);
    return done ? *done : -100 - code_of(done);
  }
  /// unmap on kernel `on`: the bytes unmapped, or -100 minus the error's code.
  std::int64_t unmap_on(KernelId on, std::uintptr_t address, std::size_t size) {
    auto done = system->run(
        on,
        [](Kernel& k, VSpace v, std::uintptr_t a, std::size_t s) -> Task<std::int64_t> {
          auto unmapped = co_await v.unmap(k, a, s);
          co_return unmapped ? static_cast<std::int64_t>(*unmapped) : -100 - code_of(unmapped);
        },
        *vspace, address, size);
    return done ? *done : -100 - code_of(done);
  }
  /// protect on kernel `on`: kSucceeded or the error's code.
  std::int64_t protect_on(KernelId on, std::uintptr_t address, std::size_t size, CapRights rights) {
    auto done = system->run(
        on,
        [](Kernel& k, VSpace v, std::uintptr_t a, std::size_t s, CapRights r)
            -> Task<std::int64_t> { co_return code_of(co_await v.protect(k, a, s, r)); },
        *vspace, address, size, rights);
    return done ? *done : -100 - code_of(done);
  }
  /// The `size` bytes at `address` as kernel `on` loads them through its page table, or
  /// "error:<code>".
  std::string load_on(KernelId on, std::uintptr_t address, std::size_t size) {
    auto done = system->run(
        on,
        [](Kernel& k, VSpace v, std::uintptr_t a, std::size_t s) -> Task<std::string> {
          std::string out(s, '\0');
          auto loaded = co_await v.load(k, a, std::as_writable_bytes(std::span(out)));
          if (!loaded) co_return "error:" + std::string(mk::to_string(loaded.error().code));
          co_return out;
        },
        *vspace, address, size);
    return done ? *done : "run failed: " + done.error().describe();
  }
  /// store of `text` at `address` on kernel `on`: kSucceeded or the error's code.
  std::int64_t store_on(KernelId on, std::uintptr_t address, std::string text) {
    auto done = system->run(
        on,
        [](Kernel& k, VSpace v, std::uintptr_t a, std::string t) -> Task<std::int64_t> {
          co_return code_of(co_await v.store(k, a, std::as_bytes(std::span(t))));
        },
        *vspace, address, std::move(text));
    return done ? *done : -100 - code_of(done);
  }
  /// The mappings kernel `on`'s replica has, as (address - base, size, rights) triples.
  std::vector<std::uint64_t> mappings_on(KernelId on) {
    auto done = system->run(
        on,
        [](Kernel& k, VSpace v, std::uintptr_t b) -> Task<std::vector<std::uint64_t>> {
          std::vector<std::uint64_t> out;
          auto all = v.mappings(k);
          if (!all) co_return out;
          for (const mk::Mapping& m : *all) {
            out.push_back(m.address - b);
            out.push_back(m.size);
            out.push_back(static_cast<std::uint64_t>(m.rights));
          }
          co_return out;
        },
        *vspace, base());
    return done ? *done : std::vector<std::uint64_t>{999};
  }
};

/// Memory (and its address range) first, so that kernel processes forked by boot have them.
Fixture start(mk::Config config, std::vector<KernelId> spanned) {
  Fixture f;
  const mk::NodeBytes pool{0, kPoolBytes};
  auto memory = CapabilityMemory::create(std::span(&pool, 1), 64 * kPage);
  EXPECT_TRUE(memory.ok()) << memory.error().describe();
  if (!memory) return f;
  f.memory = *memory;
  f.system = mk::test::boot(std::move(config));
  if (!f.system) return f;
  auto made = CapabilityService::create(*f.system, *f.memory);
  EXPECT_TRUE(made.ok()) << made.error().describe();
  if (!made) return f;
  f.caps = *made;
  auto vspace = VSpace::create(*f.system, *f.caps, std::move(spanned));
  EXPECT_TRUE(vspace.ok()) << vspace.error().describe();
  if (vspace) f.vspace = *vspace;
  return f;
}

const std::string kFault = "error:page_fault";

class VSpaces : public mk::test::BothIsolations {};

TEST_P(VSpaces, MappedOnEveryKernelThenUnmapFaultsEverywhere) {
  auto f = start(config(kKernels), {0, 1, 2, 3});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(0, 1, "first words");
  ASSERT_GE(frame, 0);
  const std::uintptr_t at = f.base() + 4 * kPage;
  EXPECT_EQ(f.load_on(2, at, 5), kFault);  // nothing mapped yet
  ASSERT_EQ(f.map_on(0, static_cast<CapSlot>(frame), at, kPage, CapRights::read | CapRights::write),
            kSucceeded);
  for (KernelId on = 0; on < kKernels; ++on)
    EXPECT_EQ(f.load_on(on, at, 11), "first words") << "kernel " << on;
  // A store on one kernel is seen by the others: one frame behind every page table.
  ASSERT_EQ(f.store_on(3, at + 100, "from three"), kSucceeded);
  for (KernelId on = 0; on < kKernels; ++on)
    EXPECT_EQ(f.load_on(on, at + 100, 10), "from three") << "kernel " << on;
  EXPECT_EQ(f.unmap_on(1, at, kPage), static_cast<std::int64_t>(kPage));
  for (KernelId on = 0; on < kKernels; ++on) {
    EXPECT_EQ(f.load_on(on, at, 11), kFault) << "kernel " << on;
    EXPECT_TRUE(f.mappings_on(on).empty()) << "kernel " << on;
  }
  EXPECT_EQ(f.unmap_on(2, at, kPage), -100 - code_of(Errc::not_found));
}

TEST_P(VSpaces, UnmapOfPartOfAMappingSplitsIt) {
  auto f = start(config(2), {0, 1});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(0, 3, "abc");
  ASSERT_GE(frame, 0);
  const std::uintptr_t at = f.base();
  ASSERT_EQ(f.map_on(0, static_cast<CapSlot>(frame), at, 3 * kPage, CapRights::read), kSucceeded);
  EXPECT_EQ(f.unmap_on(1, at + kPage, kPage), static_cast<std::int64_t>(kPage));
  const std::vector<std::uint64_t> expected{0, kPage, 1, 2 * kPage, kPage, 1};
  for (KernelId on = 0; on < 2; ++on) {
    EXPECT_EQ(f.mappings_on(on), expected) << "kernel " << on;
    EXPECT_EQ(f.load_on(on, at, 3), "abc") << "kernel " << on;
    EXPECT_EQ(f.load_on(on, at + kPage, 1), kFault) << "kernel " << on;
    EXPECT_EQ(f.load_on(on, at + 2 * kPage, 1), std::string(1, '\0')) << "kernel " << on;
  }
}

TEST_P(VSpaces, ProtectNarrowsOnEveryKernelWithinTheCapabilitysRights) {
  auto f = start(config(3), {0, 1, 2});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(0, 1, "rw");
  ASSERT_GE(frame, 0);
  const std::uintptr_t at = f.base();
  ASSERT_EQ(f.map_on(0, static_cast<CapSlot>(frame), at, kPage, CapRights::read | CapRights::write),
            kSucceeded);
  ASSERT_EQ(f.store_on(1, at, "ok"), kSucceeded);
  ASSERT_EQ(f.protect_on(2, at, kPage, CapRights::read), kSucceeded);
  for (KernelId on = 0; on < 3; ++on) {
    EXPECT_EQ(f.store_on(on, at, "no"), code_of(Errc::page_fault)) << "kernel " << on;
    EXPECT_EQ(f.load_on(on, at, 2), "ok") << "kernel " << on;
  }
  ASSERT_EQ(f.protect_on(0, at, kPage, CapRights::read | CapRights::write), kSucceeded);
  EXPECT_EQ(f.store_on(2, at, "ye"), kSucceeded);

  // A read-only copy of the Frame maps read-only, and protect cannot widen it.
  const std::int64_t minted = f.mint_on_0(static_cast<CapSlot>(frame), CapRights::read);
  ASSERT_GE(minted, 0);
  const std::uintptr_t other = at + 8 * kPage;
  ASSERT_EQ(f.map_on(0, static_cast<CapSlot>(minted), other, kPage, CapRights::read), kSucceeded);
  EXPECT_EQ(f.protect_on(0, other, kPage, CapRights::read | CapRights::write),
            code_of(Errc::permission_denied));
  EXPECT_EQ(f.store_on(1, other, "no"), code_of(Errc::page_fault));
  EXPECT_EQ(f.load_on(1, other, 2), "ye");
}

TEST_P(VSpaces, RevokeOfAMappedFrameUnmapsItEverywhere) {
  auto f = start(config(kKernels), {0, 1, 2, 3});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(0, 1, "revoked");
  ASSERT_GE(frame, 0);
  // A copy is mapped; revoking the original removes the copy, and its mapping with it.
  const std::int64_t copied = f.mint_on_0(static_cast<CapSlot>(frame), CapRights::all);
  ASSERT_GE(copied, 0);
  const std::uintptr_t at = f.base() + kPage;
  ASSERT_EQ(f.map_on(0, static_cast<CapSlot>(copied), at, kPage, CapRights::read), kSucceeded);
  for (KernelId on = 0; on < kKernels; ++on)
    ASSERT_EQ(f.load_on(on, at, 7), "revoked") << "kernel " << on;
  auto revoked = f.system->run(
      0,
      [](Kernel& k, CapabilityService c, CapSlot s) -> Task<std::int64_t> {
        auto removed = co_await c.revoke(k, s);
        co_return removed ? static_cast<std::int64_t>(*removed) : -100 - code_of(removed);
      },
      *f.caps, static_cast<CapSlot>(frame));
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(*revoked, 1);
  for (KernelId on = 0; on < kKernels; ++on) {
    EXPECT_EQ(f.load_on(on, at, 7), kFault) << "kernel " << on;
    EXPECT_TRUE(f.mappings_on(on).empty()) << "kernel " << on;
  }
  // The revoked copy maps no more.
  EXPECT_EQ(f.map_on(0, static_cast<CapSlot>(copied), at, kPage, CapRights::read),
            code_of(Errc::not_found));
}

TEST_P(VSpaces, BadRequestsGetClearErrorsAndChangeNoPageTable) {
  auto f = start(config(2), {0, 1});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(0, 1, "kept");
  ASSERT_GE(frame, 0);
  const auto slot = static_cast<CapSlot>(frame);
  const std::uintptr_t at = f.base() + 2 * kPage;
  ASSERT_EQ(f.map_on(0, slot, at, kPage, CapRights::read), kSucceeded);
  const auto before = f.mappings_on(1);
  const std::int64_t other = f.frame_on(0, 1, "other");
  ASSERT_GE(other, 0);
  const auto second = static_cast<CapSlot>(other);
  const std::int64_t read_only = f.mint_on_0(second, CapRights::read);
  ASSERT_GE(read_only, 0);
  auto removed = f.system->run(
      0,
      [](Kernel& k, CapabilityService c, CapSlot s) -> Task<std::int64_t> {
        co_return code_of(co_await c.remove(k, s));
      },
      *f.caps, static_cast<CapSlot>(read_only));
  ASSERT_TRUE(removed.ok());
  ASSERT_EQ(*removed, kSucceeded);
  const std::uintptr_t free_at = at + 4 * kPage;
  const std::uintptr_t end = f.base() + f.vspace->address_range().size();
  EXPECT_EQ(f.map_on(0, second, free_at + 1, kPage, CapRights::read),
            code_of(Errc::invalid_argument));
  EXPECT_EQ(f.map_on(0, second, free_at, kPage + 1, CapRights::read),
            code_of(Errc::invalid_argument));
  EXPECT_EQ(f.map_on(0, second, at, kPage, CapRights::read), code_of(Errc::already_exists));
  EXPECT_EQ(f.map_on(0, second, end, kPage, CapRights::read), code_of(Errc::invalid_argument));
  EXPECT_EQ(f.map_on(0, second, f.base() - kPage, kPage, CapRights::read),
            code_of(Errc::invalid_argument));
  EXPECT_EQ(f.map_on(0, second, free_at, 2 * kPage, CapRights::read),
            code_of(Errc::invalid_argument));  // past the Frame's end
  EXPECT_EQ(f.map_on(0, second, free_at, kPage, CapRights::grant), code_of(Errc::invalid_argument));
  EXPECT_EQ(f.map_on(0, static_cast<CapSlot>(read_only), free_at, kPage, CapRights::read),
            code_of(Errc::not_found));  // removed
  EXPECT_EQ(f.unmap_on(0, free_at, kPage), -100 - code_of(Errc::not_found));
  EXPECT_EQ(f.unmap_on(0, at + 1, kPage), -100 - code_of(Errc::invalid_argument));
  EXPECT_EQ(f.protect_on(0, at, 2 * kPage, CapRights::read), code_of(Errc::not_found));
  for (KernelId on = 0; on < 2; ++on) {
    EXPECT_EQ(f.mappings_on(on), before) << "kernel " << on;
    EXPECT_EQ(f.load_on(on, at, 4), "kept") << "kernel " << on;
    EXPECT_EQ(f.load_on(on, free_at, 1), kFault) << "kernel " << on;
  }
}

TEST_P(VSpaces, WriteRightsNeedAFrameCapabilityWithWrite) {
  auto f = start(config(2), {0, 1});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(0, 1, "x");
  ASSERT_GE(frame, 0);
  const std::int64_t read_only = f.mint_on_0(static_cast<CapSlot>(frame), CapRights::read);
  ASSERT_GE(read_only, 0);
  EXPECT_EQ(f.map_on(0, static_cast<CapSlot>(read_only), f.base(), kPage,
                     CapRights::read | CapRights::write),
            code_of(Errc::permission_denied));
  EXPECT_TRUE(f.mappings_on(1).empty());
}

TEST_P(VSpaces, AKernelSpannedLaterMapsWhatIsMapped) {
  auto f = start(config(3), {0, 1});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(1, 1, "late");
  ASSERT_GE(frame, 0);
  ASSERT_EQ(f.map_on(1, static_cast<CapSlot>(frame), f.base(), kPage, CapRights::read), kSucceeded);
  EXPECT_EQ(f.load_on(2, f.base(), 4), "error:invalid_argument");  // not spanned yet
  auto spanned = f.system->run(
      0,
      [](Kernel& k, VSpace v) -> Task<std::int64_t> { co_return code_of(co_await v.span(k, 2)); },
      *f.vspace);
  ASSERT_TRUE(spanned.ok());
  ASSERT_EQ(*spanned, kSucceeded);
  EXPECT_EQ(f.load_on(2, f.base(), 4), "late");
}

TEST_P(VSpaces, APagerResolvesAFaultByMapping) {
  auto f = start(config(2), {0, 1});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(1, 1, "paged in");
  ASSERT_GE(frame, 0);
  auto loaded = f.system->run(
      1,
      [](Kernel& k, VSpace v, CapSlot s) -> Task<std::string> {
        // The pager maps the kernel's Frame at the faulting page.
        auto set =
            v.set_pager(k, [v, s](Kernel& kernel, mk::PageFault fault) -> Task<mk::Result<void>> {
              const std::uintptr_t page = fault.address / kPage * kPage;
              co_return co_await v.map(kernel, s, page, kPage, CapRights::read);
            });
        if (!set) co_return "set_pager: " + set.error().describe();
        std::string out(8, '\0');
        const std::uintptr_t at =
            reinterpret_cast<std::uintptr_t>(v.address_range().data()) + 3 * kPage;
        auto got = co_await v.load(k, at, std::as_writable_bytes(std::span(out)));
        if (!got) co_return "load: " + got.error().describe();
        (void)v.set_pager(k, {});
        co_return out;
      },
      *f.vspace, static_cast<CapSlot>(frame));
  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  EXPECT_EQ(*loaded, "paged in");
  EXPECT_EQ(f.load_on(0, f.base() + 3 * kPage, 8), "paged in");
  // Without a pager, the fault is the access's error.
  EXPECT_EQ(f.load_on(1, f.base() + 9 * kPage, 1), kFault);
}

TEST_P(VSpaces, AKernelFailingDuringAnUnmapDoesNotStallIt) {
  auto f = start(config(kKernels), {0, 1, 2, 3});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(0, 1, "gone");
  ASSERT_GE(frame, 0);
  const std::uintptr_t at = f.base();
  ASSERT_EQ(f.map_on(0, static_cast<CapSlot>(frame), at, kPage, CapRights::read), kSucceeded);
  for (KernelId on = 0; on < kKernels; ++on)
    ASSERT_EQ(f.load_on(on, at, 4), "gone") << "kernel " << on;
  // The unmap races with kernel 3's failure: it completes before the view change or in the new
  // view, and every survivor has lost the mapping either way.
  std::int64_t unmapped = -1;
  std::thread unmapper([&] { unmapped = f.unmap_on(0, at, kPage); });
  EXPECT_TRUE(f.system->declare_failed(3).ok());
  unmapper.join();
  EXPECT_EQ(unmapped, static_cast<std::int64_t>(kPage));
  for (KernelId on = 0; on < 3; ++on) {
    EXPECT_EQ(f.load_on(on, at, 4), kFault) << "kernel " << on;
    EXPECT_TRUE(f.mappings_on(on).empty()) << "kernel " << on;
  }
}

INSTANTIATE_TEST_SUITE_P(Isolations, VSpaces, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

TEST(VSpace, ARawTouchAfterUnmapStopsThatKernelProcessAlone) {
  // Kernels as processes: the touch faults in kernel 2's process, which dies of it (mk says
  // why on stderr); the others see a failed kernel and go on.
  auto f = start(mk::test::config_for(3, mk::Isolation::processes), {0, 1, 2});
  ASSERT_TRUE(f.vspace);
  const std::int64_t frame = f.frame_on(0, 1, "raw");
  ASSERT_GE(frame, 0);
  const std::uintptr_t at = f.base();
  ASSERT_EQ(f.map_on(0, static_cast<CapSlot>(frame), at, kPage, CapRights::read), kSucceeded);
  auto touched = f.system->run(
      2,
      [](Kernel&, std::uintptr_t a) -> Task<int> {
        co_return *reinterpret_cast<const volatile char*>(a);
      },
      at);
  ASSERT_TRUE(touched.ok()) << touched.error().describe();
  EXPECT_EQ(*touched, 'r');
  ASSERT_EQ(f.unmap_on(0, at, kPage), static_cast<std::int64_t>(kPage));
  auto faulted = f.system->run(
      2,
      [](Kernel&, std::uintptr_t a) -> Task<int> {
        co_return *reinterpret_cast<const volatile char*>(a);
      },
      at);
  EXPECT_FALSE(faulted.ok()) << "a touch of an unmapped page read " << *faulted;
  EXPECT_TRUE(f.system->wait_until_failed(2, std::chrono::seconds(10)).ok());
  EXPECT_EQ(f.load_on(1, at, 3), kFault);
}

TEST(VSpace, CreateRefusesBadKernelLists) {
  const mk::NodeBytes pool{0, kPoolBytes};
  auto memory = CapabilityMemory::create(std::span(&pool, 1), 16 * kPage);
  ASSERT_TRUE(memory.ok());
  auto system = mk::test::boot(mk::test::config_for(2, mk::Isolation::threads));
  ASSERT_TRUE(system);
  auto caps = CapabilityService::create(*system, *memory);
  ASSERT_TRUE(caps.ok());
  EXPECT_EQ(code_of(VSpace::create(*system, *caps, {})), code_of(Errc::invalid_argument));
  EXPECT_EQ(code_of(VSpace::create(*system, *caps, {0, 0})), code_of(Errc::invalid_argument));
  EXPECT_EQ(code_of(VSpace::create(*system, *caps, {0, 5})), code_of(Errc::invalid_argument));
  auto good = VSpace::create(*system, *caps, {1});
  ASSERT_TRUE(good.ok()) << good.error().describe();
  auto again = system->run(
      0,
      [](Kernel& k, VSpace v) -> Task<std::int64_t> { co_return code_of(co_await v.span(k, 1)); },
      *good);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, code_of(Errc::already_exists));
}

}  // namespace vspace_test
