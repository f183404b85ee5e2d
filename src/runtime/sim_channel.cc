#include "runtime/sim_channel.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "runtime/sim_executor.h"

namespace mk::runtime {

namespace {

struct SimMessage {
  MessageType type;
  std::vector<std::byte> payload;  ///< Empty when the message is in a shared buffer.
  Instant deliver_at;
  std::size_t slots;
  Duration read;  ///< What reading it costs the receiver, without contention.
  std::shared_ptr<SimSharedBuffer> shared;

  std::span<const std::byte> bytes() const noexcept {
    return shared ? std::span<const std::byte>(shared->payload) : payload;
  }
};

/// Where a message of `slots` slots goes and what it costs: when it leaves the sender's store
/// buffer until it is visible, and what its receiver pays to read it.
struct Pricing {
  Duration flight;
  Duration read;
  std::shared_ptr<SimSharedBuffer> shared;
};

Pricing price(SimExecutor& sim, const SimChannelShape& shape, std::span<const std::byte> payload,
              std::size_t slots, Instant sent) {
  const int n = static_cast<int>(slots);
  Pricing pricing{shape.latency + shape.flight_per_slot * n,
                  shape.receive + shape.read_per_slot * n, nullptr};
  SimPlacement placement = sim.placement(shape.from, shape.to);
  if (SimSharedBuffer* buffer = placement.shared.get()) {
    // A fan-out posts the same bytes to every receiver: the first send writes them, and each
    // later receiver's copy is the same lines, there once that write is.
    if (!buffer->written) {
      buffer->written = true;
      buffer->payload.assign(payload.begin(), payload.end());
      buffer->visible = sent + sim.line_transfer(shape.from, buffer->numa_node) * n;
    }
    pricing.flight = std::max(Duration::zero(), buffer->visible - sent);
    pricing.read = sim.line_transfer(shape.to, buffer->numa_node) * n;
    pricing.shared = std::move(placement.shared);
    return pricing;
  }
  if (placement.numa_node >= 0) {
    pricing.flight = sim.line_transfer(shape.from, placement.numa_node) * n;
    pricing.read = sim.line_transfer(shape.to, placement.numa_node) * n;
  }
  return pricing;
}

/// Shared by the two ends; one thread runs the whole simulation, so nothing here is atomic.
struct SimRing {
  SimRing(SimExecutor& sim, const SimChannelShape& channel_shape)
      : executor(sim),
        shape(channel_shape),
        sender_time(sim.time_of(channel_shape.from)),
        receiver_time(sim.time_of(channel_shape.to)) {}

  /// When the front message arrives; the far future when there is none. Kept beside the
  /// receiver's clock so that the receiver's look at each of its channels every turn is one
  /// compare.
  Instant next_arrival() const noexcept {
    return queue.empty() ? Instant::max() : queue.front().deliver_at;
  }

  SimExecutor& executor;
  SimChannelShape shape;
  const Instant& sender_time;    ///< The sending kernel's virtual time.
  const Instant& receiver_time;  ///< The receiving kernel's virtual time.
  Instant front_arrival = Instant::max();
  std::deque<SimMessage> queue;
  /// Slots the sender cannot use: taken by messages, or freed by the receiver at an instant
  /// the sender's clock has not reached yet (a receiver's turn runs whole, ahead of others).
  std::size_t used_slots = 0;
  struct Release {
    Instant at;
    std::size_t slots;
  };
  std::deque<Release> releases;  ///< Slots freed by the receiver, in its time order.
  Instant last_delivery{};
  bool sender_closed = false;
  bool receiver_gone = false;
  bool polling = false;
};

/// The simulator's own work inside a kernel's turn: the kernel is charged its host CPU time
/// up to here (SimCosts::host_cpu_time), not the bookkeeping's, which the model prices.
class Bookkeeping {
 public:
  Bookkeeping(SimExecutor& sim, KernelId kernel) : sim_(sim) { sim_.charge_cpu(kernel); }
  ~Bookkeeping() { sim_.skip_cpu(); }
  Bookkeeping(const Bookkeeping&) = delete;
  Bookkeeping& operator=(const Bookkeeping&) = delete;

 private:
  SimExecutor& sim_;
};

class SimSender final : public ChannelSender {
 public:
  explicit SimSender(std::shared_ptr<SimRing> ring) : ring_(std::move(ring)) {}
  ~SimSender() override { close(); }
  SimSender(const SimSender&) = delete;
  SimSender& operator=(const SimSender&) = delete;

