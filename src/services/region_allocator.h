// The allocator of a NodeMemory: page-granular regions of an address range, first fit by
// address, merged with their free neighbours on free. No memory and no lock of its own: the
// NodeMemory holds both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

#include "mk/node_memory.h"
#include "mk/result.h"

namespace mk::services {

/// Free blocks and allocated regions of [0, size) in pages of `page` bytes, for pool `pool`.
/// Every error leaves both maps as they were.
class RegionAllocator {
 public:
  using Region = NodeMemory::Region;

  /// A range of `size` bytes, all free; `size` and `page` as NodeMemory::create checked them.
  RegionAllocator(std::size_t size, std::size_t page, std::uint64_t pool);

  /// NodeMemory::allocate without the zeroing.
  Result<Region> allocate(std::size_t bytes, std::size_t alignment);
  /// NodeMemory::free.
  Result<void> free(const Region& region);
  /// Success when `region` is allocated now, else free()'s error.
  Result<void> check(const Region& region) const;
  /// NodeMemory::usage.
  NodeMemory::Usage usage() const;

 private:
  struct Allocation {
    std::size_t size = 0;
    std::uint64_t serial = 0;
  };

  std::size_t size_;
  std::size_t page_;
  std::uint64_t pool_;
  std::uint64_t next_serial_ = 1;
  std::size_t free_bytes_;
  std::map<std::size_t, std::size_t> free_;      // offset -> size, never two adjacent
  std::map<std::size_t, Allocation> allocated_;  // offset -> region
};

}  // namespace mk::services
