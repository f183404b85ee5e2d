// The urpc fast path. The sender writes a slot's payload, then its header with a release
// store; the receiver polls only the header of its next slot. A small message goes into the
// slot the sender wrote last when it still has room and is open (the receiver stays on an open
// slot), so small messages share lines; a run of messages alike in type and length shares them
// without sub-headers. Flow control goes the other way through one line the receiver writes
// every quarter ring. docs/transport.md has the layout.
#include "transport/urpc_channel.h"

#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "transport/ring_memory.h"

namespace mk::transport {
namespace {

/// Where the control words start: after the layer above's lines, rounded up to the separation.
std::size_t control_offset(const SlotGeometry& geometry, std::size_t aux_lines) {
  const std::size_t aux = aux_lines * geometry.line_size;
  return (aux + geometry.separation - 1) / geometry.separation * geometry.separation;
}

/// The memory both ends share: lines of the layer above (shared rings only), control lines,
/// then the slots. One per process: in a thread it lives until both ends are gone; across
/// processes each end has its own mapping of the same memfd.
struct UrpcRing {
  UrpcRing(RingMemory memory_in, const SlotGeometry& geometry_in, std::size_t aux_lines)
      : memory(std::move(memory_in)), geometry(geometry_in) {
    aux = memory.data();
    std::byte* base = aux + control_offset(geometry, aux_lines);
    // The receiver's position, the words each end writes once, and the slots the sender writes
    // are `separation` apart: no two of them travel in one prefetch pair.
    published_read = new (base) std::atomic<std::uint64_t>(0);
    sender_closed_at = new (base + geometry.separation) std::atomic<std::uint64_t>(0);
    receiver_gone =
        new (base + geometry.separation + sizeof(std::uint64_t)) std::atomic<std::uint64_t>(0);
    slots = base + 2 * geometry.separation;
  }

  RingMemory memory;
  SlotGeometry geometry;
  std::byte* aux;                                ///< The layer above's lines, if any.
  std::atomic<std::uint64_t>* published_read;    ///< Receiver's read position, every quarter.
  std::atomic<std::uint64_t>* sender_closed_at;  ///< 0, or 1 + the write position at close.
  std::atomic<std::uint64_t>* receiver_gone;     ///< 1 once the receiver is destroyed.
  std::byte* slots;
};

inline std::atomic_ref<std::uint64_t> header_of(std::byte* slot, const SlotGeometry& geometry) {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(slot + geometry.payload));
}

// alignas keeps each end's mutable state (positions, cached limit) apart on any machine: a
// class is laid out at compile time, so it takes the largest separation a channel accepts.
class alignas(kMaxSeparation) UrpcSender final : public ChannelSender {
 public:
  explicit UrpcSender(std::shared_ptr<UrpcRing> ring)
      : ring_(std::move(ring)),
        geometry_(ring_->geometry),
        slots_(ring_->slots),
        published_read_(ring_->published_read),
        receiver_gone_(ring_->receiver_gone),
        write_limit_(geometry_.slots) {}

  ~UrpcSender() override { close(); }
  UrpcSender(const UrpcSender&) = delete;
  UrpcSender& operator=(const UrpcSender&) = delete;

  SendStatus try_send(MessageType type, std::span<const std::byte> payload) override {
    return send(type, payload, {});
  }

  SendStatus try_send_parts(MessageType type, std::span<const std::byte> head,
                            std::span<const std::byte> body) override {
    return send(type, head, body);
  }

  std::size_t try_send_batch(std::span<const OutgoingMessage> messages) override {
    std::size_t sent = 0;
    for (const auto& message : messages) {
      if (send(message.type, message.payload, {}) != SendStatus::ok) break;
      ++sent;
    }
    return sent;
  }

  void close() override {
    if (closed_) return;
    close_open_slot();
    closed_ = true;
    // Release: a receiver that sees the close also sees every header written before it, so
    // its drain loop finds them all before closed() turns true.
    ring_->sender_closed_at->store(write_pos_ + 1, std::memory_order_release);
  }

  bool peer_closed() const override {
    // Relaxed: the flag carries no data; the ring stays allocated until this end is gone too.
    return receiver_gone_->load(std::memory_order_relaxed) != 0;
  }

