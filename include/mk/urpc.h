// urpc's two ends as their own types, from make_urpc_channel. Their send and poll paths are
// inline: code that holds the concrete type calls them directly (the classes are final, so
// even try_send and poll are direct calls), and poll_each compiles the per-message callback
// into the poll loop: no virtual call and no FunctionRef per message. The runtime keeps every
// urpc channel it binds so. docs/transport.md has the ring's layout.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "mk/channel.h"
#include "mk/result.h"
#include "mk/slot_format.h"

namespace mk::transport {

struct UrpcRing;

/// The header word of `slot`, for atomic access.
inline std::atomic_ref<std::uint64_t> header_of(std::byte* slot,
                                                const SlotGeometry& geometry) noexcept {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(slot + geometry.payload));
}

/// urpc's sending end (mk::UrpcSender): writes a slot's payload, then its header with a release
/// store. A small message goes into the slot it wrote last while that slot is open and has room, so
/// small messages share lines.
// alignas keeps each end's mutable state (positions, cached limit) apart on any machine: a
// class is laid out at compile time, so it takes the largest separation a channel accepts.
class alignas(kMaxSeparation) UrpcSender final : public ChannelSender {
 public:
  /// The sending end of `ring` (make_urpc_channel makes both ends).
  explicit UrpcSender(std::shared_ptr<UrpcRing> ring);
  ~UrpcSender() override;
  UrpcSender(const UrpcSender&) = delete;
  UrpcSender& operator=(const UrpcSender&) = delete;

  SendStatus try_send(MessageType type, std::span<const std::byte> payload) override {
    return send(type, payload, {});
  }
  SendStatus try_send_parts(MessageType type, std::span<const std::byte> head,
                            std::span<const std::byte> body) override {
    return send(type, head, body);
  }
  std::size_t try_send_batch(std::span<const OutgoingMessage> messages) override;
  void close() override;
  bool peer_closed() const override {
    // Relaxed: the flag carries no data; the ring stays allocated until this end is gone too.
    return receiver_gone_->load(std::memory_order_relaxed) != 0;
  }

  /// What became of the message sent with send_for_answer.
  enum class AnswerState : std::uint8_t {
    pending,   ///< Not yet taken, or its receiver is still handling it.
    answered,  ///< Answered in its slot: poll_answer gives the answer, read in place.
    declined,  ///< Its receiver answered elsewhere, or not at all.
    broken,    ///< The slot holds neither: the receiver broke the format (another process).
  };

  /// Payload bytes one slot carries: the largest message send_for_answer takes, and the
  /// largest answer.
  std::size_t slot_payload() const noexcept { return geometry_.payload; }

  /// Sends a message, alone in its slot, whose receiver may answer it in that slot
  /// (UrpcReceiver::answer): the answer then travels in the line the request came in, with no
  /// slot of a ring the other way. One such message at a time: full while an earlier one's
  /// answer is awaited (awaiting_answer), and too_large when head and body do not fit one slot.
  /// The slot is not reused until poll_answer has seen what became of it.
  SendStatus send_for_answer(MessageType type, std::span<const std::byte> head,
                             std::span<const std::byte> body) {
    if (closed_ || peer_closed()) [[unlikely]] {
      return SendStatus::closed;
    }
    const std::size_t length = head.size() + body.size();
    if (length > geometry_.payload) return SendStatus::too_large;
    if (answer_slot_ != nullptr) return SendStatus::full;
    if (write_pos_ == write_limit_ && !refresh_limit(1)) return status_when_refused();
    close_open_slot();
    std::byte* slot = slots_ + geometry_.offset_of(write_pos_);
    copy_parts(slot, head, body);
    const std::uint64_t header =
        encode_header(type, length, 1, geometry_.epoch_bits(write_pos_)) | kAnswerBit;
    answer_slot_ = slot;
    answer_header_ = header;
    answer_pos_ = write_pos_;
    publish_slot(slot, header);
    return SendStatus::ok;
  }

  /// True while the message sent with send_for_answer has not been seen answered or declined.
  bool awaiting_answer() const noexcept { return answer_slot_ != nullptr; }

  /// True when poll_answer would not say pending: a cheap look, for idle checks.
  bool answer_changed() const noexcept {
    // Relaxed: only a peek; poll_answer loads it again with acquire before reading the answer.
    return answer_slot_ != nullptr &&
           header_of(answer_slot_, geometry_).load(std::memory_order_relaxed) != answer_header_;
  }

