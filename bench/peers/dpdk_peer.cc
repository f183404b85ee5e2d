// DPDK's rte_ring in single-producer single-consumer mode: 8-byte messages are the pointers
// it carries, larger ones are in a pool of N-byte buffers the pointers point into
// (PointerRingQueue). The ring is made with rte_ring_init on memory of our own, so
// no EAL (hugepages, PCI scan) is needed.
#include <rte_ring.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "peers/harness.h"
#include "peers/peer.h"

namespace mk::bench {
namespace {

class DpdkRing {
 public:
  static mk::Result<std::unique_ptr<DpdkRing>> make(std::size_t capacity) {
    const unsigned count = static_cast<unsigned>(capacity);
    // RING_F_EXACT_SZ (below) makes room for exactly `count` pointers, not count - 1, in a
    // table of the next power of two above count, as rte_ring_create sizes it.
    const unsigned table = rte_align32pow2(count + 1);
    const ssize_t size = rte_ring_get_memsize(table);
    if (size < 0) {
      return error(Errc::invalid_argument, fmt::format("rte_ring_get_memsize({}): {}", table,
                                                       std::strerror(static_cast<int>(-size))));
    }
    const auto rounded = (static_cast<std::size_t>(size) + RTE_CACHE_LINE_SIZE - 1) &
                         ~std::size_t{RTE_CACHE_LINE_SIZE - 1};
    auto* ring = static_cast<rte_ring*>(std::aligned_alloc(RTE_CACHE_LINE_SIZE, rounded));
    if (ring == nullptr) {
      return error(Errc::io_error, fmt::format("no memory for an rte_ring of {} bytes", rounded));
    }
    if (const int rc =
            rte_ring_init(ring, "mk-bench", count, RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
        rc != 0) {
      std::free(ring);
      return error(Errc::invalid_argument,
                   fmt::format("rte_ring_init of {} entries: {}", count, std::strerror(-rc)));
    }
    return std::unique_ptr<DpdkRing>(new DpdkRing(ring));
  }

  bool push(void* pointer) { return rte_ring_sp_enqueue(ring_.get(), pointer) == 0; }
  bool pop(void*& pointer) { return rte_ring_sc_dequeue(ring_.get(), &pointer) == 0; }

 private:
  struct Free {
    void operator()(rte_ring* ring) const { std::free(ring); }
  };

  explicit DpdkRing(rte_ring* ring) : ring_(ring) {}

  std::unique_ptr<rte_ring, Free> ring_;
};

template <std::size_t N>
using DpdkQueue = PointerRingQueue<N, DpdkRing>;

}  // namespace

const Peer kDpdkRteRingPeer{"dpdk_rte_ring", "libdpdk-dev", &peer_rtt_of_size<DpdkQueue>,
                            &peer_throughput_of_size<DpdkQueue>};

}  // namespace mk::bench
