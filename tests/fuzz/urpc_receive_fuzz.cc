// The receive path of a urpc ring whose sender is another process, which can write anything
// into the memory the two share. The fuzzer's bytes are what that process leaves in the ring,
// lap after lap: the receiver must deliver only messages that lie within the ring and within
// kMaxPayload, and stop the channel with an error at the first header that describes no such
// message; never read out of bounds, never crash, never loop.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mk/channel.h"
#include "transport/urpc_channel.h"
#include "urpc_ring_shape.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& geometry = mk::fuzz::urpc_ring_shape();
  auto end = mk::transport::make_shared_urpc_receiver(geometry, -1, 0);
  if (!end) return 0;
  // Without aux lines the mapping starts with the ring's control lines, then the slots.
  std::byte* ring = end->aux.get();
  const std::size_t bytes = mk::transport::shared_urpc_bytes(geometry, 0);
  std::size_t delivered = 0;
  for (std::size_t at = 0; at < size; at += bytes) {
    const std::size_t chunk = size - at < bytes ? size - at : bytes;
    std::memcpy(ring, data + at, chunk);
    end->receiver->poll(
        [&](const mk::MessageView& message) {
          // Every byte delivered must be readable: the sanitizer checks each one.
          std::uint8_t sum = 0;
          for (std::byte b : message.payload)
            sum ^= static_cast<std::uint8_t>(b);
          delivered += sum + 1;
          if (message.payload.size() > mk::kMaxPayload) __builtin_trap();
        },
        4 * geometry.slots);
    (void)end->receiver->has_message();
    (void)end->receiver->closed();
  }
  (void)delivered;
  return 0;
}
