// Memory for a channel ring, on the receiver's NUMA node when the machine has NUMA support.
#pragma once

#include <cstddef>

#include "mk/result.h"

namespace mk::transport {

/// Accepts -1 (the caller's node) and, when libnuma works here, any node that exists; when it
/// does not, the node is ignored and any value from -1 up is accepted. Errors name the field.
Result<void> check_numa_node(int node);

/// Zeroed memory aligned to at least a line, freed on destruction. Private memory comes from
/// libnuma on `node` (-1: the calling thread's node) when NUMA is available, from the ordinary
/// heap otherwise. Shared memory is a memfd mapped by exactly the two ends of one channel,
/// each in its own process.
class RingMemory {
 public:
  /// `bytes` of zeroed memory aligned to `alignment` (a power of two up to a page); io_error
  /// when the operating system refuses.
  static Result<RingMemory> allocate(std::size_t bytes, std::size_t alignment, int node);
  /// `bytes` of zeroed memory in a new memfd that one other process may map (map_shared), its
  /// pages placed on `node` when NUMA is available (-1: the caller's). The memfd is sealed
  /// against resizing, so that the other process cannot shrink it under this one. fd() is the
  /// memfd to pass to it.
  static Result<RingMemory> allocate_shared(std::size_t bytes, int node);
  /// Maps the memfd `fd`, made by allocate_shared in another process, read-write shared. The fd
  /// comes from a peer, so it is checked: invalid_argument unless it is a memfd of exactly
  /// `bytes` sealed against resizing. Does not take `fd`.
  static Result<RingMemory> map_shared(int fd, std::size_t bytes);

  RingMemory(RingMemory&& other) noexcept;
  RingMemory& operator=(RingMemory&& other) noexcept;
  RingMemory(const RingMemory&) = delete;
  RingMemory& operator=(const RingMemory&) = delete;
  ~RingMemory();

  /// The first byte.
  std::byte* data() const noexcept { return data_; }
  /// allocate_shared's memfd, open until the memory is freed; -1 for other memory.
  int fd() const noexcept { return fd_; }

 private:
  enum class Kind { heap, numa, mapping };
  RingMemory(std::byte* data, std::size_t bytes, std::size_t alignment, Kind kind,
             int fd = -1) noexcept
      : data_(data), bytes_(bytes), alignment_(alignment), kind_(kind), fd_(fd) {}
  void release() noexcept;

  std::byte* data_ = nullptr;
  std::size_t bytes_ = 0;
  std::size_t alignment_ = 0;
  Kind kind_ = Kind::heap;
  int fd_ = -1;
};

}  // namespace mk::transport
