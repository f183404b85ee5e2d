// The doorbell: how a kernel goes to sleep and how other kernels wake it, in one place.
//
// A kernel that found no work raises its flags, takes the sleep barrier, and looks for work
// once more before it blocks in its IdleWaiter; it lowers the flags when it wakes (or when
// the last look found work). Its flags:
// - Doorbell::sleeping, for work handed to its inbox (post);
// - PairFlags::receiver_asleep on every channel it receives on, for messages;
// - PairFlags::room_wanted on every channel whose ring was too full for what it sends, for
//   room.
// Whoever publishes work of one of these kinds (an inbox item, a message, a read position)
// then takes the light barrier and looks at the matching flag; the one waker that clears it
// with an exchange notifies. The barrier pair (runtime/barrier.h) makes sure that of a waker
// and a sleeper at least one sees the other's store: the sleeper its work, or the waker its
// flag. So no work waits for a wake-up that never comes.
//
// How the notification itself travels (an eventfd, a futex word, a MSG_RING completion) is the
// notifier's business (runtime/idle_waiter.h, "Wake mechanisms" in docs/runtime.md): every
// mechanism sits behind Notifier::notify, called only from here.
#pragma once

#include <atomic>
#include <cstddef>

#include "mk/executor.h"
#include "runtime/barrier.h"
#include "runtime/inbox.h"

namespace mk::runtime {

/// Alignment that keeps two independently written atomics apart: the SKB measures how far
/// apart that is (Skb::prefetch_pair_distance), but alignas needs a constant, so this is the
/// largest distance the transport accepts from the SKB (kMaxSeparation), which covers every
/// machine mk runs on. Memory laid out at run time (channel rings) uses the SKB's own value.
inline constexpr std::size_t kSeparation = kMaxSeparation;

/// One kernel's doorbell: the flag it raises before sleeping and how to wake it.
struct Doorbell {
  /// True from the moment the kernel announces sleep until it (or a waker) clears it.
  alignas(kSeparation) std::atomic<bool> sleeping{false};
  /// Set by the executor before the kernel first runs; read-only afterwards.
  Notifier* notifier = nullptr;

  /// Wakes the kernel if it announced sleep; called after publishing work for it. The fast
  /// path is a compiler barrier and one relaxed load.
  void ring() noexcept {
    light_barrier();
    // Relaxed load: light_barrier and the sleeper's heavy barrier order it against the
    // published work. The exchange makes exactly one waker pay for the notification; acq_rel
    // is more than the notification needs but keeps the flag's history simple to reason about.
    if (sleeping.load(std::memory_order_relaxed) &&
        sleeping.exchange(false, std::memory_order_acq_rel)) {
      notifier->notify();
    }
  }
  /// The sleeper raises it, before its sleep barrier.
  void raise() noexcept {
    // Relaxed: the sleep barrier orders it before the sleeper's last look for work.
    sleeping.store(true, std::memory_order_relaxed);
  }
  /// The sleeper lowers it once awake.
  void lower() noexcept {
    // Relaxed: only the sleeper acts on it being false; a waker that read a stale true sends
    // one spare notification, which is harmless.
    sleeping.store(false, std::memory_order_relaxed);
  }
};

/// Per bound channel, shared by its two kernels (in the channel's own memory when the kernels
/// are processes): the two halves of the wake-up handshake that concern this pair.
struct PairFlags {
  /// Set by the sender when it sleeps with messages waiting for room; cleared by the receiver
  /// when it made room and woke it.
  alignas(kSeparation) std::atomic<bool> room_wanted{false};
  /// Set by the receiver, on each channel it receives on, from the moment it announces sleep
  /// until it wakes; a sender that publishes a message and finds it set wakes the receiver.
  alignas(kSeparation) std::atomic<bool> receiver_asleep{false};

  /// The sender, after publishing a message: wakes the receiver if it sleeps on this channel.
  /// Takes the receiver's doorbell, not its notifier, so that the fast path reads no line of
  /// the receiver's but this flag.
  void ring_receiver(const Doorbell& receiver) noexcept {
    light_barrier();
    // Relaxed, as in Doorbell::ring; the exchange makes one sender per channel pay for it.
    if (receiver_asleep.load(std::memory_order_relaxed) &&
        receiver_asleep.exchange(false, std::memory_order_acq_rel)) {
      receiver.notifier->notify();
    }
  }
  /// The receiver, after a poll that published a new read position: wakes the sender if it
  /// sleeps waiting for room.
  void ring_sender(const Doorbell& sender) noexcept {
    light_barrier();
    // Relaxed: ordered by the barrier pair; the flag itself carries no data.
    if (room_wanted.load(std::memory_order_relaxed)) {
      // Relaxed: the sender sets it again, before its sleep barrier, each time it sleeps.
      room_wanted.store(false, std::memory_order_relaxed);
      // The flag says the sender sleeps (or is about to): wake it without looking further.
      sender.notifier->notify();
    }
  }
  /// The sender, before its sleep barrier: it waits for room in this channel.
  void want_room() noexcept {
    // Relaxed: the sleep barrier orders it; the receiver pairs it with its light barrier.
    room_wanted.store(true, std::memory_order_relaxed);
  }
  /// The receiver, before its sleep barrier: it sleeps on this channel.
  void raise_receiver_asleep() noexcept {
    // Relaxed: the sleep barrier orders it before the receiver's last look at the channel.
    receiver_asleep.store(true, std::memory_order_relaxed);
  }
  /// The receiver, once awake.
  void lower_receiver_asleep() noexcept {
    // Relaxed: as Doorbell::lower.
    receiver_asleep.store(false, std::memory_order_relaxed);
  }
};

/// The sleeper's barrier, between raising its flags and its last look for work: shared with
/// other kernels of this process going idle at the same moment (runtime/barrier.h).
inline void sleep_barrier() noexcept {
  heavy_barrier();
}

/// The one way work is handed to a kernel of this process from another thread: into its
/// inbox, then its doorbell rung. The inbox takes ownership of `item`.
void post(Inbox& inbox, Doorbell& doorbell, InboxItem* item) noexcept;

/// The sleeper's whole side of the handshake: raises `room_wanted` on every channel the
/// kernel waits for room in (`for_each_wanting_room(f)` calls f(PairFlags&) on each),
/// `receiver_asleep` on every channel it receives on (`for_each_receiving`), and its own
/// doorbell; takes the sleep barrier; looks for work once more (`has_work()`). True when it
/// found none and may block; false when it found some, and then it has lowered its flags.
template <class ForEachWantingRoom, class ForEachReceiving, class HasWork>
bool announce_sleep(Doorbell& own, ForEachWantingRoom for_each_wanting_room,
                    ForEachReceiving for_each_receiving, HasWork has_work) noexcept {
  for_each_wanting_room([](PairFlags& flags) { flags.want_room(); });
  for_each_receiving([](PairFlags& flags) { flags.raise_receiver_asleep(); });
  own.raise();
  sleep_barrier();
  if (!has_work()) return true;
  for_each_receiving([](PairFlags& flags) { flags.lower_receiver_asleep(); });
  own.lower();
  return false;
}

/// The sleeper, once awake (or once announce_sleep found work): lowers its flags.
/// `room_wanted` stays: the receiver clears it when it makes room.
template <class ForEachReceiving>
void end_sleep(Doorbell& own, ForEachReceiving for_each_receiving) noexcept {
  for_each_receiving([](PairFlags& flags) { flags.lower_receiver_asleep(); });
  own.lower();
}

}  // namespace mk::runtime
