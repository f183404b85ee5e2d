// urpc, mk's own channel, through its public interface (its ends as their own types, as
// mk/urpc.h offers them, so that sends and polls are direct calls like the peers'): the
// peers' baseline.
#include <cstddef>
#include <memory>
#include <span>

#include "mk/channel.h"
#include "mk/urpc.h"
#include "peers/harness.h"
#include "peers/peer.h"

namespace mk::bench {
namespace {

// One urpc channel with the runtime's default options, 256 cache-line slots, whatever capacity
// the suite asks for: a message takes as many slots as its header and payload fill, so the
// ring holds 256 messages of 8 bytes but only 6 of 2048, as it does under the runtime.
template <std::size_t N>
class UrpcQueue {
 public:
  static mk::Result<std::unique_ptr<UrpcQueue>> make(std::size_t /*capacity*/) {
    auto ends = make_urpc_channel();
    if (!ends) return std::move(ends).error();
    return std::unique_ptr<UrpcQueue>(new UrpcQueue(std::move(*ends)));
  }

  bool try_send(const PeerPayload<N>& payload) {
    return ends_.sender->try_send(1, payload) == SendStatus::ok;
  }

  template <class F>
  bool try_receive(F&& f) {
    return ends_.receiver->poll_each([&f](const MessageView& message) { f(message.payload); }, 1) ==
           1;
  }

 private:
  explicit UrpcQueue(UrpcChannel ends) : ends_(std::move(ends)) {}

  UrpcChannel ends_;
};

}  // namespace

const Peer kUrpcPeer{"urpc", "mk", &peer_rtt_of_size<UrpcQueue>,
                     &peer_throughput_of_size<UrpcQueue>};

}  // namespace mk::bench
