// A kernel's timers: sleeping tasks and call deadlines, earliest first.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <queue>
#include <unordered_set>
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

  bool operator>(const Timer& other) const noexcept {
    return when != other.when ? when > other.when : order > other.order;
  }
};

/// A min-heap of timers. A call deadline is cancelled when its call ends (disarm): it may stay
/// buried in the heap, but it is dropped before it can become the earliest, so next() is
/// always a live timer and an idle kernel never arms a wake-up for a finished call. A
/// cancelled sleep is removed at once (cancel_sleep).
class TimerQueue {
 public:
  void add_sleep(Instant when, detail::Waiter& sleeper) {
    heap_.push(Timer{when, next_order_++, &sleeper, 0, 0, 0, 0});
  }
  void add_deadline(Instant when, std::uint32_t call_id, std::uint64_t call_serial,
                    MessageType type, KernelId to) {
    heap_.push(Timer{when, next_order_++, nullptr, call_id, call_serial, type, to});
    armed_.insert(call_serial);
  }
  /// Cancels the deadline of the call with `call_serial`, if it has one still pending.
  void disarm(std::uint64_t call_serial) {
    if (armed_.erase(call_serial) != 0) drop_cancelled();
  }
  std::optional<Instant> next() const noexcept {
    if (heap_.empty()) return std::nullopt;
    return heap_.top().when;
  }
  /// Removes and returns the earliest timer if it is due at `now`.
  std::optional<Timer> pop_due(Instant now) {
    if (heap_.empty() || heap_.top().when > now) return std::nullopt;
    Timer timer = heap_.top();
    heap_.pop();
    if (timer.sleeper == nullptr) armed_.erase(timer.call_serial);
    drop_cancelled();
    return timer;
  }
  /// Removes the sleep of `sleeper`, if it has one; true when it had.
  bool cancel_sleep(const detail::Waiter& sleeper) {
    auto& timers = heap_.timers();
    const auto before = timers.size();
    std::erase_if(timers, [&](const Timer& timer) { return timer.sleeper == &sleeper; });
    if (timers.size() == before) return false;
    std::make_heap(timers.begin(), timers.end(), std::greater<>());
    drop_cancelled();
    return true;
  }
  void clear() {
    heap_ = {};
    armed_.clear();
  }
  bool empty() const noexcept { return heap_.empty(); }
  /// Timers in the heap, cancelled deadlines not yet dropped included.
  std::size_t size() const noexcept { return heap_.size(); }

 private:
  /// The standard heap, with its container reachable for cancel_sleep.
  struct Heap : std::priority_queue<Timer, std::vector<Timer>, std::greater<>> {
    std::vector<Timer>& timers() noexcept { return c; }
  };
  /// Keeps the earliest timer a live one.
  void drop_cancelled() {
    while (!heap_.empty() && heap_.top().sleeper == nullptr &&
           !armed_.contains(heap_.top().call_serial)) {
      heap_.pop();
    }
  }

  Heap heap_;
  /// Serials of the calls whose deadlines are pending: in the heap and not cancelled.
  std::unordered_set<std::uint64_t> armed_;
  std::uint64_t next_order_ = 0;
};

}  // namespace mk::runtime
