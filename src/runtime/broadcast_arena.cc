#include "runtime/broadcast_arena.h"

#include <bit>
#include <cstring>
#include <new>
#include <string>
#include <utility>

namespace mk::runtime {
namespace {

/// Bytes from one slot's payload to the next: whole separations (see Slot), so a slot's writes
/// never share a line, or its prefetch pair, with another slot's readers.
constexpr std::size_t kPayloadStride =
    (BroadcastArena::kSlotBytes + kMaxSeparation - 1) / kMaxSeparation * kMaxSeparation;
constexpr std::size_t kWordsPerBlock = kMaxSeparation / sizeof(std::uint64_t);

constexpr std::uint64_t bit_of(KernelId reader) noexcept {
  return std::uint64_t{1} << (reader % 64);
}

}  // namespace

std::array<std::byte, kSharedRefSize> encode_shared_ref(SharedRef ref) noexcept {
  std::array<std::byte, kSharedRefSize> bytes{};
  std::memcpy(bytes.data(), &ref.slot, 4);
  std::memcpy(bytes.data() + 4, &ref.generation, 4);
  return bytes;
}

std::optional<SharedRef> decode_shared_ref(std::span<const std::byte> body) noexcept {
  if (body.size() != kSharedRefSize) return std::nullopt;
  SharedRef ref;
  std::memcpy(&ref.slot, body.data(), 4);
  std::memcpy(&ref.generation, body.data() + 4, 4);
  return ref;
}

Result<std::unique_ptr<BroadcastArena>> BroadcastArena::make(std::size_t max_readers) {
  auto payloads = transport::RingMemory::allocate(kSlots * kPayloadStride, kMaxSeparation, -1);
  if (!payloads) {
    return error(payloads.error().code,
                 "broadcast buffers: " + std::move(payloads).error().message);
  }
  try {
    return std::unique_ptr<BroadcastArena>(new BroadcastArena(max_readers, std::move(*payloads)));
  } catch (const std::bad_alloc&) {
    return error(Errc::io_error, "broadcast buffers: out of memory for the slots' headers");
  }
}

BroadcastArena::BroadcastArena(std::size_t max_readers, transport::RingMemory payloads)
    : max_readers_(max_readers),
      words_((max_readers + 63) / 64),
      blocks_((words_ + kWordsPerBlock - 1) / kWordsPerBlock),
      slots_(std::make_unique<Slot[]>(kSlots)),
      // Value-initialised: every bit clear, every slot free.
      bits_(std::make_unique<BitBlock[]>(kSlots * blocks_)),
      payloads_(std::move(payloads)) {}

BroadcastArena::~BroadcastArena() = default;

std::atomic<std::uint64_t>* BroadcastArena::readers_of(std::size_t slot) const noexcept {
  // A slot's BitBlocks are adjacent and unpadded, so its words run on from one to the next.
  return bits_[slot * blocks_].words;
}

bool BroadcastArena::in_use(std::size_t slot) const noexcept {
  const std::atomic<std::uint64_t>* words = readers_of(slot);
  for (std::size_t w = 0; w < words_; ++w) {
    // Acquire: pairs with release()'s release, so every read of the slot's last payload
    // happens before the writer overwrites it.
    if (words[w].load(std::memory_order_acquire) != 0) return true;
  }
  return false;
}

bool BroadcastArena::drop_gone(std::size_t slot, FunctionRef<bool(KernelId)> gone) {
  std::atomic<std::uint64_t>* words = readers_of(slot);
  for (std::size_t w = 0; w < words_; ++w) {
    // Relaxed: a reader `gone` calls gone has stopped for good (its thread was joined before it
    // was marked so), which orders its last read before this.
    for (std::uint64_t left = words[w].load(std::memory_order_relaxed); left != 0;
         left &= left - 1) {
      const auto reader = static_cast<KernelId>(w * 64 + std::countr_zero(left));
      if (gone(reader)) words[w].fetch_and(~bit_of(reader), std::memory_order_relaxed);
    }
  }
  return !in_use(slot);
}

std::optional<SharedRef> BroadcastArena::publish(std::span<const std::byte> payload,
                                                 std::span<const FanOutSend> readers,
                                                 FunctionRef<bool(KernelId)> gone) {
  if (payload.size() > kSlotBytes || readers.empty()) return std::nullopt;
  for (const FanOutSend& send : readers) {
    if (send.to >= max_readers_) return std::nullopt;
  }
  std::optional<std::size_t> free;
  for (std::size_t i = 0; i < kSlots && !free; ++i) {
    const std::size_t slot = (next_ + i) % kSlots;
    if (!in_use(slot)) free = slot;
  }
  for (std::size_t slot = 0; slot < kSlots && !free; ++slot) {
    if (drop_gone(slot, gone)) free = slot;
  }
  if (!free) return std::nullopt;
  const std::size_t slot = *free;
  next_ = (slot + 1) % kSlots;

  Slot& header = slots_[slot];
  if (!payload.empty()) {
    std::memcpy(payloads_.data() + slot * kPayloadStride, payload.data(), payload.size());
  }
  header.length = static_cast<std::uint32_t>(payload.size());
  // Relaxed: published by the release of the reader bits below.
  const std::uint32_t generation = header.generation.load(std::memory_order_relaxed) + 1;
  header.generation.store(generation, std::memory_order_relaxed);
  std::atomic<std::uint64_t>* words = readers_of(slot);
  for (const FanOutSend& send : readers) {
    // Release: a reader that sees its bit (read()'s acquire) sees the payload, length and
    // generation written above.
    const std::uint64_t before =
        words[send.to / 64].fetch_or(bit_of(send.to), std::memory_order_release);
    if ((before & bit_of(send.to)) != 0) {
      // A reader listed twice would be released by its first message and refuse its second.
      // Nothing was sent yet, so nobody reads the slot: relaxed.
      for (std::size_t w = 0; w < words_; ++w)
        words[w].store(0, std::memory_order_relaxed);
      return std::nullopt;
    }
  }
  return SharedRef{static_cast<std::uint32_t>(slot), generation};
}

Result<std::span<const std::byte>> BroadcastArena::read(SharedRef ref, KernelId reader) const {
  if (ref.slot >= kSlots || reader >= max_readers_) {
    return error(Errc::parse_error, "shared buffer " + std::to_string(ref.slot) +
                                        ": no such slot for kernel " + std::to_string(reader));
  }
  // Acquire: pairs with publish()'s release, so the payload written before the bit is visible.
  if ((readers_of(ref.slot)[reader / 64].load(std::memory_order_acquire) & bit_of(reader)) == 0) {
    return error(Errc::parse_error, "shared buffer " + std::to_string(ref.slot) +
                                        " holds nothing for kernel " + std::to_string(reader));
  }
  const Slot& header = slots_[ref.slot];
  // Relaxed: ordered by the acquire above; the writer changes the slot only once this
  // reader's bit is clear, and the bit is set.
  if (header.generation.load(std::memory_order_relaxed) != ref.generation) {
    return error(Errc::parse_error, "shared buffer " + std::to_string(ref.slot) + ": generation " +
                                        std::to_string(ref.generation) +
                                        " is not the one it holds");
  }
  return std::span<const std::byte>(payloads_.data() + ref.slot * kPayloadStride, header.length);
}

void BroadcastArena::release(SharedRef ref, KernelId reader) noexcept {
  if (ref.slot >= kSlots || reader >= max_readers_) return;
  // Release: pairs with in_use()'s acquire (see there).
  readers_of(ref.slot)[reader / 64].fetch_and(~bit_of(reader), std::memory_order_release);
}

std::size_t BroadcastArena::slots_in_use() const noexcept {
  std::size_t used = 0;
  for (std::size_t slot = 0; slot < kSlots; ++slot)
    used += in_use(slot) ? 1 : 0;
  return used;
}

}  // namespace mk::runtime
