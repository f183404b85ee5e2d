// The replica layer's header comes from a peer kernel: decode_header must turn every byte
// string into a header or nothing without reading past it, and a decoded header must encode
// back to a header that decodes to the same fields.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "replica/wire.h"

namespace {

bool same(const mk::replica::Header& x, const mk::replica::Header& y) {
  return x.object == y.object && x.a == y.a && x.b == y.b && x.epoch == y.epoch &&
         x.root == y.root && x.origin == y.origin && x.step == y.step && x.wave == y.wave &&
         x.status == y.status && x.flag == y.flag;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  std::size_t at = 0;
  auto header = mk::replica::decode_header(bytes, at);
  if (!header) {
    if (at != 0) __builtin_trap();  // A refused header consumes nothing.
    return 0;
  }
  if (at > size) __builtin_trap();
  std::array<std::byte, mk::replica::kMaxHeaderSize> encoded;
  const std::size_t length = mk::replica::encode_header(*header, encoded);
  std::size_t again = 0;
  auto decoded = mk::replica::decode_header(std::span(encoded).first(length), again);
  if (!decoded || again != length || !same(*header, *decoded)) __builtin_trap();
  return 0;
}
