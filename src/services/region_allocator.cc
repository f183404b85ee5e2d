#include "services/region_allocator.h"

#include <algorithm>
#include <iterator>
#include <string>

namespace mk::services {
namespace {

std::string describe(const NodeMemory::Region& region) {
  return "region [" + std::to_string(region.offset) + ", +" + std::to_string(region.size) +
         ") of pool " + std::to_string(region.pool);
}

}  // namespace

RegionAllocator::RegionAllocator(std::size_t size, std::size_t page, std::uint64_t pool)
    : size_(size), page_(page), pool_(pool), free_bytes_(size) {
  free_.emplace(0, size);
}

Result<RegionAllocator::Region> RegionAllocator::allocate(std::size_t bytes,
                                                          std::size_t alignment) {
  if (bytes == 0) return error(Errc::invalid_argument, "allocating 0 bytes");
  if (alignment < page_ || (alignment & (alignment - 1)) != 0 || alignment > size_) {
    return error(Errc::invalid_argument, "alignment " + std::to_string(alignment) +
                                             " is not a power of two between the page size (" +
                                             std::to_string(page_) + ") and the pool's size (" +
                                             std::to_string(size_) + ")");
  }
  if (bytes > size_) {
    return error(Errc::too_large, "allocating " + std::to_string(bytes) + " bytes from pool " +
                                      std::to_string(pool_) + " of " + std::to_string(size_));
  }
  const std::size_t size = (bytes + page_ - 1) / page_ * page_;
  // First fit by address: allocations gather at low offsets and leave the high end in one
  // large block, which is what big, aligned requests need; a free list of this length (a pool
  // holds few regions, and allocation is not a hot path) is cheap to walk.
  for (auto block = free_.begin(); block != free_.end(); ++block) {
    const auto [start, length] = *block;
    const std::size_t aligned = (start + alignment - 1) / alignment * alignment;
    const std::size_t skipped = aligned - start;
    if (skipped >= length || length - skipped < size) continue;
    free_.erase(block);
    if (skipped > 0) free_.emplace(start, skipped);
    const std::size_t tail = length - skipped - size;
    if (tail > 0) free_.emplace(aligned + size, tail);
    free_bytes_ -= size;
    const Region region{aligned, size, pool_, next_serial_++};
    allocated_.emplace(aligned, Allocation{size, region.serial});
    return region;
  }
  std::size_t largest = 0;
  for (const auto& [start, length] : free_)
    largest = std::max(largest, length);
  return error(Errc::full, "no free block of pool " + std::to_string(pool_) + " holds " +
                               std::to_string(size) + " bytes aligned to " +
                               std::to_string(alignment) + " (free " + std::to_string(free_bytes_) +
                               " bytes, largest block " + std::to_string(largest) + ")");
}

Result<void> RegionAllocator::check(const Region& region) const {
  if (region.pool != pool_) {
    return error(Errc::invalid_argument,
                 describe(region) + " is not of pool " + std::to_string(pool_));
  }
  if (region.size == 0 || region.offset % page_ != 0 || region.size % page_ != 0) {
    return error(Errc::invalid_argument, describe(region) + " is not a non-empty run of " +
                                             std::to_string(page_) + "-byte pages");
  }
  if (region.offset > size_ || region.size > size_ - region.offset) {
    return error(Errc::invalid_argument,
                 describe(region) + " ends past the pool's " + std::to_string(size_) + " bytes");
  }
  const auto exact = allocated_.find(region.offset);
  if (exact != allocated_.end() && exact->second.size == region.size &&
      exact->second.serial == region.serial) {
    return {};
  }
  // The allocated region starting last before the end of `region` is the only one that can
  // overlap it without starting inside it, and any that starts inside it overlaps.
  auto after = allocated_.lower_bound(region.offset + region.size);
  if (after != allocated_.begin()) {
    const auto& [start, allocation] = *std::prev(after);
    if (start + allocation.size > region.offset) {
      if (start == region.offset && allocation.size == region.size) {
        return error(Errc::not_found, describe(region) +
                                          " is stale: it was freed and its bytes allocated "
                                          "again (allocation " +
                                          std::to_string(allocation.serial) + ")");
      }
      return error(Errc::invalid_argument,
                   describe(region) + " overlaps the allocated region [" + std::to_string(start) +
                       ", +" + std::to_string(allocation.size) + ") without being it");
    }
  }
  return error(Errc::not_found, describe(region) + " is not allocated (freed already?)");
}

Result<void> RegionAllocator::free(const Region& region) {
  if (auto checked = check(region); !checked) return checked;
  allocated_.erase(region.offset);
  free_bytes_ += region.size;
  std::size_t start = region.offset;
  std::size_t length = region.size;
  auto next = free_.lower_bound(start);
  if (next != free_.begin()) {
    auto before = std::prev(next);
    if (before->first + before->second == start) {
      start = before->first;
      length += before->second;
      free_.erase(before);
    }
  }
  if (next != free_.end() && next->first == region.offset + region.size) {
    length += next->second;
    free_.erase(next);
  }
  free_.emplace(start, length);
  return {};
}

NodeMemory::Usage RegionAllocator::usage() const {
  NodeMemory::Usage usage;
  usage.free_bytes = free_bytes_;
  usage.free_blocks = free_.size();
  usage.allocated_regions = allocated_.size();
  for (const auto& [start, length] : free_) {
    usage.largest_free_block = std::max(usage.largest_free_block, length);
  }
  return usage;
}

}  // namespace mk::services
