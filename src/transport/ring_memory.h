// Memory for a channel ring, on the receiver's NUMA node when the machine has NUMA support.
#pragma once

#include <cstddef>

#include "mk/result.h"

namespace mk::transport {

/// Accepts -1 (the caller's node) and, when libnuma works here, any node that exists; when it
/// does not, the node is ignored and any value from -1 up is accepted. Errors name the field.
Result<void> check_numa_node(int node);

/// Zeroed memory aligned to at least a line, freed on destruction. From libnuma on `node`
/// (-1: the calling thread's node) when NUMA is available; from the ordinary heap otherwise.
class RingMemory {
 public:
  /// `bytes` of zeroed memory aligned to `alignment` (a power of two up to a page); io_error
  /// when the operating system refuses.
  static Result<RingMemory> allocate(std::size_t bytes, std::size_t alignment, int node);

  RingMemory(RingMemory&& other) noexcept;
  RingMemory& operator=(RingMemory&& other) noexcept;
  RingMemory(const RingMemory&) = delete;
  RingMemory& operator=(const RingMemory&) = delete;
  ~RingMemory();

  /// The first byte.
  std::byte* data() const noexcept { return data_; }

 private:
  RingMemory(std::byte* data, std::size_t bytes, std::size_t alignment, bool from_numa) noexcept
      : data_(data), bytes_(bytes), alignment_(alignment), from_numa_(from_numa) {}
  void release() noexcept;

  std::byte* data_ = nullptr;
  std::size_t bytes_ = 0;
  std::size_t alignment_ = 0;
  bool from_numa_ = false;
};

}  // namespace mk::transport
