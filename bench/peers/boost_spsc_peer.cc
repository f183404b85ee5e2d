// boost::lockfree::spsc_queue of N-byte arrays, held by value in the queue's own array.
#include <boost/lockfree/spsc_queue.hpp>
#include <cstddef>
#include <memory>
#include <span>

#include "peers/harness.h"
#include "peers/peer.h"

namespace mk::bench {
namespace {

template <std::size_t N>
class BoostSpscQueue {
 public:
  static mk::Result<std::unique_ptr<BoostSpscQueue>> make(std::size_t capacity) {
    return std::make_unique<BoostSpscQueue>(capacity);
  }

  explicit BoostSpscQueue(std::size_t capacity) : queue_(capacity) {}

  bool try_send(const PeerPayload<N>& payload) { return queue_.push(payload); }

  // consume_one reads the element where it lies and frees its place afterwards.
  template <class F>
  bool try_receive(F&& f) {
    return queue_.consume_one([&f](const PeerPayload<N>& message) { f(std::span(message)); });
  }

 private:
  boost::lockfree::spsc_queue<PeerPayload<N>> queue_;
};

}  // namespace

const Peer kBoostSpscPeer{"boost_spsc", "libboost-dev", &peer_rtt_of_size<BoostSpscQueue>,
                          &peer_throughput_of_size<BoostSpscQueue>};

}  // namespace mk::bench
