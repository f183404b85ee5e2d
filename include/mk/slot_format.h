// The slot format every channel kind shares: one cache line, payload first, header word last.
// Public because urpc's inline ends (mk/urpc.h) are built on it; docs/transport.md, "Slot
// layout", describes it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "mk/channel.h"

namespace mk::transport {

/// Bytes of the header word at the end of every slot.
inline constexpr std::size_t kHeaderSize = sizeof(std::uint64_t);
/// Smallest line size a channel accepts: a kMaxPayload message must fit the header's slot count.
inline constexpr std::size_t kMinLineSize = 32;
/// Largest line size a channel accepts.
inline constexpr std::size_t kMaxLineSize = 256;
static_assert(kMaxSeparation >= kMaxLineSize, "a separation of one line must always be allowed");
/// Most slots a ring may have; more is a configuration mistake, not a bigger buffer.
inline constexpr std::size_t kMaxSlots = std::size_t{1} << 20;

// Header word: type in bits 0-15, payload length in 16-27, slot count in 28-35 (0 marks a
// continuation slot), packed messages after the first in 36-39, the open bit in 40, the run
// bit in 41, the answer bit in 42, epoch in 43-63. The type and length are the slot's first
// message's; a urpc slot whose first message leaves room carries more small messages after it
// (docs/transport.md, "Small messages share slots"): each behind a sub-header of its own, or,
// in a run, end to end with the first's type and length and no sub-headers. A slot with the
// answer bit holds one message whose receiver may answer it in the same slot ("Answers in the
// request's line"): the answer's header keeps the bit and the epoch and has a slot count no
// message has (kAnsweredSlots, or kDeclinedSlots when the receiver answers elsewhere).
/// Where the payload length starts in a header word.
inline constexpr unsigned kLengthShift = 16;
/// Where the slot count starts.
inline constexpr unsigned kSlotsShift = 28;
/// Where the count of packed messages after the first starts.
inline constexpr unsigned kExtraShift = 36;
/// The open bit.
inline constexpr unsigned kOpenShift = 40;
/// The run bit.
inline constexpr unsigned kRunShift = 41;
/// The answer bit.
inline constexpr unsigned kAnswerShift = 42;
/// Where the epoch starts.
inline constexpr unsigned kEpochShift = 43;
/// The length field, shifted down.
inline constexpr std::uint64_t kLengthMask = (std::uint64_t{1} << (kSlotsShift - kLengthShift)) - 1;
/// The slot count field, shifted down.
inline constexpr std::uint64_t kSlotsMask = (std::uint64_t{1} << (kExtraShift - kSlotsShift)) - 1;
/// The packed count field, shifted down.
inline constexpr std::uint64_t kExtraMask = (std::uint64_t{1} << (kOpenShift - kExtraShift)) - 1;
/// The epoch field, shifted down.
inline constexpr std::uint64_t kEpochMask = (std::uint64_t{1} << (64 - kEpochShift)) - 1;
/// Set while the sender may still append messages to the slot; cleared once it moved on.
inline constexpr std::uint64_t kOpenBit = std::uint64_t{1} << kOpenShift;
/// Set when the slot's packed messages form a run: each has the first's type and length and
/// follows the one before it directly, the k-th after the first at byte k * length.
inline constexpr std::uint64_t kRunBit = std::uint64_t{1} << kRunShift;
/// Set on a slot whose one message asks its receiver for an answer in the same slot, and kept
/// on the answer that replaces it.
inline constexpr std::uint64_t kAnswerBit = std::uint64_t{1} << kAnswerShift;
/// The slot count of an answer written into its request's slot: more slots than any message
/// takes, so no message header is ever taken for an answer.
inline constexpr std::size_t kAnsweredSlots = kSlotsMask;
/// The slot count of a request's slot whose receiver answers elsewhere (or not at all).
inline constexpr std::size_t kDeclinedSlots = kSlotsMask - 1;
/// Most messages a slot carries after its first.
inline constexpr std::size_t kMaxPacked = kExtraMask;
/// Bytes in front of each message after a slot's first: its type and length, 16 bits each.
inline constexpr std::size_t kPackedHeaderSize = 4;
/// Packed messages start at multiples of this offset in the slot, so their sub-headers align.
inline constexpr std::size_t kPackedAlign = 4;
/// The epoch bits in place, for comparing a header with the epoch a position expects.
inline constexpr std::uint64_t kEpochField = kEpochMask << kEpochShift;

static_assert(kMaxPayload <= kLengthMask, "the header's length field must hold kMaxPayload");
static_assert((kMaxPayload + kMinLineSize - kHeaderSize - 1) / (kMinLineSize - kHeaderSize) <
                  kDeclinedSlots,
              "the header's slot count must hold a kMaxPayload message at the smallest line, "
              "below the counts that mark answers");

/// Packs a header word. `epoch_bits` comes from SlotGeometry::epoch_bits.
constexpr std::uint64_t encode_header(MessageType type, std::size_t length, std::size_t slots,
                                      std::uint64_t epoch_bits) noexcept {
  return std::uint64_t{type} | (std::uint64_t{length} << kLengthShift) |
         (std::uint64_t{slots} << kSlotsShift) | epoch_bits;
}

/// The message type of a header word.
constexpr MessageType header_type(std::uint64_t header) noexcept {
  return static_cast<MessageType>(header);
}

/// The payload length, in bytes, of a first slot's header word.
constexpr std::size_t header_length(std::uint64_t header) noexcept {
  return (header >> kLengthShift) & kLengthMask;
}

/// How many slots the message starting at this header occupies (0: a continuation slot).
constexpr std::size_t header_slots(std::uint64_t header) noexcept {
  return (header >> kSlotsShift) & kSlotsMask;
}

/// How many messages after the first this header says its slot carries.
constexpr std::size_t header_packed(std::uint64_t header) noexcept {
  return (header >> kExtraShift) & kExtraMask;
}

/// `header` saying that its slot carries `packed` messages after the first.
constexpr std::uint64_t with_packed(std::uint64_t header, std::size_t packed) noexcept {
  return (header & ~(kExtraMask << kExtraShift)) | (std::uint64_t{packed} << kExtraShift);
}

/// Where a packed message's sub-header goes, after a slot's messages that end at `end`.
constexpr std::size_t packed_offset(std::size_t end) noexcept {
  return (end + kPackedAlign - 1) & ~(kPackedAlign - 1);
}

/// The shape of one ring: fixed at creation, so the hot paths only shift, mask and multiply.
struct SlotGeometry {
  std::size_t line_size = 0;             ///< Bytes per slot: one cache line.
  unsigned line_shift = 0;               ///< log2(line_size).
  std::size_t payload = 0;               ///< Payload bytes per slot: line_size - kHeaderSize.
  std::size_t slots = 0;                 ///< Slots in the ring, a power of two.
  unsigned slots_shift = 0;              ///< log2(slots).
  std::uint64_t index_mask = 0;          ///< slots - 1.
  std::uint64_t payload_reciprocal = 0;  ///< ceil(2^32 / payload), for slots_for without a divide.
  /// Bytes between the ring's words that different ends write (the SKB's prefetch pair
  /// distance): a power of two from line_size to kMaxSeparation.
  std::size_t separation = 0;

