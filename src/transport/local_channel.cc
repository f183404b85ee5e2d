// A kernel's channel to itself: the same slot ring with plain positions, since one thread
// runs both ends.
#include "transport/local_channel.h"

#include <array>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace mk::transport {
namespace {

struct LocalRing {
  explicit LocalRing(const SlotGeometry& geometry_in)
      : geometry(geometry_in), storage(geometry.slots * geometry.line_size / kHeaderSize) {}

  std::byte* slots() { return reinterpret_cast<std::byte*>(storage.data()); }

  SlotGeometry geometry;
  std::vector<std::uint64_t> storage;  ///< The slots; 8-byte words keep headers aligned.
  std::uint64_t write_pos = 0;         ///< Next slot the sender writes.
  std::uint64_t read_pos = 0;          ///< First slot of the next message to deliver.
  std::uint64_t free_pos = 0;          ///< Slots before this are free for the sender again.
  bool sender_closed = false;
  bool receiver_gone = false;
};

void write_header(std::byte* slot, const SlotGeometry& geometry, std::uint64_t header) {
  std::memcpy(slot + geometry.payload, &header, sizeof header);
}

std::uint64_t read_header(const std::byte* slot, const SlotGeometry& geometry) {
  std::uint64_t header = 0;
  std::memcpy(&header, slot + geometry.payload, sizeof header);
  return header;
}

class LocalSender final : public ChannelSender {
 public:
  explicit LocalSender(std::shared_ptr<LocalRing> ring) : ring_(std::move(ring)) {}
  ~LocalSender() override { close(); }
  LocalSender(const LocalSender&) = delete;
  LocalSender& operator=(const LocalSender&) = delete;

  SendStatus try_send(MessageType type, std::span<const std::byte> payload) override {
    return send(type, payload, {});
  }

  SendStatus try_send_parts(MessageType type, std::span<const std::byte> head,
                            std::span<const std::byte> body) override {
    return send(type, head, body);
  }

  void close() override { ring_->sender_closed = true; }

  bool peer_closed() const override { return ring_->receiver_gone; }

 private:
  /// Sends the message whose payload is `head` followed by `body`.
  SendStatus send(MessageType type, std::span<const std::byte> head,
                  std::span<const std::byte> body) {
    LocalRing& ring = *ring_;
    const SlotGeometry& geometry = ring.geometry;
    if (ring.sender_closed || ring.receiver_gone) return SendStatus::closed;
    const std::size_t length = head.size() + body.size();
    if (length > kMaxPayload) return SendStatus::too_large;
    const std::size_t count = geometry.slots_for(length);
    if (ring.write_pos + count > ring.free_pos + geometry.slots) return SendStatus::full;
    std::byte* first = ring.slots() + geometry.offset_of(ring.write_pos);
    if (count == 1) {
      copy_parts(first, head, body);
      write_header(first, geometry, encode_header(type, length, 1, 0));
      ++ring.write_pos;
      return SendStatus::ok;
    }
    copy_part_range(first, head, body, 0, geometry.payload);
    write_header(first, geometry, encode_header(type, length, count, 0));
    scatter_continuation(ring.slots(), geometry, ring.write_pos, head, body, count,
                         [&geometry](std::byte* slot, std::uint64_t header) {
                           write_header(slot, geometry, header);
                         });
    ring.write_pos += count;
    return SendStatus::ok;
  }

  std::shared_ptr<LocalRing> ring_;
};

class LocalReceiver final : public ChannelReceiver {
 public:
  explicit LocalReceiver(std::shared_ptr<LocalRing> ring) : ring_(std::move(ring)) {}
  ~LocalReceiver() override { ring_->receiver_gone = true; }
  LocalReceiver(const LocalReceiver&) = delete;
  LocalReceiver& operator=(const LocalReceiver&) = delete;

  std::size_t poll(FunctionRef<void(const MessageView&)> on_message,
                   std::size_t max_messages) override {
    if (polling_) return 0;
    PollGuard guard(polling_);
    LocalRing& ring = *ring_;
    const SlotGeometry& geometry = ring.geometry;
    ring.free_pos = ring.read_pos;  // Catches up after an on_message that threw.
    std::size_t delivered = 0;
    while (delivered < max_messages && ring.read_pos != ring.write_pos) {
      const std::uint64_t position = ring.read_pos;
      const std::byte* slot = ring.slots() + geometry.offset_of(position);
      const std::uint64_t header = read_header(slot, geometry);
      const std::size_t count = header_slots(header);
      const std::size_t length = header_length(header);
      // Delivered once even if on_message throws; the slots are freed only after it returns,
      // because on_message may send on this channel while it reads the payload in place.
      ring.read_pos += count;
      ++delivered;
      if (count == 1) {
        on_message(MessageView{header_type(header), {slot, length}});
      } else {
        on_message(MessageView{header_type(header), gather(ring.slots(), geometry, position, length,
                                                           count, scratch_.data())});
      }
      ring.free_pos = ring.read_pos;
    }
    return delivered;
  }

  bool has_message() const override { return ring_->read_pos != ring_->write_pos; }

  bool closed() const override { return ring_->sender_closed && !has_message(); }

 private:
  std::shared_ptr<LocalRing> ring_;
  bool polling_ = false;
  std::array<std::byte, kMaxPayload> scratch_;  ///< A multi-slot message made contiguous.
};

}  // namespace

Result<ChannelEnds> make_local_channel(const SlotGeometry& geometry) {
  auto ring = std::make_shared<LocalRing>(geometry);
  return ChannelEnds{std::make_unique<LocalSender>(ring), std::make_unique<LocalReceiver>(ring)};
}

}  // namespace mk::transport
