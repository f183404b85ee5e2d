// A kernel's calls in flight, found by the id their reply carries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mk/kernel.h"
#include "mk/result.h"
#include "runtime/timer_queue.h"

namespace mk::runtime {

/// Slots of pending calls. An id is a slot index plus a generation that changes each time the
/// slot is reused, so a late reply to a finished call is recognised and dropped. Lookup is an
/// index, not a hash: it sits on the call's round trip.
class CallTable {
 public:
  /// A table whose calls' deadlines are in `timers`: a call that ends disarms its own.
  explicit CallTable(TimerQueue& timers) : timers_(timers) {}

  static constexpr unsigned kIndexBits = 20;
  static constexpr std::uint32_t kMaxCalls = 1u << kIndexBits;
  /// The highest generation an id carries, in the bits above the index.
  static constexpr std::uint32_t kLastGeneration = (1u << (32 - kIndexBits)) - 1;

  struct Entry {
    detail::PendingCall* call = nullptr;
    std::uint32_t id = 0;
    std::uint64_t serial = 0;  ///< Unique for the kernel's life; ties timers to one call.
  };

  /// Registers `call` to kernel `to`; nothing when kMaxCalls calls are already in flight
  /// (full_error() says so). Not a Result: an Error's strings would be built and destroyed
  /// around every call.
  std::optional<Entry> add(detail::PendingCall& call, KernelId to) {
    std::uint32_t index = free_head_;
    if (index != kNoSlot) [[likely]] {
      free_head_ = slots_[index].next_free;
    } else {
      index = grow();
      if (index == kNoSlot) return std::nullopt;
    }
    Slot& slot = slots_[index];
    // Generations run 1..4095, so no id is ever 0 (0 marks a one-way message on the wire).
    slot.generation = slot.generation == kLastGeneration ? 1 : slot.generation + 1;
    slot.call = &call;
    slot.to = to;
    slot.serial = next_serial_++;
    slot.timed = false;
    ++in_flight_;
    return Entry{&call, (slot.generation << kIndexBits) | index, slot.serial};
  }

  /// Why add() registered nothing: kMaxCalls calls are in flight.
  static Error full_error() {
    return error(Errc::full,
                 "more than " + std::to_string(kMaxCalls) + " calls in flight on one kernel");
  }

  /// Records that the call with `id` (just added) has a deadline in the timer queue.
  void set_timed(std::uint32_t id) noexcept { slots_[id & (kMaxCalls - 1)].timed = true; }

  /// Removes and returns the call with `id`, or nullptr when none is in flight with it (late
  /// or forged). With `serial` nonzero, also requires that serial.
  detail::PendingCall* take(std::uint32_t id, std::uint64_t serial = 0) {
    std::uint32_t index = id & (kMaxCalls - 1);
    if (index >= slots_.size()) return nullptr;
    Slot& slot = slots_[index];
    if (slot.call == nullptr || slot.generation != (id >> kIndexBits)) return nullptr;
    if (serial != 0 && slot.serial != serial) return nullptr;
    detail::PendingCall* call = slot.call;
    release(slot, index);
    return call;
  }

  /// Removes every call in flight, passing each to `f`.
  template <class F>
  void drain(F f) {
    for (std::uint32_t index = 0; index < slots_.size(); ++index) {
      Slot& slot = slots_[index];
      if (slot.call == nullptr) continue;
      detail::PendingCall* call = slot.call;
      release(slot, index);
      f(*call);
    }
  }

  /// Removes every call in flight to kernel `to`, passing each to `f`.
  template <class F>
  void drain_to(KernelId to, F f) {
    for (std::uint32_t index = 0; index < slots_.size(); ++index) {
      Slot& slot = slots_[index];
      if (slot.call == nullptr || slot.to != to) continue;
      detail::PendingCall* call = slot.call;
      release(slot, index);
      f(*call);
    }
  }
  std::size_t in_flight() const noexcept { return in_flight_; }

 private:
  /// No slot: the end of the free list.
  static constexpr std::uint32_t kNoSlot = ~std::uint32_t{0};

  struct Slot {
    detail::PendingCall* call = nullptr;
    std::uint32_t generation = 0;
    KernelId to = 0;
    std::uint64_t serial = 0;
    std::uint32_t next_free = kNoSlot;  ///< While free: the free slot after this one.
    bool timed = false;                 ///< Its deadline is in timers_.
  };

  void release(Slot& slot, std::uint32_t index) {
    if (slot.timed) [[unlikely]]
      disarm(slot);
    slot.call = nullptr;
    // The slot freed last is reused first, as from a stack: its line is the one still cached.
    slot.next_free = free_head_;
    free_head_ = index;
    --in_flight_;
  }

  /// A new slot at the end of the table, or kNoSlot when it holds kMaxCalls. Out of line,
  /// with disarm, so that add() and take(), on every call's path, stay small.
  [[gnu::noinline]] std::uint32_t grow() {
    if (slots_.size() >= kMaxCalls) return kNoSlot;
    slots_.push_back(Slot{});
    return static_cast<std::uint32_t>(slots_.size() - 1);
  }
  [[gnu::noinline]] void disarm(Slot& slot) { timers_.disarm(slot.serial); }

  TimerQueue& timers_;
  std::vector<Slot> slots_;
  std::uint32_t free_head_ = kNoSlot;  ///< The first free slot, or kNoSlot.
  std::uint64_t next_serial_ = 1;
  std::size_t in_flight_ = 0;
};

}  // namespace mk::runtime
