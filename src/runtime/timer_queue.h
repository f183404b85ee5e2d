// A kernel's timers: sleeping tasks and call deadlines, earliest first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mk/channel.h"
#include "mk/clock.h"
#include "mk/kernel.h"
#include "mk/kernel_id.h"

namespace mk::runtime {

/// One timer: wakes a sleeping task, or times out a call (identified by id and serial, so a
/// timer outliving its call never touches a later call that reused the id).
struct Timer {
  Instant when;
  std::uint64_t order;  ///< Tie-break: timers with equal deadlines fire in creation order.
  detail::Waiter* sleeper = nullptr;
  std::uint32_t call_id = 0;
  std::uint64_t call_serial = 0;
  MessageType call_type = 0;  ///< For the timed_out error's text.
  KernelId call_to = 0;       ///< For the timed_out error's text.

  bool operator<(const Timer& other) const noexcept {
    return when != other.when ? when < other.when : order < other.order;
  }
};

/// An indexed min-heap of timers: each timer's place in the heap is known by its call's serial
/// or its sleeper, so cancelling one (a call that ended, disarm; a sleep given up,
/// cancel_sleep) removes it at once, in O(log n). The heap holds live timers only: next() is
/// always one that may still fire, and an idle kernel never arms a wake-up for a finished
/// call. A task has at most one sleep pending (its awaiter waits for it).
class TimerQueue {
 public:
  /// Sleeps `sleeper` until `when`, replacing a sleep it still had.
  void add_sleep(Instant when, detail::Waiter& sleeper) {
    cancel_sleep(sleeper);
    push(Timer{when, next_order_++, &sleeper, 0, 0, 0, 0});
  }
  void add_deadline(Instant when, std::uint32_t call_id, std::uint64_t call_serial,
                    MessageType type, KernelId to) {
    push(Timer{when, next_order_++, nullptr, call_id, call_serial, type, to});
  }
  /// Cancels the deadline of the call with `call_serial`, if it has one still pending.
  void disarm(std::uint64_t call_serial) {
    if (auto found = deadlines_.find(call_serial); found != deadlines_.end()) {
      erase_at(found->second);
    }
  }
  std::optional<Instant> next() const noexcept {
    if (heap_.empty()) return std::nullopt;
    return heap_.front().when;
  }
  /// Removes and returns the earliest timer if it is due at `now`.
  std::optional<Timer> pop_due(Instant now) {
    if (heap_.empty() || heap_.front().when > now) return std::nullopt;
    Timer timer = heap_.front();
    erase_at(0);
    return timer;
  }
  /// Removes the sleep of `sleeper`, if it has one; true when it had.
  bool cancel_sleep(const detail::Waiter& sleeper) {
    auto found = sleeps_.find(&sleeper);
    if (found == sleeps_.end()) return false;
    erase_at(found->second);
    return true;
  }
  void clear() {
    heap_.clear();
    deadlines_.clear();
    sleeps_.clear();
  }
  bool empty() const noexcept { return heap_.empty(); }
  /// Pending timers: every one may still fire.
  std::size_t size() const noexcept { return heap_.size(); }

 private:
  void push(Timer timer) {
    heap_.push_back(timer);
    place(heap_.size() - 1);
    sift_up(heap_.size() - 1);
  }

  /// Records where heap_[index] now is.
  void place(std::size_t index) {
    const Timer& timer = heap_[index];
    if (timer.sleeper != nullptr) {
      sleeps_[timer.sleeper] = index;
    } else {
      deadlines_[timer.call_serial] = index;
    }
  }

  void forget(const Timer& timer) {
    if (timer.sleeper != nullptr) {
      sleeps_.erase(timer.sleeper);
    } else {
      deadlines_.erase(timer.call_serial);
    }
  }

  void erase_at(std::size_t index) {
    forget(heap_[index]);
    const std::size_t last = heap_.size() - 1;
    if (index != last) {
      heap_[index] = heap_[last];
      heap_.pop_back();
      place(index);
      // The moved timer may belong above or below its new place.
      sift_down(sift_up(index));
    } else {
      heap_.pop_back();
    }
  }

  /// Moves heap_[index] up while it is earlier than its parent; returns where it ends.
  std::size_t sift_up(std::size_t index) {
    while (index > 0) {
      const std::size_t parent = (index - 1) / 2;
      if (!(heap_[index] < heap_[parent])) break;
      swap_at(index, parent);
      index = parent;
    }
    return index;
  }

  void sift_down(std::size_t index) {
    while (true) {
      const std::size_t left = 2 * index + 1;
      if (left >= heap_.size()) return;
      std::size_t earliest = left;
      if (left + 1 < heap_.size() && heap_[left + 1] < heap_[left]) earliest = left + 1;
      if (!(heap_[earliest] < heap_[index])) return;
      swap_at(index, earliest);
      index = earliest;
    }
  }

  void swap_at(std::size_t a, std::size_t b) {
    std::swap(heap_[a], heap_[b]);
    place(a);
    place(b);
  }

  std::vector<Timer> heap_;
  /// Where each pending call deadline is in heap_, by call serial.
  std::unordered_map<std::uint64_t, std::size_t> deadlines_;
  /// Where each pending sleep is in heap_, by its task's awaiter.
  std::unordered_map<const detail::Waiter*, std::size_t> sleeps_;
  std::uint64_t next_order_ = 0;
};

}  // namespace mk::runtime