  /// Looks at the slot of the message sent with send_for_answer. Answered: `answer` is the
  /// answer, read in place, valid until this end sends again. Anything but pending ends the
  /// wait: the slot is this end's again.
  AnswerState poll_answer(MessageView& answer) {
    if (answer_slot_ == nullptr) return AnswerState::declined;
    // Acquire: pairs with the receiver's release store of the answer (or of the refusal), so
    // the answer's bytes, and whatever the receiver sent before it, are visible now.
    const std::uint64_t header = header_of(answer_slot_, geometry_).load(std::memory_order_acquire);
    if (header == answer_header_) return AnswerState::pending;
    std::byte* slot = std::exchange(answer_slot_, nullptr);
    const std::uint64_t kept = kAnswerBit | kEpochField;
    const std::size_t length = header_length(header);
    if ((header & kept) != (answer_header_ & kept) || header_packed(header) != 0 ||
        (header & (kOpenBit | kRunBit)) != 0) {
      return AnswerState::broken;
    }
    if (header_slots(header) == kDeclinedSlots && length == 0 && header_type(header) == 0) {
      return AnswerState::declined;
    }
    if (header_slots(header) != kAnsweredSlots || length > geometry_.payload) {
      return AnswerState::broken;
    }
    answer = MessageView{header_type(header), {slot, length}};
    return AnswerState::answered;
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
    publish_slot(slot, header);
    return SendStatus::ok;
  }

  /// Hands the slot at write_pos_ (`slot`, its message written) to the receiver with `header`,
  /// and moves past it.
  void publish_slot(std::byte* slot, std::uint64_t header) noexcept {
    // Release: the payload stores become visible no later than the header that announces
    // them; the receiver's acquire load of this header pairs with it.
    header_of(slot, geometry_).store(header, std::memory_order_release);
    ++write_pos_;
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
                        std::span<const std::byte> body);
  /// Rereads the receiver's published position, only when the cached one says the ring is full.
  bool refresh_limit(std::size_t count);

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
  /// The slot of the message sent with send_for_answer while its answer is awaited, or null.
  std::byte* answer_slot_ = nullptr;
  std::uint64_t answer_header_ = 0;  ///< That message's header, as stored.
  std::uint64_t answer_pos_ = 0;     ///< That message's position.
  bool open_ = false;                ///< The last slot written takes more messages.
  std::byte* open_slot_ = nullptr;   ///< That slot, while open_.
  std::size_t open_end_ = 0;         ///< Where its last message ends, in bytes from its start.
  std::uint64_t open_header_ = 0;    ///< Its header word as last stored.
};

/// urpc's receiving end (mk::UrpcReceiver): polls only the header of its next slot, and tells the
/// sender how far it has read every quarter ring.
class alignas(kMaxSeparation) UrpcReceiver final : public ChannelReceiver {
 public:
  /// The receiving end of `ring` (make_urpc_channel makes both ends).
  explicit UrpcReceiver(std::shared_ptr<UrpcRing> ring);
  ~UrpcReceiver() override;
  UrpcReceiver(const UrpcReceiver&) = delete;
  UrpcReceiver& operator=(const UrpcReceiver&) = delete;

  std::size_t poll(FunctionRef<void(const MessageView&)> on_message,
                   std::size_t max_messages) override {
    return poll_each(on_message, max_messages);
  }
  bool has_message() const override;
  bool made_room() noexcept override { return std::exchange(room_made_, false); }
  bool closed() const override;