 private:
  /// Sends the message whose payload is `head` followed by `body`.
  SendStatus send(MessageType type, std::span<const std::byte> head,
                  std::span<const std::byte> body) {
    if (closed_ || peer_closed()) [[unlikely]] {
      return SendStatus::closed;
    }
    const std::size_t length = head.size() + body.size();
    if (open_ && append(type, head, body)) return SendStatus::ok;
    if (length > geometry_.payload) [[unlikely]] {
      return send_multi(type, head, body);
    }
    if (write_pos_ == write_limit_ && !refresh_limit(1)) return status_when_refused();
    close_open_slot();
    std::byte* slot = slots_ + geometry_.offset_of(write_pos_);
    copy_parts(slot, head, body);
    std::uint64_t header = encode_header(type, length, 1, geometry_.epoch_bits(write_pos_));
    if (fits_after(length, 0) || fits_in_run(length, 1)) {
      header |= kOpenBit;
      open_ = true;
      open_slot_ = slot;
      open_end_ = length;
      open_header_ = header;
    }
    // Release: the payload stores above become visible no later than the header that
    // announces them; the receiver's acquire load of this header pairs with it.
    header_of(slot, geometry_).store(header, std::memory_order_release);
    ++write_pos_;
    return SendStatus::ok;
  }

  /// True when a slot whose messages end at `end` has room for one more of at least `length`
  /// bytes, and `packed` of them already follow its first.
  bool fits_after(std::size_t end, std::size_t length, std::size_t packed = 0) const noexcept {
    return packed < kMaxPacked &&
           packed_offset(end) + kPackedHeaderSize + length <= geometry_.payload;
  }

  /// True when a slot whose first message is `length` bytes long has room for the `index`-th
  /// message after it in a run of such messages.
  bool fits_in_run(std::size_t length, std::size_t index) const noexcept {
    return index <= kMaxPacked && (index + 1) * length <= geometry_.payload;
  }

  /// Adds a message to the open slot, after its last one; false (nothing written) when it does
  /// not fit there. The slot's second message decides its form: one of the first's type and
  /// length starts a run, which takes only more of the same; any other starts sub-headers.
  bool append(MessageType type, std::span<const std::byte> head, std::span<const std::byte> body) {
    const std::size_t length = head.size() + body.size();
    const std::size_t packed = header_packed(open_header_);
    const bool like_first =
        type == header_type(open_header_) && length == header_length(open_header_);
    if (packed == 0 && like_first && fits_in_run(length, 1)) open_header_ |= kRunBit;
    bool room_left;
    if ((open_header_ & kRunBit) != 0) {
      if (!like_first || !fits_in_run(length, packed + 1)) return false;
      copy_parts(open_slot_ + (packed + 1) * length, head, body);
      room_left = fits_in_run(length, packed + 2);
    } else {
      if (!fits_after(open_end_, length, packed)) return false;
      std::byte* at = open_slot_ + packed_offset(open_end_);
      const std::uint16_t sub_header[2] = {type, static_cast<std::uint16_t>(length)};
      std::memcpy(at, sub_header, kPackedHeaderSize);
      copy_parts(at + kPackedHeaderSize, head, body);
      open_end_ = packed_offset(open_end_) + kPackedHeaderSize + length;
      room_left = fits_after(open_end_, 0, packed + 1);
    }
    open_header_ = with_packed(open_header_, packed + 1);
    // A slot that can take no more closes with this store: the receiver moves on at once.
    if (!room_left) {
      open_header_ &= ~kOpenBit;
      open_ = false;
    }
    // Release: as in send; the receiver reloads this header and takes the messages it adds.
    header_of(open_slot_, geometry_).store(open_header_, std::memory_order_release);
    return true;
  }

  /// Tells the receiver that the open slot takes no more messages, so it can move past it.
  void close_open_slot() noexcept {
    if (!open_) return;
    open_ = false;
    open_header_ &= ~kOpenBit;
    // Release: orders the close after the slot's messages (already published by their own
    // release stores) and before anything written to later slots.
    header_of(open_slot_, geometry_).store(open_header_, std::memory_order_release);
  }

