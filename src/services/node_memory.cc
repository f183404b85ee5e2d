#include "mk/node_memory.h"

#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <utility>

#include "mk/memory_request.h"
#include "mk/skb.h"
#include "services/region_allocator.h"

namespace mk {
namespace {

bool numa_usable() {
  static const bool usable = numa_available() >= 0;
  return usable;
}

Error os_error(const std::string& what) {
  return error(Errc::io_error, what + ": " + std::strerror(errno));
}

std::string node_name(int node) {
  return "NUMA node " + std::to_string(node);
}

/// This host's nodes as libnuma lists them ("0-1,3"), for errors.
std::string host_nodes() {
  std::string list;
  const int max = numa_max_node();
  for (int node = 0; node <= max; ++node) {
    if (numa_bitmask_isbitset(numa_all_nodes_ptr, static_cast<unsigned>(node)) == 0) continue;
    if (!list.empty()) list += ',';
    list += std::to_string(node);
  }
  return list;
}

/// Success when this host has `node` (-1 always), else not_found naming it.
Result<void> check_host_node(int node) {
  if (node < -1) {
    return error(Errc::invalid_argument,
                 node_name(node) + ": a node is -1 (none) or an OS index from 0");
  }
  if (node == -1) return {};
  if (!numa_usable()) {
    if (node == 0) return {};
    return error(Errc::not_found, node_name(node) +
                                      " does not exist on this host: it has no NUMA support, "
                                      "so node 0 only");
  }
  if (node > numa_max_node() ||
      numa_bitmask_isbitset(numa_all_nodes_ptr, static_cast<unsigned>(node)) == 0) {
    return error(Errc::not_found, node_name(node) + " does not exist on this host (its nodes: " +
                                      host_nodes() + ")");
  }
  return {};
}

/// Binds [data, data + bytes) to `node` strictly, before any of its pages exists.
Result<void> bind(void* data, std::size_t bytes, int node) {
  bitmask* nodes = numa_allocate_nodemask();
  if (nodes == nullptr) return os_error("a nodemask for " + node_name(node));
  numa_bitmask_setbit(nodes, static_cast<unsigned>(node));
  const long bound = ::mbind(data, bytes, MPOL_BIND, nodes->maskp, nodes->size + 1, 0);
  const int saved = errno;
  numa_bitmask_free(nodes);
  errno = saved;
  if (bound != 0) return os_error("mbind(MPOL_BIND) of a pool to " + node_name(node));
  return {};
}

/// Pools are told apart by this number, so that a region of one is an error in another.
std::atomic<std::uint64_t> next_pool_id{1};

/// Seals of the memfd: another process holding it can neither shrink the pages out from
/// under this one's mapping nor lift the seals.
constexpr int kPoolSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

}  // namespace

struct NodeMemory::State {
  State(int fd, std::byte* data, std::size_t size, int node, bool bound, std::uint64_t id)
      : fd(fd),
        data(data),
        size(size),
        node(node),
        bound(bound),
        allocator(size, page_size(), id) {}
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    ::munmap(data, size);
    ::close(fd);
  }

  /// The checked bytes [offset, offset + length) of `region`.
  Result<std::byte*> locate(const Region& region, std::size_t offset, std::size_t length) const {
    {
      std::lock_guard lock(mutex);
      if (auto checked = allocator.check(region); !checked) return std::move(checked).error();
    }
    if (offset > region.size || length > region.size - offset) {
      return error(Errc::invalid_argument, "bytes [" + std::to_string(offset) + ", +" +
                                               std::to_string(length) +
                                               ") lie past the end of a region of " +
                                               std::to_string(region.size) + " bytes");
    }
    return data + region.offset + offset;
  }

  const int fd;
  std::byte* const data;
  const std::size_t size;
  const int node;
  const bool bound;
  mutable std::mutex mutex;
  services::RegionAllocator allocator;  // guarded by mutex
};

