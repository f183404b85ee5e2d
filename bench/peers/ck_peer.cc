// Concurrency Kit's ck_ring, single producer and single consumer, through the C wrapper of
// ck_ring_peer.c: 8-byte messages are the pointers it carries, larger ones are in a pool of
// N-byte buffers the pointers point into (PointerRingQueue).
#include <cstddef>
#include <memory>

#include "peers/ck_ring_peer.h"
#include "peers/harness.h"
#include "peers/peer.h"

namespace mk::bench {
namespace {

class CkRing {
 public:
  // ck keeps one entry free, so a ring of `capacity` entries (rounded up to a power of two)
  // holds one pointer fewer than the other peers' queues, rather than twice as many.
  static mk::Result<std::unique_ptr<CkRing>> make(std::size_t capacity) {
    std::size_t size = 4;
    while (size < capacity)
      size *= 2;
    mk_ck_spsc* ring = mk_ck_spsc_create(size);
    if (ring == nullptr) {
      return error(Errc::io_error, fmt::format("cannot make a ck_ring of {} entries", size));
    }
    return std::unique_ptr<CkRing>(new CkRing(ring));
  }

  bool push(void* pointer) { return mk_ck_spsc_enqueue(ring_.get(), pointer); }
  bool pop(void*& pointer) { return mk_ck_spsc_dequeue(ring_.get(), &pointer); }

 private:
  struct Destroy {
    void operator()(mk_ck_spsc* ring) const { mk_ck_spsc_destroy(ring); }
  };

  explicit CkRing(mk_ck_spsc* ring) : ring_(ring) {}

  std::unique_ptr<mk_ck_spsc, Destroy> ring_;
};

template <std::size_t N>
using CkQueue = PointerRingQueue<N, CkRing>;

}  // namespace

const Peer kCkRingPeer{"ck_ring", "libck-dev", &peer_rtt_of_size<CkQueue>,
                       &peer_throughput_of_size<CkQueue>};

}  // namespace mk::bench
