#include "transport/channel_options.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <string>

#include "mk/channel_geometry.h"
#include "skb/host_line_size.h"
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

Result<SlotGeometry> derive_geometry(const GeometryRequest& request) {
  const std::size_t line_size = request.line_size;
  if (line_size < kMinLineSize || line_size > kMaxLineSize || !std::has_single_bit(line_size)) {
    return error(Errc::invalid_argument,
                 fmt::format("{} is {}: a channel's slot is one line, a power of two from {} to "
                             "{} bytes",
                             request.line_size_name, line_size, kMinLineSize, kMaxLineSize));
  }
  const std::size_t fewest = min_slots(line_size);
  if (!std::has_single_bit(request.slots) || request.slots < fewest || request.slots > kMaxSlots) {
    return error(
        Errc::invalid_argument,
        fmt::format("{} is {}: it must be a power of two from {} (enough for a {}-byte "
                    "message in {}-byte slots) to {}",
                    request.slots_name, request.slots, fewest, kMaxPayload, line_size, kMaxSlots));
  }
  const std::size_t separation = request.separation == 0 ? line_size : request.separation;
  if (separation < line_size || separation > kMaxSeparation || !std::has_single_bit(separation)) {
    return error(Errc::invalid_argument,
                 fmt::format("{} is {}: the words a channel's two ends write are kept apart by a "
                             "power of two from the line size ({}) to {} bytes",
                             request.separation_name, separation, line_size, kMaxSeparation));
  }

  SlotGeometry geometry;
  geometry.line_size = line_size;
  geometry.line_shift = static_cast<unsigned>(std::countr_zero(line_size));
  geometry.payload = line_size - kHeaderSize;
  geometry.slots = request.slots;
  geometry.slots_shift = static_cast<unsigned>(std::countr_zero(request.slots));
  geometry.index_mask = request.slots - 1;
  geometry.payload_reciprocal =
      ((std::uint64_t{1} << 32) + geometry.payload - 1) / geometry.payload;
  geometry.separation = separation;
  return geometry;
}

Result<SlotGeometry> make_geometry(const ChannelOptions& options) {
  const bool detect = options.line_size == 0;
  auto geometry = derive_geometry(GeometryRequest{
      .line_size = detect ? detail::host_line_size() : options.line_size,
      .line_size_name = detect ? "ChannelOptions::line_size (0: this machine's, detected)"
                               : "ChannelOptions::line_size",
      .slots = options.slots,
      .slots_name = "ChannelOptions::slots",
      .separation = options.separation,
      .separation_name = "ChannelOptions::separation",
  });
  if (!geometry) return geometry;
  if (auto node = check_numa_node(options.receiver_numa_node); !node) return node.error();
  return geometry;
}

}  // namespace mk::transport

namespace mk {
namespace {

std::size_t floor_pow2(std::uint64_t value) {
  return value == 0 ? 0 : std::bit_floor(value);
}

// The receiver's L2 capacity, if the SKB knows it.
std::uint64_t l2_bytes(const Skb& skb, const CoreInfo& receiver) {
  for (std::size_t index : receiver.caches) {
    const CacheInfo& cache = skb.caches()[index];
    if (cache.level == 2) return cache.size;
  }
  return 0;
}

}  // namespace

std::size_t min_ring_slots(std::size_t line_size) {
  return transport::min_slots(line_size);
}

Result<ChannelOptions> channel_options_for(const Skb& skb, CoreId from, CoreId to,
                                           std::optional<std::size_t> slots) {
  if (auto sender = skb.numa_node_of(from); !sender) return std::move(sender).error();
  auto node = skb.numa_node_of(to);
  if (!node) return std::move(node).error();
  const CoreInfo receiver = skb.core_info(to).value();

  const std::size_t line = skb.cache_line_size();
  const std::string line_name =
      fmt::format("the SKB's cache_line_size ({})", to_string(skb.cache_line_size_source()));
  const std::string separation_name =
      fmt::format("the SKB's prefetch_pair_distance ({})", to_string(skb.prefetch_pair_source()));
  std::string slots_name = "ring_slots";
  std::size_t count = 0;
  if (slots) {
    count = *slots;
  } else if (auto asserted = skb.asserted_ring_slots()) {
    count = *asserted;
    slots_name = "the SKB's ring_slots (asserted)";
  } else {
    count = kDefaultRingSlots;
    // A ring larger than half the receiver's L2 would evict the receiver's own working set.
    if (const std::uint64_t l2 = l2_bytes(skb, receiver); l2 > 0) {
      count = std::min(count, floor_pow2(l2 / 2 / line));
    }
    // Lines outside the transport's range fall through to derive_geometry's error below.
    if (line >= transport::kHeaderSize + 1) count = std::max(count, transport::min_slots(line));
    slots_name = "the ring size derived from the SKB's facts";
  }
  auto geometry = transport::derive_geometry(transport::GeometryRequest{
      .line_size = line,
      .line_size_name = line_name,
      .slots = count,
      .slots_name = slots_name,
      .separation = skb.prefetch_pair_distance(),
      .separation_name = separation_name,
  });
  if (!geometry) return std::move(geometry).error();
  return ChannelOptions{.slots = geometry->slots,
                        .receiver_numa_node = *node,
                        .line_size = geometry->line_size,
                        .separation = geometry->separation};
}

}  // namespace mk
