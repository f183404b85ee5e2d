// Channels: one-way single-producer single-consumer message rings between two kernels.
#pragma once

// The SKB knows the machine and nothing of the transport: the transport derives a channel's
// shape from the SKB's facts, never the other way round. src/skb is compiled with MK_SKB_LAYER,
// so that including this header there, directly or through another header, fails the build.
#ifdef MK_SKB_LAYER
#error "the SKB must not include mk/channel.h: it names channel kinds through mk/channel_kind.h"
#endif

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "mk/channel_kind.h"
#include "mk/function_ref.h"
#include "mk/result.h"

namespace mk {

/// Tag carried in every message header: chosen by the application, below
/// kFirstReservedMessageType.
using MessageType = std::uint16_t;

/// The first of the message types mk's own layers use (replication, and the services built on
/// it). Kernel::handle, send and call refuse types from here to kLastReservedMessageType with
/// invalid_argument, so that a user's handler cannot take over a layer's messages.
inline constexpr MessageType kFirstReservedMessageType = 0xF000;
/// The last reserved message type.
inline constexpr MessageType kLastReservedMessageType = 0xFFFF;

/// True for a type in mk's reserved range.
constexpr bool is_reserved_message_type(MessageType type) noexcept {
  return type >= kFirstReservedMessageType;
}

/// The largest payload one message carries, in bytes. Larger payloads are refused with
/// SendStatus::too_large, never truncated.
inline constexpr std::size_t kMaxPayload = 2048;

/// What ChannelSender::try_send reports. It never blocks and never overwrites.
enum class SendStatus : std::uint8_t {
  ok,         ///< The message is in the ring and will be received whole, in order.
  full,       ///< No room now; nothing was written. Retry later or suspend.
  too_large,  ///< The payload is over kMaxPayload (or the ring's capacity); nothing was written.
  closed,     ///< The receiver is gone or the sender was closed; nothing was written.
};

/// Short stable name of a send status.
std::string_view to_string(SendStatus status) noexcept;

/// Slots a ring has when nothing asks for another count: the ChannelOptions default, and what
/// the transport derives from the SKB's facts when neither Config::ring_slots nor the SKB's
/// asserted ring_slots says otherwise (mk/channel_geometry.h).
inline constexpr std::size_t kDefaultRingSlots = 256;

/// The largest separation (ChannelOptions::separation) a channel accepts, and so the largest
/// prefetch pair distance of the SKB that mk can honour: structures laid out at compile time
/// (alignas) are aligned to it, so that they are apart on any machine mk runs on.
inline constexpr std::size_t kMaxSeparation = 256;

/// How to build a channel. The runtime derives them from the SKB's facts
/// (channel_options_for, mk/channel_geometry.h); make_channel checks them by the same rule.
struct ChannelOptions {
  /// Ring capacity in slots (one slot per cache line): a power of two, at least enough that a
  /// kMaxPayload message fits in three quarters of the ring (64 on 64-byte lines), at most 2^20.
  std::size_t slots = kDefaultRingSlots;
  /// NUMA node for the urpc ring's memory; -1: the calling thread's node. Ignored when the
  /// machine has no NUMA support; the lockfree and local kinds check it, then use the heap.
  int receiver_numa_node = -1;
  /// Cache-line size in bytes, a power of two from 32 to 256; 0: this machine's, as the SKB
  /// detects it without hwloc (sysconf, then /sys, then 64).
  std::size_t line_size = 0;
  /// Bytes that keep the ring's words written by different ends apart: the SKB's prefetch pair
  /// distance, a power of two from the line size to kMaxSeparation; 0: the line size.
  std::size_t separation = 0;
};

/// Payload bytes one slot carries for a channel made with `options`: the line size less the
/// 8-byte header (56 on 64-byte lines). Larger payloads take several slots. Fails like
/// make_channel for options it would refuse.
Result<std::size_t> single_slot_payload(const ChannelOptions& options = {});

/// One message as the receiver sees it; the payload is valid only during the callback.
struct MessageView {
  MessageType type;                    ///< The sender's tag.
  std::span<const std::byte> payload;  ///< 0 to kMaxPayload bytes.
};

/// One message to send in a batch.
struct OutgoingMessage {
  MessageType type;                    ///< Tag for the receiver.
  std::span<const std::byte> payload;  ///< 0 to kMaxPayload bytes.
};

/// The sending end. Used by exactly one thread at a time.
class ChannelSender {
 public:
  virtual ~ChannelSender() = default;

