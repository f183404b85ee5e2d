// The asymmetric barrier pair of the sleep/wake handshake.
//
// A kernel going to sleep stores "sleeping", then loads its channels; a sender stores a
// message, then loads "sleeping". Without a full barrier on both sides each could miss the
// other's store (store buffering), and the message would wait for the next wakeup. The
// sender's side is the fast path, so it gets only a compiler barrier (light_barrier) and the
// sleeper pays for both with membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) (heavy_barrier),
// which runs a full barrier on every thread of the process that is running at that moment.
#pragma once

#include <atomic>

#include "runtime/sanitizer.h"

namespace mk::runtime {

/// Registers the process for expedited membarrier, once. On failure (old kernel, seccomp) or
/// under ThreadSanitizer, which cannot see membarrier's ordering, both barriers fall back to
/// real synchronisation on both sides, with one log line for the first case.
void init_barriers();

namespace barrier_state {
/// True when membarrier is registered and in use. Written once by init_barriers, before any
/// kernel thread exists.
extern bool membarrier_in_use;
/// The location both sides update in the fallback, so the two sides synchronise through one
/// total order of read-modify-writes that ThreadSanitizer can see.
extern std::atomic<unsigned> fallback_word;
}  // namespace barrier_state

/// The fast side: between a store that publishes work and the load of "sleeping".
inline void light_barrier() noexcept {
  if (barrier_state::membarrier_in_use) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    barrier_state::fallback_word.fetch_add(1, std::memory_order_seq_cst);
  }
}

/// The slow side: between storing "sleeping" and re-checking for work.
void heavy_barrier() noexcept;

}  // namespace mk::runtime
