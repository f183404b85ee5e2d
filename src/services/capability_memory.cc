// CapabilityMemory: one NodeMemory pool per node, found again by number in kernel processes.
#include "mk/capability_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "mk/skb.h"
#include "runtime/kept_descriptors.h"
#include "services/page_fault_guard.h"

namespace mk {

struct CapabilityMemory::Pools {
  struct Node {
    int node = 0;
    NodeMemory pool;
    std::span<std::byte> bytes;   // the whole pool, one region of its allocator
    std::size_t file_offset = 0;  // that region's offset in the pool's fd
  };
  std::uint64_t id = 0;
  std::vector<Node> nodes;      // by increasing node
  std::span<std::byte> window;  // reserved addresses for VSpace mappings (PROT_NONE)

  Pools() = default;
  Pools(const Pools&) = delete;
  Pools& operator=(const Pools&) = delete;
  ~Pools() {
    for (const Node& each : nodes)
      runtime::forget_in_kernel_processes(each.pool.fd());
    if (window.empty()) return;
    (void)services::unregister_window(reinterpret_cast<std::uintptr_t>(window.data()));
    ::munmap(window.data(), window.size());
  }
};

namespace {

/// The pools made in this process (or in the process it was forked from), by number. Weak:
/// the handles own the pools.
struct Registry {
  std::mutex mutex;
  std::map<std::uint64_t, std::weak_ptr<CapabilityMemory::Pools>> pools;
  std::uint64_t next = 1;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

namespace {

/// Adds a pool of `bytes` on `node`, whose allocator hands all of it to the service's table
/// (which decides, on every kernel alike, which bytes are whose).
Result<void> add_pool(CapabilityMemory::Pools& pools, int node, std::size_t bytes) {
  auto pool = NodeMemory::create(node, bytes);
  if (!pool) return std::move(pool).error();
  auto whole = pool->allocate(pool->size(), NodeMemory::page_size());
  if (!whole) return std::move(whole).error();
  auto mapped = pool->bytes(*whole);
  if (!mapped) return std::move(mapped).error();
  // Kernel processes map the pool's bytes at VSpace addresses later, through its memfd.
  runtime::keep_in_kernel_processes(pool->fd());
  pools.nodes.push_back(
      CapabilityMemory::Pools::Node{node, std::move(*pool), *mapped, whole->offset});
  return {};
}

/// Reserves `bytes` of addresses, inaccessible, for VSpace mappings; no memory is committed.
Result<void> reserve_window(CapabilityMemory::Pools& pools, std::size_t bytes) {
  if (bytes == 0) return {};
  const std::size_t page = NodeMemory::page_size();
  if (bytes % page != 0) {
    return error(Errc::invalid_argument, "capability memory: an address range of " +
                                             std::to_string(bytes) +
                                             " bytes is not a multiple of the page size");
  }
  void* at = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (at == MAP_FAILED) {
    return error(Errc::io_error, "capability memory: reserving " + std::to_string(bytes) +
                                     " bytes of addresses: mmap: " + std::strerror(errno));
  }
  if (auto guarded = services::register_window(reinterpret_cast<std::uintptr_t>(at), bytes);
      !guarded) {
    ::munmap(at, bytes);
    return std::move(guarded).error();
  }
  pools.window = {static_cast<std::byte*>(at), bytes};
  return {};
}

/// Numbers `pools` and lists it, so that find() reaches it in this process and its forks.
void registered(const std::shared_ptr<CapabilityMemory::Pools>& pools) {
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  std::erase_if(all.pools, [](const auto& entry) { return entry.second.expired(); });
  pools->id = all.next++;
  all.pools[pools->id] = pools;
}

}  // namespace

Result<CapabilityMemory> CapabilityMemory::create(std::span<const NodeBytes> nodes,
                                                  std::size_t address_bytes) {
  if (nodes.empty()) return error(Errc::invalid_argument, "capability memory: no node given");
  std::vector<NodeBytes> sorted(nodes.begin(), nodes.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const NodeBytes& a, const NodeBytes& b) { return a.node < b.node; });
  auto pools = std::make_shared<Pools>();
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i].node < 0) {
      return error(Errc::invalid_argument,
                   "capability memory: node " + std::to_string(sorted[i].node) + " is not a node");
    }
    if (i > 0 && sorted[i].node == sorted[i - 1].node) {
      return error(Errc::invalid_argument,
                   "capability memory: node " + std::to_string(sorted[i].node) + " given twice");
    }
    if (auto added = add_pool(*pools, sorted[i].node, sorted[i].bytes); !added) {
      return std::move(added).error();
    }
  }
  if (auto reserved = reserve_window(*pools, address_bytes); !reserved) {
    return std::move(reserved).error();
  }
  registered(pools);
  return CapabilityMemory(std::move(pools));
}

Result<CapabilityMemory> CapabilityMemory::create(const Skb& skb, std::size_t bytes_per_node,
                                                  std::size_t address_bytes) {
  if (bytes_per_node == 0) {
    return error(Errc::invalid_argument, "capability memory: 0 bytes per node");
  }
  const std::size_t page = NodeMemory::page_size();
  const std::size_t bytes = (bytes_per_node + page - 1) / page * page;
  std::vector<int> nodes;
  for (const NumaNodeInfo& node : skb.numa_nodes())
    nodes.push_back(node.os_index);
  std::sort(nodes.begin(), nodes.end());
  auto pools = std::make_shared<Pools>();
  for (int node : nodes) {
    auto added = add_pool(*pools, node, bytes);
    // The Skb may describe another machine: its nodes this host lacks are skipped.
    if (!added && added.error().code != Errc::not_found) return std::move(added).error();
  }
  if (pools->nodes.empty()) {
    return error(Errc::not_found, "capability memory: no NUMA node of the SKB exists on this host");
  }
  if (auto reserved = reserve_window(*pools, address_bytes); !reserved) {
    return std::move(reserved).error();
  }
  registered(pools);
  return CapabilityMemory(std::move(pools));
}

std::vector<int> CapabilityMemory::nodes() const {
  std::vector<int> out;
  for (const auto& node : pools_->nodes)
    out.push_back(node.node);
  return out;
}

NodeMemory* CapabilityMemory::pool(int node) const noexcept {
  for (auto& each : pools_->nodes) {
    if (each.node == node) return &each.pool;
  }
  return nullptr;
}

std::span<std::byte> CapabilityMemory::bytes(int node) const noexcept {
  for (const auto& each : pools_->nodes) {
    if (each.node == node) return each.bytes;
  }
  return {};
}

std::size_t CapabilityMemory::file_offset(int node) const noexcept {
  for (const auto& each : pools_->nodes) {
    if (each.node == node) return each.file_offset;
  }
  return 0;
}

std::span<std::byte> CapabilityMemory::address_range() const noexcept {
  return pools_->window;
}

std::uint64_t CapabilityMemory::id() const noexcept {
  return pools_->id;
}

Result<CapabilityMemory> CapabilityMemory::find(std::uint64_t id) {
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  auto found = all.pools.find(id);
  if (found != all.pools.end()) {
    if (auto pools = found->second.lock()) return CapabilityMemory(std::move(pools));
  }
  return error(Errc::not_found,
               "capability memory " + std::to_string(id) +
                   " is not in this process: make it before System::boot when kernels are "
                   "processes, and keep a handle to it");
}

}  // namespace mk
