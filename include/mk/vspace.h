// mk::VSpace: an address space spanning several kernels, its mappings replicated state and
// each kernel's replica its real page table (docs/vspace.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mk/capability.h"
#include "mk/capability_service.h"
#include "mk/codec.h"
#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/page_fault.h"
#include "mk/result.h"
#include "mk/system.h"
#include "mk/task.h"

namespace mk {

/// One mapping of a VSpace, as a kernel's replica has it.
struct Mapping {
  std::uintptr_t address = 0;          ///< First byte, a page multiple.
  std::size_t size = 0;                ///< Length, a page multiple.
  CapRights rights = CapRights::none;  ///< read and write at most.
  std::size_t frame_offset = 0;        ///< Where in the Frame the mapping starts.
  KernelId cap_kernel = 0;             ///< The CSpace of the Frame capability it was made with.
  CapSlot cap_slot = 0;                ///< That capability's slot.
  /// Equal field by field.
  friend bool operator==(const Mapping&, const Mapping&) = default;
};

/// A virtual address space of a CapabilityService, spanning a set of its member kernels. Its
/// mappings are part of the service's replicated table, so map, unmap, protect and the
/// service's revoke, remove and reclaim are applied in one order on every kernel. Each kernel
/// the VSpace spans turns what it applies into its own page table: with Isolation::processes,
/// map is an mmap(MAP_FIXED | MAP_SHARED) of the Frame's memory at the same address in every
/// spanned kernel's process, and unmap replaces it there, so each TLB is flushed by its own
/// core; with threads, the one address space is changed once.
///
/// Addresses lie in the range CapabilityMemory reserved (address_range()); the VSpaces of one
/// service share it, and no two mappings of them overlap.
///
/// Completion: map, unmap and protect complete once every member kernel of the service has
/// applied them (for unmap, the shootdown: no spanned kernel keeps the mapping). Errors common
/// to all: those of the CapabilityService's updates (invalid_argument when k is not a member,
/// timed_out, shutting_down). A small copyable handle, valid in kernel processes too (Codec).
class VSpace {
 public:
  /// From a task on member kernel `k`: a VSpace spanning `kernels` (members of `caps`, each
  /// once, at least one), with no mapping. Errors: invalid_argument (a kernel twice or not a
  /// member, none given), full (kMaxVSpaces VSpaces exist).
  static Task<Result<VSpace>> create_async(Kernel& k, CapabilityService caps,
                                           std::vector<KernelId> kernels);
  /// Same, from outside the kernels (blocks, like System::run).
  static Result<VSpace> create(System& system, const CapabilityService& caps,
                               std::vector<KernelId> kernels);

  /// Maps the first `size` bytes of the Frame in k's `frame` at `address`, with `rights`
  /// (read, write, or both), on every kernel the VSpace spans. Errors: invalid_argument (an
  /// address or size that is not a page multiple, 0 bytes, a range outside address_range(),
  /// rights other than read and write, `frame` not a Frame, `size` past its end), not_found
  /// (an empty slot: never filled, removed or revoked), permission_denied (the Frame
  /// capability lacks a right asked for), already_exists (the range overlaps a mapping of
  /// any VSpace of the service). A failed map changes no page table.
  Task<Result<void>> map(Kernel& k, CapSlot frame, std::uintptr_t address, std::size_t size,
                         CapRights rights) const;
  /// Removes every mapped page of [address, address + size) (splitting mappings that reach
  /// outside it) on every kernel the VSpace spans, and completes when each has: afterwards
  /// no kernel reaches those frames through the range. Returns the bytes unmapped. Errors:
  /// invalid_argument (alignment, range as for map), not_found (nothing mapped there).
  Task<Result<std::size_t>> unmap(Kernel& k, std::uintptr_t address, std::size_t size) const;
  /// Sets the rights of [address, address + size), which must be mapped throughout, to
  /// `rights`, within the rights of each mapping's Frame capability. Errors: invalid_argument
  /// (as for map), not_found (a page of the range not mapped), permission_denied (more than
  /// a Frame capability allows).
  Task<Result<void>> protect(Kernel& k, std::uintptr_t address, std::size_t size,
                             CapRights rights) const;
  /// Spans kernel `kernel` too (a member of the service): it maps everything mapped now.
  /// Errors: invalid_argument (not a member), already_exists (spanned already).
  Task<Result<void>> span(Kernel& k, KernelId kernel) const;

  /// Copies `out.size()` bytes at `address` into `out` on kernel k, through k's page table.
  /// A page fault (not mapped, or not readable) runs k's pager, if one is set, and tries once
  /// more if it resolved it; otherwise, or when it faults again, the error is page_fault
  /// naming the address. invalid_argument outside address_range() or when k is not spanned.
  Task<Result<void>> load(Kernel& k, std::uintptr_t address, std::span<std::byte> out) const;
  /// Copies `in` to `address` on kernel k, like load (faults on pages not mapped writable).
  Task<Result<void>> store(Kernel& k, std::uintptr_t address, std::span<const std::byte> in) const;
  /// Sets k's pager for faults of load and store on k (an empty function removes it).
  /// invalid_argument when k is not spanned.
  Result<void> set_pager(Kernel& k, Pager pager) const;

  /// The mappings as k's replica has them now, by address.
  Result<std::vector<Mapping>> mappings(Kernel& k) const;
  /// The kernels spanned, as k's replica has them now, in increasing order.
  Result<std::vector<KernelId>> kernels(Kernel& k) const;
  /// The address range mappings may use: the one CapabilityMemory reserved in this process
  /// (and, at the same place, in every kernel process forked after it).
  std::span<std::byte> address_range() const noexcept;
  /// The VSpace's number in its service.
  std::uint32_t id() const noexcept { return id_; }
  /// The service the VSpace belongs to.
  const CapabilityService& service() const noexcept { return caps_; }
  /// The number of the service (unique in its System).
  std::uint64_t service_instance() const noexcept;

 private:
  friend struct Codec<VSpace>;
  VSpace(CapabilityService caps, std::uint32_t id) noexcept : caps_(std::move(caps)), id_(id) {}

  CapabilityService caps_;
  std::uint32_t id_ = 0;
};

/// The most VSpaces one CapabilityService holds.
inline constexpr std::uint32_t kMaxVSpaces = 4096;

/// A VSpace handle in messages: its service's handle and its number.
template <>
struct Codec<VSpace> {
  /// Appends the service and the number.
  static void encode(const VSpace& vspace, std::vector<std::byte>& out);
  /// The VSpace; errors as Codec<CapabilityService>::decode, parse_error for bytes that name
  /// none.
  static Result<VSpace> decode(std::span<const std::byte> bytes);
};

}  // namespace mk
