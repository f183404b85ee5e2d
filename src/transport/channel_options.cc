#include "transport/channel_options.h"

#include <fmt/format.h>

#include <bit>

#include "transport/line_size.h"
#include "transport/ring_memory.h"

namespace mk::transport {

std::size_t min_slots(std::size_t line_size) {
  SlotGeometry geometry;
  geometry.payload = line_size - kHeaderSize;
  geometry.payload_reciprocal =
      ((std::uint64_t{1} << 32) + geometry.payload - 1) / geometry.payload;
  const std::size_t needed = geometry.slots_for(kMaxPayload);
  std::size_t slots = 1;
  while (slots - slots / 4 < needed)
    slots *= 2;
  return slots;
}

Result<SlotGeometry> make_geometry(const ChannelOptions& options) {
  const std::size_t line_size = options.line_size == 0 ? detected_line_size() : options.line_size;
  if (line_size < kMinLineSize || line_size > kMaxLineSize || !std::has_single_bit(line_size)) {
    return error(Errc::invalid_argument,
                 fmt::format("ChannelOptions::line_size is {}: it must be 0 (detect) or a power "
                             "of two from {} to {}",
                             options.line_size, kMinLineSize, kMaxLineSize));
  }
  const std::size_t fewest = min_slots(line_size);
  if (!std::has_single_bit(options.slots) || options.slots < fewest || options.slots > kMaxSlots) {
    return error(Errc::invalid_argument,
                 fmt::format("ChannelOptions::slots is {}: it must be a power of two from {} "
                             "(enough for a {}-byte message in {}-byte slots) to {}",
                             options.slots, fewest, kMaxPayload, line_size, kMaxSlots));
  }
  if (auto node = check_numa_node(options.receiver_numa_node); !node) return node.error();

  SlotGeometry geometry;
  geometry.line_size = line_size;
  geometry.line_shift = static_cast<unsigned>(std::countr_zero(line_size));
  geometry.payload = line_size - kHeaderSize;
  geometry.slots = options.slots;
  geometry.slots_shift = static_cast<unsigned>(std::countr_zero(options.slots));
  geometry.index_mask = options.slots - 1;
  geometry.payload_reciprocal =
      ((std::uint64_t{1} << 32) + geometry.payload - 1) / geometry.payload;
  return geometry;
}

}  // namespace mk::transport
