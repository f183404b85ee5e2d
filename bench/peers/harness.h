// The two measurements every peer shares, written once over a queue type, so that peers
// differ only in how a message goes into their queue and comes out of it.
//
// Every peer is driven alike: the producer stamps a sequence number into the first 8 bytes
// of an N-byte message and the queue copies all N bytes into its own memory (a slot, a
// queue element, or a buffer of a pool whose pointer the queue carries); the consumer reads
// all N bytes where they lie, checks the sequence number and the size, and sums the words.
// The echo of a round trip copies the message out of its queue and sends the copy back.
#pragma once

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core_pair.h"
#include "mk/result.h"
#include "peers/peer.h"

namespace mk::bench {

/// An N-byte message as the producer holds it before it sends.
template <std::size_t N>
using PeerPayload = std::array<std::byte, N>;

/// One direction of a peer's queue for N-byte messages, single producer, single consumer:
/// - `Q::make(capacity)` makes one holding `capacity` messages.
/// - `try_send(payload)` copies the N bytes into the queue; false when it is full. After a
///   false the producer passes the same bytes again.
/// - `try_receive(f)` calls `f(bytes)` on the oldest message where it lies in the queue's
///   memory, then frees its place; false when the queue is empty.
template <class Q, std::size_t N>
concept PeerQueue = requires(Q& queue, const PeerPayload<N>& payload) {
  { Q::make(std::size_t{}) } -> std::same_as<mk::Result<std::unique_ptr<Q>>>;
  { queue.try_send(payload) } -> std::same_as<bool>;
  {
    queue.try_receive([](std::span<const std::byte>) {})
    } -> std::same_as<bool>;
};

namespace peer_detail {

// Where the consumers' sums go, so that their reads of the payload stay in the program.
inline volatile std::uint64_t sink = 0;

template <std::size_t N>
void stamp(PeerPayload<N>& payload, std::uint64_t sequence) {
  std::memcpy(payload.data(), &sequence, sizeof sequence);
}

// Reads all N bytes, as a consumer of the contents would. Adds the sum of the words to `sum`
// and returns whether the message is N bytes long and carries `sequence`.
template <std::size_t N>
bool consume(std::span<const std::byte> bytes, std::uint64_t sequence, std::uint64_t& sum) {
  static_assert(N % sizeof(std::uint64_t) == 0 && N >= sizeof(std::uint64_t));
  if (bytes.size() != N) return false;
  std::uint64_t words[N / sizeof(std::uint64_t)];
  std::memcpy(words, bytes.data(), N);
  for (std::uint64_t word : words)
    sum += word;
  return words[0] == sequence;
}

}  // namespace peer_detail

/// Round trips of N-byte messages through two queues of type Q, one each way; appends one
/// sample per round trip after setup.warmup unmeasured ones.
template <std::size_t N, PeerQueue<N> Q>
mk::Result<void> peer_rtt(const PeerSetup& setup, std::vector<double>& samples) {
  auto there = Q::make(setup.capacity);
  if (!there) return std::move(there).error();
  auto back = Q::make(setup.capacity);
  if (!back) return std::move(back).error();
  const std::uint64_t total = setup.warmup + setup.rounds;
  std::uint64_t wrong_replies = 0;
  std::uint64_t wrong_requests = 0;
  std::vector<double> measured;
  measured.reserve(setup.rounds);
  run_pair(
      setup.cores,
      [&] {
        Q& tx = **there;
        Q& rx = **back;
        PeerPayload<N> payload;
        payload.fill(std::byte{0x5a});
        std::uint64_t sum = 0;
        for (std::uint64_t i = 0; i < total; ++i) {
          peer_detail::stamp(payload, i);
          const std::uint64_t t0 = TickClock::ticks();
          Backoff send_wait;
          while (!tx.try_send(payload))
            send_wait.wait();
          bool intact = false;
          Backoff reply_wait;
          while (!rx.try_receive([&](std::span<const std::byte> reply) {
            intact = peer_detail::consume<N>(reply, i, sum);
          }))
            reply_wait.wait();
          const std::uint64_t t1 = TickClock::ticks();
          if (!intact) ++wrong_replies;
          if (i >= setup.warmup) measured.push_back(setup.clock->to_ns(t1 - t0));
        }
        peer_detail::sink = sum;
      },
      [&] {
        Q& rx = **there;
        Q& tx = **back;
        PeerPayload<N> reply;
        for (std::uint64_t i = 0; i < total; ++i) {
          bool intact = false;
          Backoff wait;
          // The copy out reads every byte, as a consumer of the contents would.
          while (!rx.try_receive([&](std::span<const std::byte> request) {
            intact = request.size() == N;
            if (intact) std::memcpy(reply.data(), request.data(), N);
          }))
            wait.wait();
          if (!intact) ++wrong_requests;
          Backoff send_wait;
          while (!tx.try_send(reply))
            send_wait.wait();
        }
      });
  if (wrong_replies != 0 || wrong_requests != 0) {
    return error(Errc::internal,
                 fmt::format("{} of {} round trips of {}-byte messages came back wrong ({} "
                             "requests arrived with the wrong size)",
                             wrong_replies, total, N, wrong_requests));
  }
  samples.insert(samples.end(), measured.begin(), measured.end());
  return {};
}

/// Millions of N-byte messages per second from one thread to the other through one queue of
/// type Q, sent and received one at a time.
template <std::size_t N, PeerQueue<N> Q>
mk::Result<double> peer_throughput(const PeerSetup& setup) {
  auto made = Q::make(setup.capacity);
  if (!made) return std::move(made).error();
  Q& queue = **made;
  const std::uint64_t count = setup.messages;
  std::chrono::steady_clock::time_point start, end;
  std::uint64_t wrong = 0;
  run_pair(
      setup.cores,
      [&] {
        std::uint64_t sum = 0;
        for (std::uint64_t i = 0; i < count; ++i) {
          Backoff wait;
          while (!queue.try_receive([&](std::span<const std::byte> message) {
            if (!peer_detail::consume<N>(message, i, sum)) ++wrong;
          }))
            wait.wait();
        }
        end = std::chrono::steady_clock::now();
        peer_detail::sink = sum;
      },
      [&] {
        PeerPayload<N> payload;
        payload.fill(std::byte{0x5a});
        start = std::chrono::steady_clock::now();
        for (std::uint64_t i = 0; i < count; ++i) {
          peer_detail::stamp(payload, i);
          Backoff wait;
          while (!queue.try_send(payload))
            wait.wait();
        }
      });
  if (wrong != 0) {
    return error(
        Errc::internal,
        fmt::format("{} of {} {}-byte messages arrived out of order or with the wrong size", wrong,
                    count, N));
  }
  const double seconds = std::chrono::duration<double>(end - start).count();
  return static_cast<double>(count) / seconds / 1e6;
}

/// peer_rtt for a message size of kPeerSizes known only at run time.
template <template <std::size_t> class Q>
mk::Result<void> peer_rtt_of_size(std::size_t size, const PeerSetup& setup,
                                  std::vector<double>& samples) {
  static_assert(kPeerSizes == std::array<std::size_t, 5>{8, 64, 256, 1024, 2048});
  switch (size) {
    case 8:
      return peer_rtt<8, Q<8>>(setup, samples);
    case 64:
      return peer_rtt<64, Q<64>>(setup, samples);
    case 256:
      return peer_rtt<256, Q<256>>(setup, samples);
    case 1024:
      return peer_rtt<1024, Q<1024>>(setup, samples);
    case 2048:
      return peer_rtt<2048, Q<2048>>(setup, samples);
  }
  return error(Errc::invalid_argument,
               fmt::format("message size {} is not one of {}", size, fmt::join(kPeerSizes, ", ")));
}

/// peer_throughput for a message size of kPeerSizes known only at run time.
template <template <std::size_t> class Q>
mk::Result<double> peer_throughput_of_size(std::size_t size, const PeerSetup& setup) {
  static_assert(kPeerSizes == std::array<std::size_t, 5>{8, 64, 256, 1024, 2048});
  switch (size) {
    case 8:
      return peer_throughput<8, Q<8>>(setup);
    case 64:
      return peer_throughput<64, Q<64>>(setup);
    case 256:
      return peer_throughput<256, Q<256>>(setup);
    case 1024:
      return peer_throughput<1024, Q<1024>>(setup);
    case 2048:
      return peer_throughput<2048, Q<2048>>(setup);
  }
  return error(Errc::invalid_argument,
               fmt::format("message size {} is not one of {}", size, fmt::join(kPeerSizes, ", ")));
}

/// A ring of pointers, single producer and single consumer, as rte_ring and ck_ring are:
/// `R::make(capacity)` makes one holding `capacity` pointers; `push(p)` and `pop(p)` return
/// false when it is full or empty.
template <class R>
concept PointerRing = requires(R& ring, void* pointer) {
  { R::make(std::size_t{}) } -> std::same_as<mk::Result<std::unique_ptr<R>>>;
  { ring.push(pointer) } -> std::same_as<bool>;
  { ring.pop(pointer) } -> std::same_as<bool>;
};

/// A PeerQueue of N-byte messages over a ring of pointers: the producer copies each message
/// into the next of 2 x capacity buffers of a pool, each on lines of its own, and pushes its
/// pointer; the consumer pops the pointer and reads the buffer where it lies. Taken in turn, a
/// buffer is written again only after the consumer has popped the pointers of 2 x capacity - 1
/// later messages, so never while it still reads it: it holds at most one popped message and
/// the ring at most `capacity`.
template <std::size_t N, PointerRing R>
class PooledQueue {
 public:
  /// A queue of `capacity` messages; fails as R::make does.
  static mk::Result<std::unique_ptr<PooledQueue>> make(std::size_t capacity) {
    auto ring = R::make(capacity);
    if (!ring) return std::move(ring).error();
    return std::unique_ptr<PooledQueue>(new PooledQueue(std::move(*ring), capacity));
  }

