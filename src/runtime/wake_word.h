// The futex word of a kernel's doorbell: how a futex wake reaches a kernel.
//
// The word says where its kernel is: awake (0), notified while awake (1), or asleep or about to
// block on the word (2). The sleeper moves it from 0 to 2 before it blocks, and back to 0 when
// it wakes; a waker sets it to 1 and makes the futex system call only when it found 2, so a
// notification of a kernel that is awake costs one atomic exchange. A notification that finds
// the kernel awake makes its next wait return at once (the 1 stays until that wait takes it).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "mk/executor.h"
#include "runtime/doorbell.h"

namespace mk::runtime {

/// The states of a WakeWord.
inline constexpr std::uint32_t kWordAwake = 0;
inline constexpr std::uint32_t kWordNotified = 1;
inline constexpr std::uint32_t kWordAsleep = 2;

/// One kernel's futex word, on lines of its own: in its waiter when kernels are threads, in
/// memory every kernel process maps (the doorbell memory the host makes before it forks) when
/// they are processes.
struct alignas(kSeparation) WakeWord {
  std::atomic<std::uint32_t> state{kWordAwake};
};

/// futex(2) on `word`: FUTEX_WAKE of one waiter, or FUTEX_WAIT_BITSET while it holds `value`
/// until the absolute CLOCK_MONOTONIC `deadline` (null: no deadline). `shared`: the word is in
/// memory several processes map, so the futex must not be private to this process.
inline long futex_wake(WakeWord& word, bool shared) noexcept {
  const int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word.state), op, 1, nullptr,
                   nullptr, 0);
}
inline long futex_wait(WakeWord& word, std::uint32_t value, const timespec* deadline,
                       bool shared) noexcept {
  const int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word.state), op, value, deadline,
                   nullptr, FUTEX_BITSET_MATCH_ANY);
}

/// The waker's side of a WakeWord: any thread, any process that maps the word.
inline void notify_word(WakeWord& word, bool shared) noexcept {
  // Acq_rel: the sleeper's exchange back to kWordAwake takes this notification; what the
  // waker published before it is ordered by the doorbell's barrier pair anyway.
  if (word.state.exchange(kWordNotified, std::memory_order_acq_rel) == kWordAsleep) {
    futex_wake(word, shared);
  }
}

/// The sleeper, before it blocks: true when it may block (the word now says asleep), false
/// when a notification came since it last woke.
inline bool announce_block(WakeWord& word) noexcept {
  std::uint32_t expected = kWordAwake;
  // Acq_rel: on failure it reads a notification, whose work the caller looks for next.
  return word.state.compare_exchange_strong(expected, kWordAsleep, std::memory_order_acq_rel);
}

/// The sleeper, once awake (for any reason): takes whatever notification came meanwhile.
inline void end_block(WakeWord& word) noexcept {
  // Acquire: pairs with notify_word's exchange.
  word.state.exchange(kWordAwake, std::memory_order_acquire);
}

/// Wakes a kernel of another process through its WakeWord in shared memory.
class WordNotifier final : public Notifier {
 public:
  WordNotifier(WakeWord& word, bool shared) noexcept : word_(word), shared_(shared) {}
  void notify() noexcept override { notify_word(word_, shared_); }

 private:
  WakeWord& word_;
  bool shared_;
};

}  // namespace mk::runtime