  SendStatus send_multi(MessageType type, std::span<const std::byte> head,
                        std::span<const std::byte> body) {
    const std::size_t length = head.size() + body.size();
    if (length > kMaxPayload) return SendStatus::too_large;
    const std::size_t count = geometry_.slots_for(length);
    if (write_pos_ + count > write_limit_ && !refresh_limit(count)) return status_when_refused();
    close_open_slot();
    scatter_continuation(slots_, geometry_, write_pos_, head, body, count,
                         [this](std::byte* slot, std::uint64_t header) {
                           // Relaxed: nobody polls a continuation header; the first slot's
                           // release store below publishes these slots with it.
                           header_of(slot, geometry_).store(header, std::memory_order_relaxed);
                         });
    std::byte* first = slots_ + geometry_.offset_of(write_pos_);
    copy_part_range(first, head, body, 0, geometry_.payload);
    // Release, and last: the whole message (every continuation slot) is visible before its
    // first header, so the receiver takes it whole or not at all.
    header_of(first, geometry_)
        .store(encode_header(type, length, count, geometry_.epoch_bits(write_pos_)),
               std::memory_order_release);
    write_pos_ += count;
    return SendStatus::ok;
  }

  // Rereads the receiver's published position, only when the cached one says the ring is full.
  bool refresh_limit(std::size_t count) {
    // Acquire: pairs with the receiver's release store, so its reads of the slots it has
    // passed are done before this end overwrites them.
    const std::uint64_t published = published_read_->load(std::memory_order_acquire);
    // The receiver may live in another process and write anything: a position behind the last
    // one or past what was written is a broken peer, and the channel closes rather than
    // overwrite slots it has not read.
    if (published + geometry_.slots < write_limit_ || published > write_pos_) [[unlikely]] {
      closed_ = true;
      return false;
    }
    write_limit_ = published + geometry_.slots;
    return write_pos_ + count <= write_limit_;
  }

  SendStatus status_when_refused() const noexcept {
    return closed_ ? SendStatus::closed : SendStatus::full;
  }

  std::shared_ptr<UrpcRing> ring_;
  const SlotGeometry geometry_;
  std::byte* const slots_;
  const std::atomic<std::uint64_t>* const published_read_;
  const std::atomic<std::uint64_t>* const receiver_gone_;
  std::uint64_t write_pos_ = 0;  ///< Position of the next slot to write.
  std::uint64_t write_limit_;    ///< Published read position + slots, as last read.
  bool closed_ = false;
  bool open_ = false;               ///< The last slot written takes more messages.
  std::byte* open_slot_ = nullptr;  ///< That slot, while open_.
  std::size_t open_end_ = 0;        ///< Where its last message ends, in bytes from its start.
  std::uint64_t open_header_ = 0;   ///< Its header word as last stored.
};

class alignas(kMaxSeparation) UrpcReceiver final : public ChannelReceiver {
 public:
  explicit UrpcReceiver(std::shared_ptr<UrpcRing> ring)
      : ring_(std::move(ring)),
        geometry_(ring_->geometry),
        slots_(ring_->slots),
        publish_interval_(std::max<std::uint64_t>(1, geometry_.slots / 4)),
        slot_(slots_),
        epoch_(geometry_.epoch_bits(0)),
        publish_at_(publish_interval_) {}

  ~UrpcReceiver() override {
    // Relaxed: the flag carries no data; a send racing with it lands in memory that the
    // sender keeps alive and that nobody reads.
    ring_->receiver_gone->store(1, std::memory_order_relaxed);
  }
  UrpcReceiver(const UrpcReceiver&) = delete;
  UrpcReceiver& operator=(const UrpcReceiver&) = delete;

  std::size_t poll(FunctionRef<void(const MessageView&)> on_message,
                   std::size_t max_messages) override {
    if (polling_) return 0;
    PollGuard guard(polling_);
    // Catches up after an on_message that threw, so a drained ring never looks full.
    if (read_pos_ >= publish_at_) publish();
    std::size_t delivered = 0;
    while (delivered < max_messages && !fault_) {
      std::byte* slot = slot_;
      // Acquire: pairs with the sender's release store of this header, so the payload (and
      // any continuation slots, or packed messages) written before it is visible now.
      const std::uint64_t header = header_of(slot, geometry_).load(std::memory_order_acquire);
      if ((header & kEpochField) != epoch_) break;
      const std::size_t packed = header_packed(header);
      const bool open = (header & kOpenBit) != 0;
      if (taken_ == 0) {
        if (!take_first(header, slot, on_message)) break;
      } else if (packed + 1 > taken_) {
        if (!take_packed(header, slot, on_message)) break;
      } else if (packed + 1 < taken_) [[unlikely]] {
        // The sender may be another process and write anything.
        corrupt_count(packed);
        break;
      } else if (open) {
        break;  // Everything so far is taken; the sender may still add to this slot.
      } else {
        next_slot(1);  // Closed after its last message was taken.
        if (read_pos_ >= publish_at_) publish();
        continue;
      }
      ++delivered;
      if (read_pos_ >= publish_at_) publish();
    }
    return delivered;
  }