  /// Slots a payload of `length` (at most kMaxPayload) bytes occupies; at least one.
  std::size_t slots_for(std::size_t length) const noexcept {
    if (length <= payload) return 1;
    // floor(n * ceil(2^32/p) / 2^32) == floor(n / p) exactly while n < 2^12 and p < 2^8: the
    // error term n * (ceil(2^32/p) - 2^32/p) / 2^32 < 2^-20 stays below the 1/p gap.
    return static_cast<std::size_t>(((length - 1) * payload_reciprocal) >> 32) + 1;
  }

  /// Byte offset of the slot that holds ring position `position`.
  std::size_t offset_of(std::uint64_t position) const noexcept {
    return static_cast<std::size_t>(position & index_mask) << line_shift;
  }

  /// Epoch field a header written at `position` carries: lap + 1, so zeroed memory never
  /// matches and a slot left from the previous lap (one epoch behind) is never taken for new.
  std::uint64_t epoch_bits(std::uint64_t position) const noexcept {
    return (((position >> slots_shift) + 1) & kEpochMask) << kEpochShift;
  }
};

/// Copies `from` to `to`. Messages are mostly a few words long: those are moved by two
/// overlapping loads and stores of 8 (or 4) bytes each, without a call into memcpy, whose
/// setup costs more than such a copy.
inline void copy_bytes(std::byte* to, std::span<const std::byte> from) noexcept {
  const std::size_t n = from.size();
  const std::byte* src = from.data();
  if (n >= 8 && n <= 16) {
    std::uint64_t first, last;
    std::memcpy(&first, src, 8);
    std::memcpy(&last, src + n - 8, 8);
    std::memcpy(to, &first, 8);
    std::memcpy(to + n - 8, &last, 8);
  } else if (n >= 4 && n < 8) {
    std::uint32_t first, last;
    std::memcpy(&first, src, 4);
    std::memcpy(&last, src + n - 4, 4);
    std::memcpy(to, &first, 4);
    std::memcpy(to + n - 4, &last, 4);
  } else if (n != 0) {
    std::memcpy(to, src, n);
  }
}

/// Copies `head`, then `body` right behind it, to `to`: a message sent in two parts
/// (ChannelSender::try_send_parts).
inline void copy_parts(std::byte* to, std::span<const std::byte> head,
                       std::span<const std::byte> body) noexcept {
  copy_bytes(to, head);
  copy_bytes(to + head.size(), body);
}

/// Copies `n` bytes, from byte `from` on, of the payload that is `head` followed by `body` to
/// `to`: one slot's share of a message sent in two parts.
inline void copy_part_range(std::byte* to, std::span<const std::byte> head,
                            std::span<const std::byte> body, std::size_t from,
                            std::size_t n) noexcept {
  if (from < head.size()) {
    const std::size_t in_head = std::min(n, head.size() - from);
    std::memcpy(to, head.data() + from, in_head);
    to += in_head;
    n -= in_head;
    from = 0;
  } else {
    from -= head.size();
  }
  if (n != 0) std::memcpy(to, body.data() + from, n);
}

/// Copies the continuation part of the message whose payload is `head` followed by `body`
/// (bytes from `geometry.payload` on) into the slots after `position`, calling
/// `write_header(slot, header)` for each continuation slot.
template <class WriteHeader>
void scatter_continuation(std::byte* ring, const SlotGeometry& geometry, std::uint64_t position,
                          std::span<const std::byte> head, std::span<const std::byte> body,
                          std::size_t slots, WriteHeader&& write_header) {
  const std::size_t length = head.size() + body.size();
  std::size_t offset = geometry.payload;
  for (std::size_t k = 1; k < slots; ++k) {
    const std::size_t chunk = std::min(geometry.payload, length - offset);
    std::byte* slot = ring + geometry.offset_of(position + k);
    copy_part_range(slot, head, body, offset, chunk);
    write_header(slot, encode_header(0, 0, 0, geometry.epoch_bits(position + k)));
    offset += chunk;
  }
}

/// Copies a multi-slot message starting at `position` into `scratch` (kMaxPayload bytes) and
/// returns it as one span.
inline std::span<const std::byte> gather(const std::byte* ring, const SlotGeometry& geometry,
                                         std::uint64_t position, std::size_t length,
                                         std::size_t slots, std::byte* scratch) {
  std::size_t offset = 0;
  for (std::size_t k = 0; k < slots; ++k) {
    const std::size_t chunk = std::min(geometry.payload, length - offset);
    std::memcpy(scratch + offset, ring + geometry.offset_of(position + k), chunk);
    offset += chunk;
  }
  return {scratch, length};
}

/// Sets a flag for the life of a poll call, so that a poll from inside on_message (which would
/// deliver messages out of order) is refused instead.
class PollGuard {
 public:
  /// Marks `polling` as set; the caller checked it was clear.
  explicit PollGuard(bool& polling) noexcept : polling_(polling) { polling_ = true; }
  ~PollGuard() { polling_ = false; }
  PollGuard(const PollGuard&) = delete;
  PollGuard& operator=(const PollGuard&) = delete;

 private:
  bool& polling_;
};

}  // namespace mk::transport
