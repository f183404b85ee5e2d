// The portable baseline: the slots of urpc carried by boost::lockfree::spsc_queue. A multi-slot
// message is pushed with one call after checking it fits, so the queue publishes it whole.
#include "transport/lockfree_channel.h"

#include <array>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mk::transport {
namespace {

// The queue's element type is fixed at compile time, so each supported line size gets its own.
template <std::size_t LineSize>
struct alignas(LineSize) Slot {
  std::array<std::byte, LineSize - kHeaderSize> payload;
  std::uint64_t header;
};

template <std::size_t LineSize>
struct LockfreeShared {
  explicit LockfreeShared(std::size_t slots) : queue(slots) {}

  boost::lockfree::spsc_queue<Slot<LineSize>> queue;
  // Away from the queue's indices: written once each, read on every send and closed().
  alignas(kMaxSeparation) std::atomic<bool> sender_closed{false};
  std::atomic<bool> receiver_gone{false};
};

template <std::size_t LineSize>
class alignas(kMaxSeparation) LockfreeSender final : public ChannelSender {
 public:
  LockfreeSender(std::shared_ptr<LockfreeShared<LineSize>> shared, const SlotGeometry& geometry)
      : shared_(std::move(shared)),
        geometry_(geometry),
        staging_(geometry.slots_for(kMaxPayload)) {}

  ~LockfreeSender() override { close(); }
  LockfreeSender(const LockfreeSender&) = delete;
  LockfreeSender& operator=(const LockfreeSender&) = delete;

  SendStatus try_send(MessageType type, std::span<const std::byte> payload) override {
    return send(type, payload);
  }

  std::size_t try_send_batch(std::span<const OutgoingMessage> messages) override {
    std::size_t sent = 0;
    for (const auto& message : messages) {
      if (send(message.type, message.payload) != SendStatus::ok) break;
      ++sent;
    }
    return sent;
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    // Release: a receiver that sees the flag also sees every push before it, so "flag set and
    // queue empty" means everything sent was delivered.
    shared_->sender_closed.store(true, std::memory_order_release);
  }

  bool peer_closed() const override {
    // Relaxed: the flag carries no data; the queue stays allocated until this end is gone too.
    return shared_->receiver_gone.load(std::memory_order_relaxed);
  }

 private:
  SendStatus send(MessageType type, std::span<const std::byte> payload) {
    if (closed_ || peer_closed()) [[unlikely]] {
      return SendStatus::closed;
    }
    const std::size_t length = payload.size();
    if (length <= geometry_.payload) [[likely]] {
      Slot<LineSize> slot;
      if (length != 0) std::memcpy(slot.payload.data(), payload.data(), length);
      slot.header = encode_header(type, length, 1, 0);
      return shared_->queue.push(slot) ? SendStatus::ok : SendStatus::full;
    }
    if (length > kMaxPayload) return SendStatus::too_large;
    const std::size_t count = geometry_.slots_for(length);
    if (shared_->queue.write_available() < count) return SendStatus::full;
    std::size_t offset = 0;
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t chunk = std::min(geometry_.payload, length - offset);
      std::memcpy(staging_[k].payload.data(), payload.data() + offset, chunk);
      staging_[k].header = encode_header(type, k == 0 ? length : 0, k == 0 ? count : 0, 0);
      offset += chunk;
    }
    // One push stores the write index once, after every slot: the receiver sees all or none.
    shared_->queue.push(staging_.data(), count);
    return SendStatus::ok;
  }

  std::shared_ptr<LockfreeShared<LineSize>> shared_;
  const SlotGeometry geometry_;
  std::vector<Slot<LineSize>> staging_;  ///< A multi-slot message, built before its one push.
  bool closed_ = false;
};

template <std::size_t LineSize>
class alignas(kMaxSeparation) LockfreeReceiver final : public ChannelReceiver {
 public:
  LockfreeReceiver(std::shared_ptr<LockfreeShared<LineSize>> shared, const SlotGeometry& geometry)
      : shared_(std::move(shared)), geometry_(geometry) {}