  /// Copies `payload` into the next buffer, once however often the ring is full, and pushes
  /// its pointer.
  bool try_send(const PeerPayload<N>& payload) {
    std::byte* buffer = buffers_[next_].bytes;
    if (!filled_) {
      std::memcpy(buffer, payload.data(), N);
      filled_ = true;
    }
    if (!ring_->push(buffer)) return false;
    filled_ = false;
    next_ = next_ + 1 == buffer_count_ ? 0 : next_ + 1;
    return true;
  }

  /// Pops a pointer and hands `f` the buffer it points to.
  template <class F>
  bool try_receive(F&& f) {
    void* buffer = nullptr;
    if (!ring_->pop(buffer)) return false;
    f(std::span<const std::byte>(static_cast<const std::byte*>(buffer), N));
    return true;
  }

 private:
  struct alignas(64) Buffer {
    std::byte bytes[N];
  };

  PooledQueue(std::unique_ptr<R> ring, std::size_t capacity)
      : ring_(std::move(ring)),
        buffer_count_(2 * capacity),
        buffers_(std::make_unique<Buffer[]>(buffer_count_)) {}

  std::unique_ptr<R> ring_;
  std::size_t buffer_count_;
  std::unique_ptr<Buffer[]> buffers_;
  std::size_t next_ = 0;
  bool filled_ = false;  // buffers_[next_] holds the message a refused push carried
};

/// A PeerQueue of pointer-sized messages over a ring of pointers: the message's bytes are the
/// pointer pushed, as a user of such a ring passes a word, so the ring packs as many messages
/// into a cache line as it has pointers there (eight on x86-64).
template <std::size_t N, PointerRing R>
class WordQueue {
  static_assert(N == sizeof(void*), "a WordQueue carries messages of one pointer's size");