Result<NodeMemory> NodeMemory::create(int node, std::size_t bytes) {
  const std::size_t page = page_size();
  if (bytes == 0 || bytes % page != 0) {
    return error(Errc::invalid_argument, "a pool of " + std::to_string(bytes) +
                                             " bytes: the size must be a non-zero multiple "
                                             "of the page size, " +
                                             std::to_string(page));
  }
  if (bytes > static_cast<std::size_t>(std::numeric_limits<off_t>::max())) {
    return error(Errc::too_large, "a pool of " + std::to_string(bytes) + " bytes");
  }
  if (auto known = check_host_node(node); !known) return std::move(known).error();
  const std::string what = "a pool of " + std::to_string(bytes) + " bytes on " + node_name(node);

  const int fd = ::memfd_create("mk-node-memory", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return os_error("memfd_create for " + what);
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    Error failure = os_error("ftruncate of " + what);
    ::close(fd);
    return failure;
  }
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    Error failure = os_error("mmap of " + what);
    ::close(fd);
    return failure;
  }
  auto undo = [&](Error failure) {
    ::munmap(data, bytes);
    ::close(fd);
    return failure;
  };
  // The policy of a shared mapping is the memfd's: set before any page exists, it places every
  // page, the ones fallocate makes below and any other process's.
  const bool bound = node >= 0 && numa_usable();
  if (bound) {
    if (auto placed = bind(data, bytes, node); !placed) return undo(std::move(placed).error());
  }
  // Every page now, so that a node without room is this error and not a SIGBUS on a later
  // first touch.
  if (::fallocate(fd, 0, 0, static_cast<off_t>(bytes)) != 0) {
    return undo(os_error("fallocate of " + what));
  }
  if (::fcntl(fd, F_ADD_SEALS, kPoolSeals) != 0) return undo(os_error("sealing " + what));
  // Only uniqueness matters: no data is published through the counter.
  const std::uint64_t id = next_pool_id.fetch_add(1, std::memory_order_relaxed);
  return NodeMemory(
      std::make_unique<State>(fd, static_cast<std::byte*>(data), bytes, node, bound, id));
}

Result<NodeMemory> NodeMemory::create(const Skb& skb, const MemoryRequest& request,
                                      std::size_t bytes) {
  Result<int> node = skb.memory_node(request);
  if (!node) return std::move(node).error();
  if (auto known = check_host_node(*node); !known) {
    Error failure = std::move(known).error();
    failure.message = "the SKB of " + skb.origin() + " picked " + node_name(*node) + ", but " +
                      failure.message + ": pools are placed on this host's nodes";
    return failure;
  }
  return create(*node, bytes);
}

NodeMemory::NodeMemory(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
NodeMemory::NodeMemory(NodeMemory&& other) noexcept = default;
NodeMemory& NodeMemory::operator=(NodeMemory&& other) noexcept = default;
NodeMemory::~NodeMemory() = default;

Result<NodeMemory::Region> NodeMemory::allocate(std::size_t bytes, std::size_t alignment) {
  Result<Region> region = [&] {
    std::lock_guard lock(state_->mutex);
    return state_->allocator.allocate(bytes, alignment);
  }();
  // The region is this caller's alone now; earlier users' bytes must not show through.
  if (region) std::memset(state_->data + region->offset, 0, region->size);
  return region;
}

Result<void> NodeMemory::free(const Region& region) {
  std::lock_guard lock(state_->mutex);
  return state_->allocator.free(region);
}

Result<void> NodeMemory::read(const Region& region, std::size_t offset,
                              std::span<std::byte> out) const {
  Result<std::byte*> from = state_->locate(region, offset, out.size());
  if (!from) return std::move(from).error();
  if (!out.empty()) std::memcpy(out.data(), *from, out.size());
  return {};
}

Result<void> NodeMemory::write(const Region& region, std::size_t offset,
                               std::span<const std::byte> in) {
  Result<std::byte*> to = state_->locate(region, offset, in.size());
  if (!to) return std::move(to).error();
  if (!in.empty()) std::memcpy(*to, in.data(), in.size());
  return {};
}

Result<std::span<std::byte>> NodeMemory::bytes(const Region& region) const {
  Result<std::byte*> start = state_->locate(region, 0, region.size);
  if (!start) return std::move(start).error();
  return std::span<std::byte>(*start, region.size);
}

NodeMemory::Usage NodeMemory::usage() const {
  std::lock_guard lock(state_->mutex);
  return state_->allocator.usage();
}

int NodeMemory::fd() const noexcept {
  return state_->fd;
}

int NodeMemory::node() const noexcept {
  return state_->node;
}

bool NodeMemory::bound() const noexcept {
  return state_->bound;
}

std::size_t NodeMemory::size() const noexcept {
  return state_->size;
}

std::size_t NodeMemory::page_size() noexcept {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

}  // namespace mk