  bool has_message() const override {
    if (fault_) return false;
    // Relaxed: only a peek; poll loads the header again with acquire before reading payload.
    const std::uint64_t header = header_of(slot_, geometry_).load(std::memory_order_relaxed);
    if ((header & kEpochField) != epoch_) return false;
    if (taken_ == 0 || header_packed(header) + 1 > taken_) return true;
    if ((header & kOpenBit) != 0) return false;
    // Taken and closed since: what counts is the next slot.
    std::byte* next = slots_ + geometry_.offset_of(read_pos_ + 1);
    // Relaxed: as above.
    const std::uint64_t following = header_of(next, geometry_).load(std::memory_order_relaxed);
    return (following & kEpochField) == geometry_.epoch_bits(read_pos_ + 1);
  }

  bool made_room() noexcept override { return std::exchange(room_made_, false); }

  bool closed() const override {
    // Acquire: pairs with the sender's release in close(); see there.
    const std::uint64_t closed_at = ring_->sender_closed_at->load(std::memory_order_acquire);
    return closed_at != 0 && read_pos_ + 1 == closed_at;
  }

 private:
  void publish() {
    // Release: every read of the slots before read_pos_ is done before the sender, which
    // loads this with acquire, may overwrite them.
    ring_->published_read->store(read_pos_, std::memory_order_release);
    publish_at_ = read_pos_ + publish_interval_;
    room_made_ = true;
  }

  // Delivers the first message of the slot at read_pos_ (and of the slots it spans); false,
  // with the fault set, when its header does not describe a message this ring can hold.
  bool take_first(std::uint64_t header, std::byte* slot,
                  FunctionRef<void(const MessageView&)> on_message) {
    const std::uint64_t position = read_pos_;
    const std::size_t count = header_slots(header);
    const std::size_t length = header_length(header);
    const std::size_t packed = header_packed(header);
    const bool open = (header & kOpenBit) != 0;
    // The sender may be another process and write anything: a length and slot count that do
    // not describe a message this ring can hold stop the channel before anything is copied.
    const bool run = (header & kRunBit) != 0;
    if (count == 1 ? length > geometry_.payload
                   : length > kMaxPayload || count != geometry_.slots_for(length) || packed != 0 ||
                         open || run) [[unlikely]] {
      corrupt_first(length, count);
      return false;
    }
    // Taken before the call, so a throwing on_message does not get the message again; the
    // sender learns of it only through publish(), after the call.
    if (count != 1) {
      next_slot(count);
      on_message(MessageView{header_type(header),
                             gather(slots_, geometry_, position, length, count, scratch_.data())});
      return true;
    }
    if (packed == 0 && !open) {
      next_slot(1);
    } else {
      taken_ = 1;
      taken_end_ = length;
    }
    on_message(MessageView{header_type(header), {slot, length}});
    return true;
  }

  // Delivers the next packed message of the slot at read_pos_; false, with the fault set, when
  // it does not fit the slot.
  bool take_packed(std::uint64_t header, std::byte* slot,
                   FunctionRef<void(const MessageView&)> on_message) {
    MessageType type;
    std::size_t at;
    std::size_t length;
    if ((header & kRunBit) != 0) {
      type = header_type(header);
      length = header_length(header);
      at = taken_ * length;
    } else {
      at = packed_offset(taken_end_);
      std::uint16_t sub_header[2] = {0, 0};
      if (at + kPackedHeaderSize <= geometry_.payload) {
        std::memcpy(sub_header, slot + at, kPackedHeaderSize);
      }
      type = sub_header[0];
      length = sub_header[1];
      at += kPackedHeaderSize;
    }
    if (at + length > geometry_.payload) [[unlikely]] {
      corrupt_packed(length, at);
      return false;
    }
    if (taken_ == header_packed(header) && (header & kOpenBit) == 0) {
      next_slot(1);  // The slot's last message: move on before the call, as in take_first.
    } else {
      ++taken_;
      taken_end_ = at + length;
    }
    on_message(MessageView{type, {slot + at, length}});
    return true;
  }

  void next_slot(std::size_t count) noexcept {
    read_pos_ += count;
    slot_ = slots_ + geometry_.offset_of(read_pos_);
    epoch_ = geometry_.epoch_bits(read_pos_);
    taken_ = 0;
    taken_end_ = 0;
  }