  /// poll without the virtual call: `on_message(const MessageView&)` is called directly, so
  /// it can be inlined into the loop. The same contract as ChannelReceiver::poll.
  template <class F>
  std::size_t poll_each(F&& on_message, std::size_t max_messages) {
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
      if (taken_ == 0) {
        if (!take_first(header, slot, on_message)) break;
      } else if (packed + 1 > taken_) {
        if (!take_packed(header, slot, on_message)) break;
      } else if (packed + 1 < taken_) [[unlikely]] {
        // The sender may be another process and write anything.
        corrupt_count(packed);
        break;
      } else if ((header & kOpenBit) != 0) {
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

 private:
  void publish() noexcept {
    // Release: every read of the slots before read_pos_ is done before the sender, which
    // loads this with acquire, may overwrite them.
    published_read_->store(read_pos_, std::memory_order_release);
    publish_at_ = read_pos_ + publish_interval_;
    room_made_ = true;
  }

  // Delivers the first message of the slot at read_pos_ (and of the slots it spans); false,
  // with the fault set, when its header does not describe a message this ring can hold.
  template <class F>
  bool take_first(std::uint64_t header, std::byte* slot, F& on_message) {
    const std::size_t count = header_slots(header);
    const std::size_t length = header_length(header);
    if (count != 1) [[unlikely]] {
      const std::span<const std::byte> whole = take_multi(header);
      if (whole.data() == nullptr) return false;
      on_message(MessageView{header_type(header), whole});
      return true;
    }
    // The sender may be another process and write anything: a length that does not fit the
    // slot stops the channel before anything is read.
    if (length > geometry_.payload) [[unlikely]] {
      corrupt_first(length, count);
      return false;
    }
    if ((header & kAnswerBit) != 0) [[unlikely]] {
      return take_asking(header, slot, on_message);
    }
    // Taken before the call, so a throwing on_message does not get the message again; the
    // sender learns of it only through publish(), after the call.
    if (header_packed(header) == 0 && (header & kOpenBit) == 0) {
      next_slot(1);
    } else {
      taken_ = 1;
      taken_end_ = length;
    }
    on_message(MessageView{header_type(header), {slot, length}});
    return true;
  }

  // Delivers a message that asks for an answer in its slot (UrpcSender::send_for_answer):
  // on_message may answer it there (answer); if it does not, the slot is marked declined when
  // on_message returns or throws, before publish() can hand the slot back to the sender.
  template <class F>
  bool take_asking(std::uint64_t header, std::byte* slot, F& on_message) {
    if (header_slots(header) != 1 || header_packed(header) != 0 ||
        (header & (kOpenBit | kRunBit)) != 0 || header_length(header) > geometry_.payload) {
      corrupt_asking();
      return false;
    }
    next_slot(1);
    asking_slot_ = slot;
    asking_epoch_ = header & kEpochField;
    struct Decline {
      UrpcReceiver& receiver;
      ~Decline() { receiver.decline(); }
    } decline{*this};
    on_message(MessageView{header_type(header), {slot, header_length(header)}});
    return true;
  }

 public:
  /// True while on_message handles a message that asks for an answer in its own slot
  /// (UrpcSender::send_for_answer).
  bool answer_asked() const noexcept { return asking_slot_ != nullptr; }

  /// From inside on_message: answers the message being handled in its own slot with a message
  /// whose payload is `head` followed by `body`. The answer overwrites the message's bytes (the
  /// view on_message was given), and the sender may overwrite the slot as soon as it has read
  /// the answer: read everything needed of the message first. False, having written nothing, when
  /// it did not ask for that (answer_asked) or the answer does not fit one slot; the message then
  /// counts as answered elsewhere. At most one answer per message.
  bool answer(MessageType type, std::span<const std::byte> head,
              std::span<const std::byte> body) noexcept {
    const std::size_t length = head.size() + body.size();
    if (asking_slot_ == nullptr || length > geometry_.payload) return false;
    std::byte* slot = std::exchange(asking_slot_, nullptr);
    copy_parts(slot, head, body);
    // Release: the answer's bytes become visible no later than the header that announces
    // them; the sender's acquire load in poll_answer pairs with it.
    header_of(slot, geometry_)
        .store(encode_header(type, length, kAnsweredSlots, asking_epoch_) | kAnswerBit,
               std::memory_order_release);
    return true;
  }

 private:
  /// Marks the slot of the message being handled as answered elsewhere, unless answer did.
  void decline() noexcept {
    if (asking_slot_ == nullptr) return;
    std::byte* slot = std::exchange(asking_slot_, nullptr);
    // Release: the sender learns no bytes from it, but the store must not move before the
    // receiver's reads of the request's payload, which the sender may overwrite once it sees it.
    header_of(slot, geometry_)
        .store(encode_header(0, 0, kDeclinedSlots, asking_epoch_) | kAnswerBit,
               std::memory_order_release);
  }

  // A message of several slots at read_pos_, made contiguous and taken; an empty span with a
  // null data pointer, and the fault set, when its header is not one this ring can hold.
  std::span<const std::byte> take_multi(std::uint64_t header);

  // Delivers the next packed message of the slot at read_pos_; false, with the fault set, when
  // it does not fit the slot.
  template <class F>
  bool take_packed(std::uint64_t header, std::byte* slot, F& on_message) {
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
  [[gnu::cold, gnu::noinline]] void corrupt_count(std::size_t packed);
  [[gnu::cold, gnu::noinline]] void corrupt_first(std::size_t length, std::size_t count);
  [[gnu::cold, gnu::noinline]] void corrupt_packed(std::size_t length, std::size_t at);
  [[gnu::cold, gnu::noinline]] void corrupt_asking();
  void corrupt(const std::string& what);

  std::shared_ptr<UrpcRing> ring_;
  const SlotGeometry geometry_;
  std::byte* const slots_;
  std::atomic<std::uint64_t>* const published_read_;
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
  /// While on_message handles a message that asks for an answer in its slot: that slot.
  std::byte* asking_slot_ = nullptr;
  std::uint64_t asking_epoch_ = 0;              ///< Its header's epoch field, kept by the answer.
  std::array<std::byte, kMaxPayload> scratch_;  ///< A multi-slot message made contiguous.
};

}  // namespace mk::transport

namespace mk {

/// urpc's sending end as its own type.
using UrpcSender = transport::UrpcSender;
/// urpc's receiving end as its own type.
using UrpcReceiver = transport::UrpcReceiver;

/// Both ends of one urpc channel. They share the ring, which lives until both are destroyed.
struct UrpcChannel {
  std::unique_ptr<UrpcSender> sender;      ///< Give to the producing thread.
  std::unique_ptr<UrpcReceiver> receiver;  ///< Give to the consuming thread.
};

/// make_channel(ChannelKind::urpc, options), with each end as its own type; the same errors.
Result<UrpcChannel> make_urpc_channel(const ChannelOptions& options = {});

}  // namespace mk