 public:
  /// A queue of `capacity` messages; fails as R::make does.
  static mk::Result<std::unique_ptr<WordQueue>> make(std::size_t capacity) {
    auto ring = R::make(capacity);
    if (!ring) return std::move(ring).error();
    return std::unique_ptr<WordQueue>(new WordQueue(std::move(*ring)));
  }

  /// Pushes the message's bytes as a pointer.
  bool try_send(const PeerPayload<N>& payload) {
    void* word = nullptr;
    std::memcpy(&word, payload.data(), N);
    return ring_->push(word);
  }

  /// Pops a pointer and hands `f` its bytes.
  template <class F>
  bool try_receive(F&& f) {
    void* word = nullptr;
    if (!ring_->pop(word)) return false;
    PeerPayload<N> bytes;
    std::memcpy(bytes.data(), &word, N);
    f(std::span<const std::byte>(bytes));
    return true;
  }

 private:
  explicit WordQueue(std::unique_ptr<R> ring) : ring_(std::move(ring)) {}

  std::unique_ptr<R> ring_;
};

/// The queue a pointer ring is measured through: words carried in the ring itself, larger
/// messages through a pool.
template <std::size_t N, PointerRing R>
using PointerRingQueue = std::conditional_t<N == sizeof(void*), WordQueue<N, R>, PooledQueue<N, R>>;

}  // namespace mk::bench
