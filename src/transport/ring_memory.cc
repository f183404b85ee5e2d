#include "transport/ring_memory.h"

#include <numa.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <utility>

namespace mk::transport {
namespace {

bool numa_usable() {
  static const bool usable = numa_available() >= 0;
  return usable;
}

}  // namespace

Result<void> check_numa_node(int node) {
  if (node < -1) {
    return error(Errc::invalid_argument, "ChannelOptions::receiver_numa_node is " +
                                             std::to_string(node) +
                                             ": it must be -1 (the caller's node) or a node");
  }
  if (node == -1 || !numa_usable()) return {};
  if (node > numa_max_node() || numa_bitmask_isbitset(numa_all_nodes_ptr, node) == 0) {
    return error(Errc::invalid_argument, "ChannelOptions::receiver_numa_node is " +
                                             std::to_string(node) +
                                             ": this machine has no such NUMA node");
  }
  return {};
}

Result<RingMemory> RingMemory::allocate(std::size_t bytes, std::size_t alignment, int node) {
  if (numa_usable()) {
    // libnuma maps whole pages, so the block is page-aligned and therefore line-aligned.
    void* data = node >= 0 ? numa_alloc_onnode(bytes, node) : numa_alloc_local(bytes);
    if (data == nullptr) {
      return error(Errc::io_error, "cannot allocate " + std::to_string(bytes) +
                                       " bytes of channel ring on NUMA node " +
                                       std::to_string(node) + ": " + std::strerror(errno));
    }
    // Touching the pages here places them now (on the bound node, or the caller's for -1).
    std::memset(data, 0, bytes);
    return RingMemory(static_cast<std::byte*>(data), bytes, alignment, true);
  }
  void* data = ::operator new(bytes, std::align_val_t(alignment), std::nothrow);
  if (data == nullptr) {
    return error(Errc::io_error,
                 "cannot allocate " + std::to_string(bytes) + " bytes of channel ring");
  }
  std::memset(data, 0, bytes);
  return RingMemory(static_cast<std::byte*>(data), bytes, alignment, false);
}

RingMemory::RingMemory(RingMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(other.bytes_),
      alignment_(other.alignment_),
      from_numa_(other.from_numa_) {}

RingMemory& RingMemory::operator=(RingMemory&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = other.bytes_;
    alignment_ = other.alignment_;
    from_numa_ = other.from_numa_;
  }
  return *this;
}

RingMemory::~RingMemory() {
  release();
}

void RingMemory::release() noexcept {
  if (data_ == nullptr) return;
  if (from_numa_) {
    numa_free(data_, bytes_);
  } else {
    ::operator delete(data_, std::align_val_t(alignment_));
  }
  data_ = nullptr;
}

}  // namespace mk::transport
