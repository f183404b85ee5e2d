// The replica header's encoding: LEB128 varints for its numbers, since they are small in
// practice (object ids, wave and proposal numbers, epochs and kernel ids count up from zero)
// and every byte saved keeps small operations inside one channel slot.
#include "replica/wire.h"

namespace mk::replica {
namespace {

// Byte 1 holds the wave kind below these bits; they say whether status and flag follow.
constexpr std::uint8_t kHasStatus = 0x40;
constexpr std::uint8_t kHasFlag = 0x80;
constexpr std::uint8_t kWaveMask = 0x3f;
static_assert(static_cast<std::uint8_t>(WaveKind::confirm) <= kWaveMask);

std::size_t put_varint(std::uint64_t value, std::byte* out) noexcept {
  std::size_t used = 0;
  while (value >= 0x80) {
    out[used++] = static_cast<std::byte>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out[used++] = static_cast<std::byte>(value);
  return used;
}

// Refuses a number longer than its field, so a value never wraps and a run of continuation
// bytes cannot walk past the field.
template <class T>
bool get_varint(std::span<const std::byte> bytes, std::size_t& at, T& value) noexcept {
  constexpr unsigned kBits = sizeof(T) * 8;
  std::uint64_t result = 0;
  for (unsigned shift = 0; shift < kBits; shift += 7) {
    if (at >= bytes.size()) return false;
    const auto byte = static_cast<std::uint8_t>(bytes[at++]);
    const std::uint64_t part = byte & 0x7f;
    if (kBits - shift < 7 && (part >> (kBits - shift)) != 0) return false;
    result |= part << shift;
    if ((byte & 0x80) == 0) {
      value = static_cast<T>(result);
      return true;
    }
  }
  return false;
}

}  // namespace

std::size_t encode_header(const Header& header, std::span<std::byte, kMaxHeaderSize> out) noexcept {
  std::byte* at = out.data();
  *at++ = static_cast<std::byte>(header.step);
  std::uint8_t second = static_cast<std::uint8_t>(header.wave) & kWaveMask;
  if (header.status != 0) second |= kHasStatus;
  if (header.flag != 0) second |= kHasFlag;
  *at++ = static_cast<std::byte>(second);
  at += put_varint(header.object, at);
  at += put_varint(header.a, at);
  at += put_varint(header.b, at);
  at += put_varint(header.epoch, at);
  at += put_varint(header.root, at);
  at += put_varint(header.origin, at);
  if (header.status != 0) *at++ = static_cast<std::byte>(header.status);
  if (header.flag != 0) *at++ = static_cast<std::byte>(header.flag);
  return static_cast<std::size_t>(at - out.data());
}

std::optional<Header> decode_header(std::span<const std::byte> bytes, std::size_t& at) noexcept {
  std::size_t next = at;
  if (bytes.size() < next || bytes.size() - next < 2) return std::nullopt;
  Header header;
  header.step = static_cast<Step>(bytes[next++]);
  const auto second = static_cast<std::uint8_t>(bytes[next++]);
  header.wave = static_cast<WaveKind>(second & kWaveMask);
  if (!get_varint(bytes, next, header.object) || !get_varint(bytes, next, header.a) ||
      !get_varint(bytes, next, header.b) || !get_varint(bytes, next, header.epoch) ||
      !get_varint(bytes, next, header.root) || !get_varint(bytes, next, header.origin)) {
    return std::nullopt;
  }
  for (auto [bit, field] : {std::pair{kHasStatus, &header.status}, {kHasFlag, &header.flag}}) {
    if ((second & bit) == 0) continue;
    if (next >= bytes.size()) return std::nullopt;
    *field = static_cast<std::uint8_t>(bytes[next++]);
    // Present means not zero: a zero here is an encoding no sender makes.
    if (*field == 0) return std::nullopt;
  }
  at = next;
  return header;
}

}  // namespace mk::replica
