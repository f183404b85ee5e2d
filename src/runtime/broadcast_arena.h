// A kernel's broadcast buffers: a message written once and read in place by several kernels.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "mk/channel.h"
#include "mk/fan_out.h"
#include "mk/function_ref.h"
#include "mk/kernel_id.h"
#include "mk/message_codec.h"
#include "mk/result.h"
#include "transport/ring_memory.h"

namespace mk::runtime {

/// Names one published slot of a sender's arena. A message of WireKind::shared_ref carries
/// one after its envelope, through the pair channel, so it keeps its place among that pair's
/// other messages.
struct SharedRef {
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;  ///< Which publication of the slot.
};

/// The encoded size of a SharedRef: two 32-bit words in this machine's byte order (its
/// readers run in the writer's process).
inline constexpr std::size_t kSharedRefSize = 8;

/// The bytes a shared_ref message carries after its envelope.
std::array<std::byte, kSharedRefSize> encode_shared_ref(SharedRef ref) noexcept;
/// Reads a SharedRef from a message body; nullopt unless the body is exactly one.
std::optional<SharedRef> decode_shared_ref(std::span<const std::byte> body) noexcept;

/// Slots in which one kernel (the only writer) publishes a payload for a set of readers, each
/// of which reads it in place and then releases it; a slot is reused once every reader has.
/// Readers are kernels of one process (Isolation::threads): the slots are ordinary memory.
///
/// Who may read is kept per slot as one bit per reader. A descriptor is trusted for nothing:
/// read() hands out a slot's bytes only while the asking reader's bit is set for the
/// generation named, and the writer changes a slot only after every bit is clear.
class BroadcastArena {
 public:
  /// Slots per arena: payloads in flight from one kernel's broadcasts at once.
  static constexpr std::size_t kSlots = 16;
  /// The largest payload a slot holds: any message body.
  static constexpr std::size_t kSlotBytes = kMaxMessageBody;

  /// An arena whose readers are kernels below `max_readers`, its memory on the calling
  /// thread's NUMA node; io_error when the memory cannot be had.
  static Result<std::unique_ptr<BroadcastArena>> make(std::size_t max_readers);

  BroadcastArena(const BroadcastArena&) = delete;
  BroadcastArena& operator=(const BroadcastArena&) = delete;
  ~BroadcastArena();

  /// Writer only. Copies `payload` into a free slot readable by each of `readers`; nullopt
  /// when no slot is free, the payload does not fit, or a reader is out of range or listed
  /// twice (the caller then sends copies). `gone(kernel)` is true for a kernel that will never
  /// read again: a full arena drops such readers' holds before giving up.
  std::optional<SharedRef> publish(std::span<const std::byte> payload,
                                   std::span<const FanOutSend> readers,
                                   FunctionRef<bool(KernelId)> gone);
  /// The payload `ref` names for `reader`, valid until `reader` releases it; parse_error
  /// when `ref` names no slot published for `reader` and not yet released by it.
  Result<std::span<const std::byte>> read(SharedRef ref, KernelId reader) const;
  /// `reader` is done with `ref`: it has read it, or the message carrying it was lost. Only
  /// for a ref that read() accepted, or that publish() returned and whose message to
  /// `reader` was never delivered.
  void release(SharedRef ref, KernelId reader) noexcept;
  /// Slots held by at least one reader now. Writer only.
  std::size_t slots_in_use() const noexcept;

 private:
  // Laid out at compile time, so kept kMaxSeparation apart (as runtime/doorbell.h's
  // kSeparation): more than a cache line and its prefetch pair on any machine mk runs on.

  /// A slot's header, apart from the others': the writer rewrites it while readers read others.
  struct alignas(kMaxSeparation) Slot {
    std::atomic<std::uint32_t> generation{0};
    std::uint32_t length = 0;
  };
  /// Reader bits. A slot's bits start a block of their own, so readers releasing one slot do
  /// not contend with readers of another.
  struct alignas(kMaxSeparation) BitBlock {
    std::atomic<std::uint64_t> words[kMaxSeparation / sizeof(std::uint64_t)];
  };

  BroadcastArena(std::size_t max_readers, transport::RingMemory payloads);
  std::atomic<std::uint64_t>* readers_of(std::size_t slot) const noexcept;
  bool in_use(std::size_t slot) const noexcept;
  /// Clears the bits of readers `gone` says will never read; true when the slot is then free.
  bool drop_gone(std::size_t slot, FunctionRef<bool(KernelId)> gone);

  std::size_t max_readers_;
  std::size_t words_;   ///< 64-bit words of reader bits per slot.
  std::size_t blocks_;  ///< BitBlocks per slot.
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<BitBlock[]> bits_;
  transport::RingMemory payloads_;
  std::size_t next_ = 0;  ///< Where the writer looks for a free slot first.
};

}  // namespace mk::runtime
