// mk::NodeMemory: the memory of one NUMA node, in one memfd that other processes can map, and
// the allocator of regions inside it (docs/memory.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "mk/result.h"

namespace mk {

class Skb;
struct MemoryRequest;

/// A pool of one NUMA node's memory: one memfd of a fixed size, mapped shared in this process,
/// its pages placed on the node and reserved at creation, and a first-fit allocator of
/// page-granular regions inside it (docs/memory.md).
///
/// Placement: when libnuma works here (numa_available() >= 0) and the node is not -1, the
/// mapping is bound to the node (mbind, MPOL_BIND) before any page exists, then every page is
/// allocated (fallocate), so a node without room is an error at creation, never a fault
/// later. Without NUMA support, or for node -1, nothing is bound and the pages lie where the
/// kernel puts them. The node is always a node of this host: an Skb describing another machine
/// picks nodes by that machine's numbers, and create() refuses one this host lacks.
///
/// Thread safety: every method may be called from any number of threads at once on one pool,
/// except moving, assigning and destroying it. allocate, free, usage, read, write and bytes
/// take one internal std::mutex (not a hot path); read and write hold it only to check the
/// region and copy without it, so concurrent accesses to the same bytes are the callers' to
/// order, as for any shared memory. fd, node, bound, size and page_size read immutable state.
/// The allocator's state is per process: after fork, only one process may allocate and free
/// (the others map the regions it hands them), or two would hand out the same bytes.
///
/// A moved-from pool may only be assigned to or destroyed.
class NodeMemory {
 public:
  /// A block of a pool: `size` bytes at `offset`, both page multiples. The offset is also the
  /// block's offset in fd(), for another process's mmap. `pool` and `serial` make a region
  /// from another pool, or a stale one whose bytes were freed and allocated again, an error
  /// rather than someone else's memory.
  struct Region {
    std::size_t offset = 0;    ///< Byte offset in the pool and in its fd().
    std::size_t size = 0;      ///< Length in bytes, a page multiple.
    std::uint64_t pool = 0;    ///< The pool it came from (unique in this process).
    std::uint64_t serial = 0;  ///< Which allocation of that pool it is.
  };

  /// The allocator's state at one instant.
  struct Usage {
    std::size_t free_bytes = 0;          ///< Bytes in no allocated region.
    std::size_t largest_free_block = 0;  ///< The largest contiguous free block, in bytes.
    std::size_t free_blocks = 0;         ///< Free blocks (1 for a pool with nothing allocated).
    std::size_t allocated_regions = 0;   ///< Regions allocated and not freed.
  };

  /// A pool of `bytes` (a non-zero multiple of the page size) on this host's NUMA node `node`,
  /// or unbound for -1. invalid_argument for a bad size or a node below -1; not_found for a
  /// node this host does not have (a host without NUMA support has node 0 only); io_error,
  /// naming the call, when memfd_create, ftruncate, mmap, mbind or fallocate fails (ENOSPC
  /// or ENOMEM from fallocate: the node has not that much memory free).
  static Result<NodeMemory> create(int node, std::size_t bytes);
  /// A pool of `bytes` on the node `skb.memory_node(request)` picks; that node must also
  /// exist on this host (the Skb may describe another machine). Errors as the other create,
  /// and the Skb's not_found when no node satisfies the request.
  static Result<NodeMemory> create(const Skb& skb, const MemoryRequest& request, std::size_t bytes);

  /// Takes `other`'s memory, fd and regions; `other` is left empty.
  NodeMemory(NodeMemory&& other) noexcept;
  /// Releases this pool's memory and takes `other`'s.
  NodeMemory& operator=(NodeMemory&& other) noexcept;
  NodeMemory(const NodeMemory&) = delete;
  NodeMemory& operator=(const NodeMemory&) = delete;
  /// Unmaps the memory and closes the fd; the pages go back to the system once no other
  /// process maps them or holds the fd.
  ~NodeMemory();

  /// A region of at least `bytes` (rounded up to pages), its offset a multiple of `alignment`
  /// (a power of two, at least the page size and at most the pool size), zeroed. The first
  /// free block, by address, that fits is used. invalid_argument for `bytes` 0 or a bad
  /// alignment; too_large for more than the pool's size; full when no free block fits (the
  /// message gives the free bytes and the largest block).
  Result<Region> allocate(std::size_t bytes, std::size_t alignment);
  /// Returns `region` to the pool, merged with the free blocks on either side. Errors, which
  /// change nothing: invalid_argument for a region of another pool, misaligned, out of range,
  /// or overlapping an allocated region it is not; not_found for a region not allocated now
  /// (freed already, or stale).
  Result<void> free(const Region& region);

  /// Copies `out.size()` bytes from `offset` in `region` into `out`. The region is checked as
  /// by free(); invalid_argument when the bytes lie past its end.
  Result<void> read(const Region& region, std::size_t offset, std::span<std::byte> out) const;
  /// Copies `in` to `offset` in `region`. Errors as read().
  Result<void> write(const Region& region, std::size_t offset, std::span<const std::byte> in);
  /// The region's bytes in this process's mapping, for zero-copy users; valid until the region
  /// is freed. Errors as free().
  Result<std::span<std::byte>> bytes(const Region& region) const;

  /// The allocator's state.
  Usage usage() const;
  /// The memfd holding the pool, for another process to map (`mmap(..., MAP_SHARED, fd(),
  /// region.offset)`); close-on-exec, sealed against resizing, open while the pool lives.
  int fd() const noexcept;
  /// The NUMA node (OS index on this host) the pool was made for; -1 for none.
  int node() const noexcept;
  /// True when the pages are bound to node() (false without NUMA support or for node -1).
  bool bound() const noexcept;
  /// The pool's size in bytes.
  std::size_t size() const noexcept;
  /// The page size, the allocator's granule.
  static std::size_t page_size() noexcept;

 private:
  struct State;
  explicit NodeMemory(std::unique_ptr<State> state) noexcept;

  std::unique_ptr<State> state_;
};

}  // namespace mk
