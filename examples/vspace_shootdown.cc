// vspace_shootdown: an address space spanning kernels that are processes, and an unmap that is
// a message to each of them instead of an inter-processor interrupt.
//
//   $ ./vspace_shootdown [kernels]
//
// Makes the capability memory (and the address range VSpaces map into) first, then boots
// `kernels` kernels (default 4, at least 2) as processes, each with its own page table. Kernel
// 0 allocates a page, maps it writable in a VSpace spanning every kernel, and every kernel
// writes its id into it through its own page table (VSpace::store). Kernel 0 then unmaps it:
// the unmap completes once every kernel's process has removed the mapping, so every kernel's
// next load faults (page_fault), and the table has no mapping left on any kernel. Last, kernel
// 1 sets a pager that maps a page of its own on a fault, and its store then goes through. The
// program checks each step and exits 1 if one does not hold. What crosses into a kernel process is
// named, not carried: System::run takes callables that capture nothing, and the handles
// (CapabilityService, VSpace) as arguments.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mk/capability_service.h"
#include "mk/config.h"
#include "mk/skb.h"
#include "mk/system.h"
#include "mk/task.h"
#include "mk/vspace.h"

namespace {

constexpr std::size_t kPage = 4096;

/// Kernel 0's part: a Frame, mapped at the start of the range; the Frame's slot.
mk::Task<mk::Result<mk::CapSlot>> map_page(mk::Kernel& k, mk::CapabilityService caps,
                                           mk::VSpace vspace) {
  auto ram = co_await caps.allocate(k, kPage, 0);
  if (!ram) co_return ram.error();
  auto frames = co_await caps.retype(k, *ram, mk::CapType::frame, 0, kPage, 1);
  if (!frames) co_return frames.error();
  const auto at = reinterpret_cast<std::uintptr_t>(vspace.address_range().data());
  auto mapped = co_await vspace.map(k, frames->front(), at, kPage,
                                    mk::CapRights::read | mk::CapRights::write);
  if (!mapped) co_return mapped.error();
  co_return frames->front();
}

/// Every kernel's part: its id stored at byte `id` of the page, then the byte loaded back.
mk::Task<mk::Result<int>> touch(mk::Kernel& k, mk::VSpace vspace) {
  const auto at = reinterpret_cast<std::uintptr_t>(vspace.address_range().data()) + k.id();
  const std::byte mine{static_cast<unsigned char>(k.id())};
  if (auto stored = co_await vspace.store(k, at, std::span(&mine, 1)); !stored) {
    co_return stored.error();
  }
  std::byte seen{};
  if (auto loaded = co_await vspace.load(k, at, std::span(&seen, 1)); !loaded) {
    co_return loaded.error();
  }
  co_return static_cast<int>(seen);
}

bool check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok:  " : "FAIL:", what.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t kernels = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 4;
  if (kernels < 2) {
    std::fprintf(stderr, "vspace_shootdown: at least 2 kernels\n");
    return 2;
  }
  // Before boot: every kernel process inherits the pool and the reserved address range.
  const mk::NodeBytes pool{0, 16 * kPage};
  auto memory = mk::CapabilityMemory::create(std::span(&pool, 1), 64 * kPage);
  if (!memory) return check(false, memory.error().describe()) ? 0 : 1;
  auto skb = mk::Skb::discover();
  if (!skb) return check(false, skb.error().describe()) ? 0 : 1;
  mk::Config config;
  const auto& usable = skb->usable_cores();
  for (std::size_t i = 0; i < kernels; ++i)
    config.cores.push_back(usable[i % usable.size()]);
  config.kernels_per_core = (kernels + usable.size() - 1) / usable.size();
  config.isolation = mk::Isolation::processes;
  auto system = mk::System::boot(config);
  if (!system) return check(false, system.error().describe()) ? 0 : 1;
  auto caps = mk::CapabilityService::create(**system, *memory);
  if (!caps) return check(false, caps.error().describe()) ? 0 : 1;
  std::vector<mk::KernelId> all;
  for (std::size_t id = 0; id < kernels; ++id)
    all.push_back(static_cast<mk::KernelId>(id));
  auto vspace = mk::VSpace::create(**system, *caps, all);
  if (!vspace) return check(false, vspace.error().describe()) ? 0 : 1;

  bool ok = true;
  auto frame = (*system)->run(
      0, [](mk::Kernel& k, mk::CapabilityService c, mk::VSpace v) { return map_page(k, c, v); },
      *caps, *vspace);
  if (!frame || !*frame) {
    check(false, "map: " + (!frame ? frame.error() : frame->error()).describe());
    return 1;
  }
  for (mk::KernelId id : all) {
    auto seen = (*system)->run(
        id, [](mk::Kernel& k, mk::VSpace v) { return touch(k, v); }, *vspace);
    ok &= check(seen && *seen && **seen == static_cast<int>(id),
                "kernel " + std::to_string(id) + " wrote and read the page");
  }
  const auto at = reinterpret_cast<std::uintptr_t>(vspace->address_range().data());
  auto unmapped = (*system)->run(
      0,
      [](mk::Kernel& k, mk::VSpace v, std::uintptr_t a) -> mk::Task<mk::Result<std::size_t>> {
        co_return co_await v.unmap(k, a, kPage);
      },
      *vspace, at);
  ok &= check(unmapped && *unmapped && **unmapped == kPage, "unmap completed on every kernel");
  for (mk::KernelId id : all) {
    auto seen = (*system)->run(
        id, [](mk::Kernel& k, mk::VSpace v) { return touch(k, v); }, *vspace);
    ok &= check(seen && !*seen && seen->error().code == mk::Errc::page_fault,
                "kernel " + std::to_string(id) + "'s touch faults");
    auto left = (*system)->run(
        id,
        [](mk::Kernel& k, mk::VSpace v) -> mk::Task<std::size_t> {
          co_return v.mappings(k) ? v.mappings(k)->size() : 99;
        },
        *vspace);
    ok &= check(left && *left == 0, "kernel " + std::to_string(id) + " has no mapping left");
  }
  // A pager on kernel 1 maps a Frame of its own where the fault was.
  auto paged = (*system)->run(
      1,
      [](mk::Kernel& k, mk::CapabilityService c, mk::VSpace v) -> mk::Task<mk::Result<int>> {
        auto ram = co_await c.allocate(k, kPage, 0);
        if (!ram) co_return ram.error();
        auto frames = co_await c.retype(k, *ram, mk::CapType::frame, 0, kPage, 1);
        if (!frames) co_return frames.error();
        const mk::CapSlot slot = frames->front();
        auto set = v.set_pager(
            k, [v, slot](mk::Kernel& kernel, mk::PageFault fault) -> mk::Task<mk::Result<void>> {
              const std::uintptr_t page = fault.address / kPage * kPage;
              co_return co_await v.map(kernel, slot, page, kPage,
                                       mk::CapRights::read | mk::CapRights::write);
            });
        if (!set) co_return set.error();
        co_return co_await touch(k, v);
      },
      *caps, *vspace);
  ok &= check(paged && *paged && **paged == 1,
              "kernel 1's store faulted, its pager mapped a page, and the store went through");
  auto after = (*system)->run(
      0,
      [](mk::Kernel& k, mk::VSpace v) -> mk::Task<std::size_t> {
        co_return v.mappings(k) ? v.mappings(k)->size() : 99;
      },
      *vspace);
  ok &= check(after && *after == 1, "the pager's mapping is on kernel 0 too");
  return ok ? 0 : 1;
}
