// The urpc ring and the parts of its ends kept out of the per-message path (mk/urpc.h has
// that path). The sender writes a slot's payload, then its header with a release store; the
// receiver polls only the header of its next slot. A small message goes into the slot the
// sender wrote last when it still has room and is open (the receiver stays on an open slot),
// so small messages share lines; a run of messages alike in type and length shares them
// without sub-headers. Flow control goes the other way through one line the receiver writes
// every quarter ring. docs/transport.md has the layout.
#include "transport/urpc_channel.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "transport/channel_options.h"
#include "transport/ring_memory.h"

namespace mk::transport {
namespace {

/// Where the control words start: after the layer above's lines, rounded up to the separation.
std::size_t control_offset(const SlotGeometry& geometry, std::size_t aux_lines) {
  const std::size_t aux = aux_lines * geometry.line_size;
  return (aux + geometry.separation - 1) / geometry.separation * geometry.separation;
}

}  // namespace

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

UrpcSender::UrpcSender(std::shared_ptr<UrpcRing> ring)
    : ring_(std::move(ring)),
      geometry_(ring_->geometry),
      slots_(ring_->slots),
      published_read_(ring_->published_read),
      receiver_gone_(ring_->receiver_gone),
      write_limit_(geometry_.slots) {}

UrpcSender::~UrpcSender() {
  close();
}

std::size_t UrpcSender::try_send_batch(std::span<const OutgoingMessage> messages) {
  std::size_t sent = 0;
  for (const auto& message : messages) {
    if (send(message.type, message.payload, {}) != SendStatus::ok) break;
    ++sent;
  }
  return sent;
}

void UrpcSender::close() {
  if (closed_) return;
  close_open_slot();
  closed_ = true;
  // Release: a receiver that sees the close also sees every header written before it, so
  // its drain loop finds them all before closed() turns true.
  ring_->sender_closed_at->store(write_pos_ + 1, std::memory_order_release);
}

SendStatus UrpcSender::send_multi(MessageType type, std::span<const std::byte> head,
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

bool UrpcSender::refresh_limit(std::size_t count) {
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
  // The slot of an awaited answer is written again only once poll_answer has seen it: the
  // receiver may have published its position past the slot before the answer was read.
  if (answer_slot_ != nullptr) {
    write_limit_ = std::min(write_limit_, answer_pos_ + geometry_.slots);
  }
  return write_pos_ + count <= write_limit_;
}

UrpcReceiver::UrpcReceiver(std::shared_ptr<UrpcRing> ring)
    : ring_(std::move(ring)),
      geometry_(ring_->geometry),
      slots_(ring_->slots),
      published_read_(ring_->published_read),
      publish_interval_(std::max<std::uint64_t>(1, geometry_.slots / 4)),
      slot_(slots_),
      epoch_(geometry_.epoch_bits(0)),
      publish_at_(publish_interval_) {}

UrpcReceiver::~UrpcReceiver() {
  // Relaxed: the flag carries no data; a send racing with it lands in memory that the
  // sender keeps alive and that nobody reads.
  ring_->receiver_gone->store(1, std::memory_order_relaxed);
}

bool UrpcReceiver::has_message() const {
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

bool UrpcReceiver::closed() const {
  // Acquire: pairs with the sender's release in close(); see there.
  const std::uint64_t closed_at = ring_->sender_closed_at->load(std::memory_order_acquire);
  return closed_at != 0 && read_pos_ + 1 == closed_at;
}

std::span<const std::byte> UrpcReceiver::take_multi(std::uint64_t header) {
  const std::uint64_t position = read_pos_;
  const std::size_t count = header_slots(header);
  const std::size_t length = header_length(header);
  // The sender may be another process and write anything: a length and slot count that do
  // not describe a message this ring can hold stop the channel before anything is copied.
  if (length > kMaxPayload || count != geometry_.slots_for(length) || header_packed(header) != 0 ||
      (header & (kOpenBit | kRunBit | kAnswerBit)) != 0) {
    corrupt_first(length, count);
    return {};
  }
  // Taken before on_message runs, as in take_first.
  next_slot(count);
  return gather(slots_, geometry_, position, length, count, scratch_.data());
}

void UrpcReceiver::corrupt_count(std::size_t packed) {
  corrupt("the count of packed messages went back from " + std::to_string(taken_ - 1) + " to " +
          std::to_string(packed));
}

void UrpcReceiver::corrupt_first(std::size_t length, std::size_t count) {
  corrupt(std::to_string(length) + " bytes in " + std::to_string(count) + " slots" +
          (count == 1 ? "" : " with packed messages, open or a run"));
}

void UrpcReceiver::corrupt_packed(std::size_t length, std::size_t at) {
  corrupt("packed message " + std::to_string(taken_) + " of " + std::to_string(length) +
          " bytes at byte " + std::to_string(at) + " overruns the slot");
}

void UrpcReceiver::corrupt_asking() {
  corrupt("a message asking for an answer in its slot must be alone in one slot and fit it");
}

void UrpcReceiver::corrupt(const std::string& what) {
  fault_ = error(Errc::parse_error, "urpc: corrupt header at ring position " +
                                        std::to_string(read_pos_) + ": " + what);
}

Result<UrpcChannel> make_urpc_channel(const SlotGeometry& geometry, int node) {
  auto memory = RingMemory::allocate(shared_urpc_bytes(geometry, 0), geometry.separation, node);
  if (!memory) return std::move(memory).error();
  auto ring = std::make_shared<UrpcRing>(std::move(memory).value(), geometry, 0);
  return UrpcChannel{std::make_unique<UrpcSender>(ring), std::make_unique<UrpcReceiver>(ring)};
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

namespace mk {

Result<UrpcChannel> make_urpc_channel(const ChannelOptions& options) {
  auto geometry = transport::make_geometry(options);
  if (!geometry) return std::move(geometry).error();
  return transport::make_urpc_channel(*geometry, options.receiver_numa_node);
}

}  // namespace mk
