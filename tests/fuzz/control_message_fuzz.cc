// Control datagrams come from other processes (kernels, or anything that reaches a socket):
// decode_control must turn every byte string into a header or a parse_error, and a decoded
// failure's status and text into an Error, without reading past the datagram.
#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/control.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto fds = static_cast<std::size_t>(data[0] % 4);
  const auto bytes = std::as_bytes(std::span(data + 1, size - 1));
  auto header = mk::runtime::decode_control(bytes, fds);
  if (!header) return 0;
  mk::runtime::ControlMessage message;
  message.header = *header;
  message.body.assign(bytes.begin() + sizeof(mk::runtime::ControlHeader), bytes.end());
  if (message.body.size() != header->body) __builtin_trap();
  (void)message.failure();
  return 0;
}