  // The reports of a corrupt header, out of the poll loop: their strings would otherwise
  // make its stack frame, set up on every poll, several times larger.
  [[gnu::cold, gnu::noinline]] void corrupt_count(std::size_t packed) {
    corrupt("the count of packed messages went back from " + std::to_string(taken_ - 1) + " to " +
            std::to_string(packed));
  }
  [[gnu::cold, gnu::noinline]] void corrupt_first(std::size_t length, std::size_t count) {
    corrupt(std::to_string(length) + " bytes in " + std::to_string(count) + " slots" +
            (count == 1 ? "" : " with packed messages, open or a run"));
  }
  [[gnu::cold, gnu::noinline]] void corrupt_packed(std::size_t length, std::size_t at) {
    corrupt("packed message " + std::to_string(taken_) + " of " + std::to_string(length) +
            " bytes at byte " + std::to_string(at) + " overruns the slot");
  }

  void corrupt(const std::string& what) {
    fault_ = error(Errc::parse_error, "urpc: corrupt header at ring position " +
                                          std::to_string(read_pos_) + ": " + what);
  }

  std::shared_ptr<UrpcRing> ring_;
  const SlotGeometry geometry_;
  std::byte* const slots_;
  const std::uint64_t publish_interval_;
  /// Messages taken from the slot at read_pos_, which stays there while its sender may add
  /// more (0: none yet; 1: the first; k: the first and k - 1 packed ones).
  std::size_t taken_ = 0;
  std::size_t taken_end_ = 0;   ///< Where the last message taken there ends, in bytes.
  std::uint64_t read_pos_ = 0;  ///< Position of the next message's first slot.
  // Derived from read_pos_ when it moves, so the poll loop only loads them.
  std::byte* slot_;           ///< The slot at read_pos_.
  std::uint64_t epoch_;       ///< The epoch field a header at read_pos_ carries.
  std::uint64_t publish_at_;  ///< Read position at which the sender is told next.
  bool room_made_ = false;    ///< A publish() since the last made_room().
  bool polling_ = false;
  std::array<std::byte, kMaxPayload> scratch_;  ///< A multi-slot message made contiguous.
};

}  // namespace

Result<ChannelEnds> make_urpc_channel(const SlotGeometry& geometry, int node) {
  auto memory = RingMemory::allocate(shared_urpc_bytes(geometry, 0), geometry.separation, node);
  if (!memory) return std::move(memory).error();
  auto ring = std::make_shared<UrpcRing>(std::move(memory).value(), geometry, 0);
  return ChannelEnds{std::make_unique<UrpcSender>(ring), std::make_unique<UrpcReceiver>(ring)};
}

std::size_t shared_urpc_bytes(const SlotGeometry& geometry, std::size_t aux_lines) {
  return shared_urpc_slots_offset(geometry, aux_lines) + geometry.slots * geometry.line_size;
}

std::size_t shared_urpc_slots_offset(const SlotGeometry& geometry, std::size_t aux_lines) {
  return control_offset(geometry, aux_lines) + 2 * geometry.separation;
}

Result<SharedUrpcReceiver> make_shared_urpc_receiver(const SlotGeometry& geometry, int node,
                                                     std::size_t aux_lines) {
  auto memory = RingMemory::allocate_shared(shared_urpc_bytes(geometry, aux_lines), node);
  if (!memory) return std::move(memory).error();
  const int fd = memory->fd();
  auto ring = std::make_shared<UrpcRing>(std::move(memory).value(), geometry, aux_lines);
  std::shared_ptr<std::byte> aux(ring, ring->aux);
  return SharedUrpcReceiver{std::make_unique<UrpcReceiver>(std::move(ring)), fd, std::move(aux)};
}

Result<SharedUrpcSender> attach_urpc_sender(const SlotGeometry& geometry, int fd,
                                            std::size_t aux_lines) {
  auto memory = RingMemory::map_shared(fd, shared_urpc_bytes(geometry, aux_lines));
  if (!memory) return std::move(memory).error();
  auto ring = std::make_shared<UrpcRing>(std::move(memory).value(), geometry, aux_lines);
  std::shared_ptr<std::byte> aux(ring, ring->aux);
  return SharedUrpcSender{std::make_unique<UrpcSender>(std::move(ring)), std::move(aux)};
}

}  // namespace mk::transport