  ~LockfreeReceiver() override {
    // Relaxed: the flag carries no data; see LockfreeSender::peer_closed.
    shared_->receiver_gone.store(true, std::memory_order_relaxed);
  }
  LockfreeReceiver(const LockfreeReceiver&) = delete;
  LockfreeReceiver& operator=(const LockfreeReceiver&) = delete;

  std::size_t poll(FunctionRef<void(const MessageView&)> on_message,
                   std::size_t max_messages) override {
    if (polling_) return 0;
    PollGuard guard(polling_);
    auto& queue = shared_->queue;
    std::size_t delivered = 0;
    std::exception_ptr failure;
    std::size_t count = 0;
    std::uint64_t header = 0;
    // consume_one (one load of the producer's index per slot) is how spsc_queue is meant to be
    // read. A one-slot message is handed over in place; an exception from on_message is held
    // until the slot is popped, so a message is delivered once, as with urpc.
    auto take_first = [&](Slot<LineSize>& slot) {
      header = slot.header;
      count = header_slots(header);
      const std::size_t length = header_length(header);
      if (count == 1) [[likely]] {
        try {
          on_message(MessageView{header_type(header), {slot.payload.data(), length}});
        } catch (...) {
          failure = std::current_exception();
        }
      } else {
        std::memcpy(scratch_.data(), slot.payload.data(), geometry_.payload);
      }
    };
    while (delivered < max_messages && queue.consume_one(take_first)) {
      ++delivered;
      if (failure) std::rethrow_exception(failure);
      if (count == 1) continue;
      // The sender pushed every slot of the message in one push, so they are all here.
      const std::size_t length = header_length(header);
      std::size_t offset = geometry_.payload;
      for (std::size_t k = 1; k < count; ++k) {
        const std::size_t chunk = std::min(geometry_.payload, length - offset);
        queue.consume_one([&](const Slot<LineSize>& slot) {
          std::memcpy(scratch_.data() + offset, slot.payload.data(), chunk);
        });
        offset += chunk;
      }
      on_message(MessageView{header_type(header), {scratch_.data(), length}});
    }
    return delivered;
  }

  bool has_message() const override { return shared_->queue.read_available() != 0; }

  bool closed() const override {
    // Acquire: pairs with the release in LockfreeSender::close.
    return shared_->sender_closed.load(std::memory_order_acquire) &&
           shared_->queue.read_available() == 0;
  }

 private:
  std::shared_ptr<LockfreeShared<LineSize>> shared_;
  const SlotGeometry geometry_;
  bool polling_ = false;
  std::array<std::byte, kMaxPayload> scratch_;  ///< A multi-slot message made contiguous.
};

template <std::size_t LineSize>
ChannelEnds make_ends(const SlotGeometry& geometry) {
  auto shared = std::make_shared<LockfreeShared<LineSize>>(geometry.slots);
  return ChannelEnds{std::make_unique<LockfreeSender<LineSize>>(shared, geometry),
                     std::make_unique<LockfreeReceiver<LineSize>>(shared, geometry)};
}

// Picks the instance for the geometry's line size: each power of two from kMinLineSize up.
template <std::size_t LineSize>
Result<ChannelEnds> make_for_line(const SlotGeometry& geometry) {
  if (geometry.line_size == LineSize) return make_ends<LineSize>(geometry);
  if constexpr (LineSize < kMaxLineSize) {
    return make_for_line<LineSize * 2>(geometry);
  } else {
    return error(Errc::invalid_argument,
                 "ChannelOptions::line_size is " + std::to_string(geometry.line_size) +
                     ": it must be a power of two from " + std::to_string(kMinLineSize) + " to " +
                     std::to_string(kMaxLineSize));
  }
}

}  // namespace

Result<ChannelEnds> make_lockfree_channel(const SlotGeometry& geometry) {
  return make_for_line<kMinLineSize>(geometry);
}

}  // namespace mk::transport
