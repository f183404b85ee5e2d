// moodycamel::ReaderWriterQueue of N-byte arrays, held by value in its blocks.
#include <readerwriterqueue/readerwriterqueue.h>

#include <cstddef>
#include <memory>
#include <span>

#include "peers/harness.h"
#include "peers/peer.h"

namespace mk::bench {
namespace {

template <std::size_t N>
class MoodycamelQueue {
 public:
  static mk::Result<std::unique_ptr<MoodycamelQueue>> make(std::size_t capacity) {
    return std::make_unique<MoodycamelQueue>(capacity);
  }

  explicit MoodycamelQueue(std::size_t capacity) : queue_(capacity) {}

  // try_enqueue never allocates: a full queue refuses, as the other peers' queues do.
  bool try_send(const PeerPayload<N>& payload) { return queue_.try_enqueue(payload); }

  // peek and pop: the element is read where it lies, then its place is freed.
  template <class F>
  bool try_receive(F&& f) {
    const PeerPayload<N>* front = queue_.peek();
    if (front == nullptr) return false;
    f(std::span(*front));
    queue_.pop();
    return true;
  }

 private:
  moodycamel::ReaderWriterQueue<PeerPayload<N>> queue_;
};

}  // namespace

const Peer kMoodycamelPeer{"moodycamel", "libreaderwriterqueue-dev",
                           &peer_rtt_of_size<MoodycamelQueue>,
                           &peer_throughput_of_size<MoodycamelQueue>};

}  // namespace mk::bench
