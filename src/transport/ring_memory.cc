#include "transport/ring_memory.h"

#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
    return RingMemory(static_cast<std::byte*>(data), bytes, alignment, Kind::numa);
  }
  void* data = ::operator new(bytes, std::align_val_t(alignment), std::nothrow);
  if (data == nullptr) {
    return error(Errc::io_error,
                 "cannot allocate " + std::to_string(bytes) + " bytes of channel ring");
  }
  std::memset(data, 0, bytes);
  return RingMemory(static_cast<std::byte*>(data), bytes, alignment, Kind::heap);
}

namespace {

/// The seals a shared ring carries: no resizing, and no changing the seals.
constexpr int kRingSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

Error os_error(const std::string& what) {
  return error(Errc::io_error, what + ": " + std::strerror(errno));
}

}  // namespace

Result<RingMemory> RingMemory::allocate_shared(std::size_t bytes, int node) {
  const int fd = ::memfd_create("mk-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return os_error("memfd_create for a channel ring");
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0 ||
      ::fcntl(fd, F_ADD_SEALS, kRingSeals) != 0) {
    Error failure = os_error("sizing a channel ring of " + std::to_string(bytes) + " bytes");
    ::close(fd);
    return failure;
  }
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    Error failure = os_error("mapping a channel ring of " + std::to_string(bytes) + " bytes");
    ::close(fd);
    return failure;
  }
  // The policy of a shared mapping belongs to the memfd's pages: set before the first touch
  // below, it puts them on the receiver's node (preferred, so a full node still has room). With
  // no node given, the first touch puts them on the caller's.
  if (node >= 0 && numa_usable()) {
    bitmask* nodes = numa_allocate_nodemask();
    if (nodes != nullptr) {
      numa_bitmask_setbit(nodes, static_cast<unsigned>(node));
      // Best effort: a refused policy leaves the pages where the first touch puts them.
      (void)::mbind(data, bytes, MPOL_PREFERRED, nodes->maskp, nodes->size + 1, 0);
      numa_bitmask_free(nodes);
    }
  }
  std::memset(data, 0, bytes);
  return RingMemory(static_cast<std::byte*>(data), bytes, 0, Kind::mapping, fd);
}

Result<RingMemory> RingMemory::map_shared(int fd, std::size_t bytes) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) return os_error("a channel ring's memfd");
  if (!S_ISREG(info.st_mode) || info.st_size < 0 ||
      static_cast<std::size_t>(info.st_size) != bytes) {
    return error(Errc::invalid_argument, "a channel ring's memfd is " +
                                             std::to_string(info.st_size) + " bytes, expected " +
                                             std::to_string(bytes));
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
    return error(Errc::invalid_argument,
                 "a channel ring's memfd is not sealed against resizing: its owner could shrink "
                 "it under this end");
  }
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) return os_error("mapping a channel ring's memfd");
  return RingMemory(static_cast<std::byte*>(data), bytes, 0, Kind::mapping);
}

RingMemory::RingMemory(RingMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(other.bytes_),
      alignment_(other.alignment_),
      kind_(other.kind_),
      fd_(std::exchange(other.fd_, -1)) {}

RingMemory& RingMemory::operator=(RingMemory&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = other.bytes_;
    alignment_ = other.alignment_;
    kind_ = other.kind_;
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

RingMemory::~RingMemory() {
  release();
}

void RingMemory::release() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  if (data_ == nullptr) return;
  switch (kind_) {
    case Kind::numa:
      numa_free(data_, bytes_);
      break;
    case Kind::heap:
      ::operator delete(data_, std::align_val_t(alignment_));
      break;
    case Kind::mapping:
      ::munmap(data_, bytes_);
      break;
  }
  data_ = nullptr;
}

}  // namespace mk::transport