  SendStatus try_send(MessageType type, std::span<const std::byte> payload) override {
    SimRing& ring = *ring_;
    const Bookkeeping bookkeeping(ring.executor, ring.shape.from);
    if (ring.sender_closed || ring.receiver_gone) return SendStatus::closed;
    if (payload.size() > kMaxPayload) return SendStatus::too_large;
    const std::size_t per_slot = ring.shape.slot_payload;
    const std::size_t slots = std::max<std::size_t>(1, (payload.size() + per_slot - 1) / per_slot);
    SimExecutor& sim = ring.executor;
    while (!ring.releases.empty() && ring.releases.front().at <= ring.sender_time) {
      ring.used_slots -= ring.releases.front().slots;
      ring.releases.pop_front();
    }
    if (ring.used_slots + slots > ring.shape.slots) {
      // Room the receiver already made shows when the sender's clock gets there.
      if (!ring.releases.empty()) sim.wake_at(ring.shape.from, ring.releases.front().at);
      return SendStatus::full;
    }
    // Lost with a sender that crashes in the middle of its turn: to the runtime it went.
    if (!sim.may_send(ring.shape.from)) return SendStatus::ok;
    const Instant sent = sim.charge_send(ring.shape.from, ring.shape.send);
    Pricing pricing = price(sim, ring.shape, payload, slots, sent);
    const Instant arrives =
        std::max(ring.last_delivery,
                 sim.delivery_instant(ring.shape.from, ring.shape.to, sent, pricing.flight));
    ring.last_delivery = arrives;
    std::vector<std::byte> own;
    if (!pricing.shared) own.assign(payload.begin(), payload.end());
    ring.queue.push_back(
        SimMessage{type, std::move(own), arrives, slots, pricing.read, std::move(pricing.shared)});
    ring.used_slots += slots;
    ring.front_arrival = ring.next_arrival();
    sim.on_enqueued(ring.shape.from, ring.shape.to, type, sent, arrives);
    return SendStatus::ok;
  }

  void close() override { ring_->sender_closed = true; }
  bool peer_closed() const override { return ring_->receiver_gone; }

 private:
  std::shared_ptr<SimRing> ring_;
};

class SimReceiver final : public ChannelReceiver {
 public:
  explicit SimReceiver(std::shared_ptr<SimRing> ring) : ring_(std::move(ring)) {}
  ~SimReceiver() override { ring_->receiver_gone = true; }
  SimReceiver(const SimReceiver&) = delete;
  SimReceiver& operator=(const SimReceiver&) = delete;

  std::size_t poll(FunctionRef<void(const MessageView&)> on_message,
                   std::size_t max_messages) override {
    SimRing& ring = *ring_;
    if (ring.polling || ring.front_arrival > ring.receiver_time) return 0;
    ring.polling = true;
    std::size_t delivered = 0;
    try {
      while (delivered < max_messages && has_message()) {
        std::optional<Bookkeeping> bookkeeping(std::in_place, ring.executor, ring.shape.to);
        SimMessage message = std::move(ring.queue.front());
        ring.queue.pop_front();
        ring.releases.push_back(SimRing::Release{ring.receiver_time, message.slots});
        ring.front_arrival = ring.next_arrival();
        ++delivered;
        ring.executor.on_received(ring.shape.to, ring.shape.from, message.type,
                                  read_cost(message, ring.receiver_time));
        bookkeeping.reset();
        on_message(MessageView{message.type, message.bytes()});
      }
    } catch (...) {
      ring.polling = false;
      throw;
    }
    ring.polling = false;
    return delivered;
  }

  bool has_message() const override { return ring_->front_arrival <= ring_->receiver_time; }

  /// A shared buffer's line goes to one reader at a time, in the order they read it; a
  /// reader whose turn the simulation runs ahead of another's time still queues behind it.
  static Duration read_cost(const SimMessage& message, Instant start) {
    if (!message.shared) return message.read;
    SimSharedBuffer& buffer = *message.shared;
    const Instant done = std::max(start, buffer.free_at) + message.read;
    buffer.free_at = done;
    return done - start;
  }

  bool closed() const override { return ring_->sender_closed && ring_->queue.empty(); }

 private:
  std::shared_ptr<SimRing> ring_;
};

}  // namespace

ChannelEnds make_sim_channel(SimExecutor& executor, const SimChannelShape& shape) {
  auto ring = std::make_shared<SimRing>(executor, shape);
  return ChannelEnds{std::make_unique<SimSender>(ring), std::make_unique<SimReceiver>(ring)};
}

}  // namespace mk::runtime