  /// Puts one message into the ring, or reports why not at once.
  virtual SendStatus try_send(MessageType type, std::span<const std::byte> payload) = 0;

  /// Puts one message whose payload is `head` followed by `body` into the ring, as try_send of
  /// the two joined would, without the caller joining them first (the runtime's envelope and
  /// a user's payload); too_large when they add up to more than kMaxPayload. The default
  /// joins them in a buffer and calls try_send; urpc and local write the parts straight into
  /// the message's slots.
  virtual SendStatus try_send_parts(MessageType type, std::span<const std::byte> head,
                                    std::span<const std::byte> body);

  /// Sends messages in order until one does not fit; returns how many were sent. A message
  /// that is too large stops the batch like a full ring does; the caller checks it with
  /// try_send to learn why. The default calls try_send per message; the cross-core rings
  /// override it to publish a batch with one flow-control check.
  virtual std::size_t try_send_batch(std::span<const OutgoingMessage> messages);

  /// Tells the receiver no more messages follow. Messages already sent are still delivered.
  virtual void close() = 0;

  /// True when the receiver has gone away; every later send reports SendStatus::closed.
  virtual bool peer_closed() const = 0;
};

/// The receiving end. Used by exactly one thread at a time.
class ChannelReceiver {
 public:
  virtual ~ChannelReceiver() = default;

  /// Delivers up to `max_messages` waiting messages, in send order, to `on_message`; returns
  /// how many it delivered. Never waits. A message whose on_message throws counts as delivered
  /// and the exception propagates. Called from inside on_message, it delivers nothing.
  virtual std::size_t poll(FunctionRef<void(const MessageView&)> on_message,
                           std::size_t max_messages) = 0;

  /// True when a message is waiting. A cheap look at the next slot, for idle checks.
  virtual bool has_message() const = 0;

  /// True when the sender closed the channel and every message before the close was delivered.
  virtual bool closed() const = 0;

  /// True when the polls since the last call freed room that the sender can now see; a
  /// receiver that tells the sender of its progress only now and then (urpc: every quarter of
  /// the ring) says false after polls that told it nothing, so that a sender waiting for room
  /// is not woken to find none. The default, for kinds whose sender sees every poll's room at
  /// once: true.
  virtual bool made_room() noexcept { return true; }

  /// Why the channel stopped delivering, or null while it delivers: the sender broke the
  /// ring's format (a corrupt header: with kernels in separate processes a faulty peer can
  /// write anything into the ring). From then on poll delivers nothing and has_message is
  /// false; what came before was delivered. Cheap enough to ask after every poll.
  const Error* fault() const noexcept { return fault_ ? &*fault_ : nullptr; }

 protected:
  /// Set by an implementation once its sender broke the format; never cleared.
  std::optional<Error> fault_;
};

/// The two ends of one channel. They share the ring, which lives until both are destroyed.
struct ChannelEnds {
  std::unique_ptr<ChannelSender> sender;      ///< Give to the producing kernel.
  std::unique_ptr<ChannelReceiver> receiver;  ///< Give to the consuming kernel.
};

/// Makes a channel of `kind`. Fails with invalid_argument, naming the field, for a slot count
/// that is not a power of two, too small to hold a kMaxPayload message or absurdly large, a
/// line size out of range or a NUMA node this machine lacks; with io_error if memory cannot be
/// had.
Result<ChannelEnds> make_channel(ChannelKind kind, const ChannelOptions& options = {});

}  // namespace mk
