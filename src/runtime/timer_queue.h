// A kernel's timers: sleeping tasks and call deadlines, earliest first.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <queue>
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

/// A min-heap of timers. Cancelled call deadlines stay until due and are then ignored, which
/// keeps cancellation free; a cancelled sleep is removed (cancel_sleep), so that it no longer
/// counts as the kernel's next deadline.
class TimerQueue {
 public:
  void add_sleep(Instant when, detail::Waiter& sleeper) {
    heap_.push(Timer{when, next_order_++, &sleeper, 0, 0, 0, 0});
  }
  void add_deadline(Instant when, std::uint32_t call_id, std::uint64_t call_serial,
                    MessageType type, KernelId to) {
    heap_.push(Timer{when, next_order_++, nullptr, call_id, call_serial, type, to});
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
    return timer;
  }
  /// Removes the sleep of `sleeper`, if it has one; true when it had.
  bool cancel_sleep(const detail::Waiter& sleeper) {
    auto& timers = heap_.timers();
    const auto before = timers.size();
    std::erase_if(timers, [&](const Timer& timer) { return timer.sleeper == &sleeper; });
    if (timers.size() == before) return false;
    std::make_heap(timers.begin(), timers.end(), std::greater<>());
    return true;
  }
  void clear() { heap_ = {}; }
  bool empty() const noexcept { return heap_.empty(); }

 private:
  /// The standard heap, with its container reachable for cancel_sleep.
  struct Heap : std::priority_queue<Timer, std::vector<Timer>, std::greater<>> {
    std::vector<Timer>& timers() noexcept { return c; }
  };
  Heap heap_;
  std::uint64_t next_order_ = 0;
};

}  // namespace mk::runtime
