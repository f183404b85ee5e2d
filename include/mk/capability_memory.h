// mk::CapabilityMemory: the NUMA nodes' memory a CapabilityService hands out as RAM
// (docs/capabilities.md, "Memory").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mk/node_memory.h"
#include "mk/result.h"

namespace mk {

class Skb;

/// How much memory of one NUMA node a CapabilityMemory holds.
struct NodeBytes {
  int node = 0;           ///< OS index of a node of this host.
  std::size_t bytes = 0;  ///< A non-zero multiple of the page size.
};

/// One NodeMemory pool per listed NUMA node: the real memory behind a CapabilityService's RAM
/// capabilities. Every pool is a memfd mapped shared, so a kernel process forked after the
/// pools were made (System::boot with Isolation::processes) reaches the same bytes. Make it
/// before System::boot when kernels are processes; in thread isolation any time will do.
///
/// The service keeps, on every kernel, which bytes of each pool are allocated (the allocation
/// is part of the replicated state, so every kernel agrees on it); a pool's own allocator is
/// not used. A small copyable handle: copies share the pools, which live until the last copy
/// and the last service using them are gone.
class CapabilityMemory {
 public:
  /// Pools of the listed sizes on the listed nodes, each node once, and `address_bytes` of
  /// addresses reserved for VSpace mappings (address_range()). Errors: invalid_argument (no
  /// node, a node twice, a bad size, an address range that is not a page multiple),
  /// NodeMemory::create's, and io_error when the addresses cannot be reserved.
  static Result<CapabilityMemory> create(std::span<const NodeBytes> nodes,
                                         std::size_t address_bytes = kDefaultAddressBytes);
  /// `bytes_per_node` (page-rounded) on every NUMA node the Skb knows that this host also has.
  /// Errors: invalid_argument for 0 bytes, not_found when no such node exists, and
  /// NodeMemory::create's; `address_bytes` as for the other create.
  static Result<CapabilityMemory> create(const Skb& skb, std::size_t bytes_per_node,
                                         std::size_t address_bytes = kDefaultAddressBytes);
  /// Addresses reserved for VSpace mappings by default: 4 GiB (no memory is committed).
  static constexpr std::size_t kDefaultAddressBytes = std::size_t{4} << 30;

  /// The nodes, in increasing order.
  std::vector<int> nodes() const;
  /// The pool of `node`, or nullptr.
  NodeMemory* pool(int node) const noexcept;
  /// The bytes of `node`'s pool as mapped in this process (CapInfo::offset indexes them), or
  /// an empty span without a pool for the node.
  std::span<std::byte> bytes(int node) const noexcept;
  /// The offset in `pool(node)->fd()` at which bytes(node) begin (for mapping them).
  std::size_t file_offset(int node) const noexcept;
  /// The addresses reserved for VSpace mappings, inaccessible until mapped: in this process,
  /// and at the same place in every kernel process forked after this was made.
  std::span<std::byte> address_range() const noexcept;
  /// The number that names these pools in this process and in kernel processes forked after
  /// they were made.
  std::uint64_t id() const noexcept;
  /// The pools named `id`, when this process made them or was forked after they were made;
  /// not_found otherwise (a kernel process forked earlier).
  static Result<CapabilityMemory> find(std::uint64_t id);

  /// The pools and their number (internal: public so that the implementation's helpers can
  /// name it).
  struct Pools;

 private:
  explicit CapabilityMemory(std::shared_ptr<Pools> pools) noexcept : pools_(std::move(pools)) {}

  std::shared_ptr<Pools> pools_;
};

}  // namespace mk
