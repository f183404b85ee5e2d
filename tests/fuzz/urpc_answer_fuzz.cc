// The answer side of a urpc ring whose receiver is another process (UrpcSender::poll_answer):
// that process may write anything into the ring while a request waits for its answer in its
// line. The fuzzer's bytes are what it leaves in the ring's memory, again and again: the sender
// must report the request answered (with an answer that lies within its slot), declined,
// broken or still pending, and go on sending or refuse; never read out of bounds, crash or loop.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mk/channel.h"
#include "mk/urpc.h"
#include "transport/urpc_channel.h"
#include "urpc_ring_shape.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& geometry = mk::fuzz::urpc_ring_shape();
  auto receiving = mk::transport::make_shared_urpc_receiver(geometry, -1, 0);
  if (!receiving) return 0;
  auto sending = mk::transport::attach_urpc_sender(geometry, receiving->fd, 0);
  if (!sending) return 0;
  auto& sender = dynamic_cast<mk::UrpcSender&>(*sending->sender);
  std::byte* ring = receiving->aux.get();
  const std::size_t bytes = mk::transport::shared_urpc_bytes(geometry, 0);
  const std::byte request[8] = {};
  std::size_t seen = 0;
  for (std::size_t at = 0; at < size; at += bytes) {
    (void)sender.send_for_answer(1, request, {});
    const std::size_t chunk = size - at < bytes ? size - at : bytes;
    std::memcpy(ring, data + at, chunk);
    mk::MessageView answer;
    if (sender.poll_answer(answer) == mk::UrpcSender::AnswerState::answered) {
      if (answer.payload.size() > sender.slot_payload()) __builtin_trap();
      // Every byte of the answer must be readable: the sanitizer checks each one.
      for (std::byte b : answer.payload)
        seen += static_cast<std::uint8_t>(b);
    }
    (void)sender.answer_changed();
    (void)sender.try_send(2, request);
  }
  (void)seen;
  return 0;
}
