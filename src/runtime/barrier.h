// The asymmetric barrier pair of the sleep/wake handshake.
//
// A kernel going to sleep stores "sleeping", then loads its channels; a sender stores a
// message, then loads "sleeping". Without a full barrier on both sides each could miss the
// other's store (store buffering), and the message would wait for the next wakeup. The
// sender's side is the fast path, so it gets only a compiler barrier (light_barrier) and the
// sleeper pays for both with membarrier (heavy_barrier), which runs a full barrier on every
// thread that could be a sender and is running at that moment: the threads of this process
// (MEMBARRIER_CMD_PRIVATE_EXPEDITED) when kernels are threads, the threads of every kernel
// process (MEMBARRIER_CMD_GLOBAL_EXPEDITED, each process registered) when kernels are processes.
//
// Linux runs membarrier under one mutex, so kernels going idle together would queue there, each
// paying a membarrier of its own. They share them instead (heavy_barrier): a sleeper's flags
// are covered by any membarrier that *began* after they were visible, whoever ran it, once that
// membarrier has *finished*. So a sleeper that finds another kernel of its process inside
// membarrier waits for it to finish (spinning briefly, then in a futex), and runs one of its own
// only when the one it waited for began too early to cover it. Why that is enough is argued at
// heavy_barrier (barrier.cc); the sender's side is unchanged.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sanitizer.h"

namespace mk::runtime {

/// How the two barriers are made in this process.
enum class BarrierMode : unsigned char {
  /// Not chosen yet: init_barriers or init_process_barriers has not run.
  unset,
  /// membarrier: the sleeper's system call stands in for the sender's fence.
  membarrier,
  /// Both sides take a seq_cst read-modify-write of one word of this process: what
  /// ThreadSanitizer can see, for kernels that are threads of one process.
  shared_word,
  /// Both sides take a seq_cst fence: for kernels in different processes without membarrier.
  fence,
};

/// Chooses the barriers for kernels that are threads of this process, once:
/// MEMBARRIER_CMD_PRIVATE_EXPEDITED, else (old kernel, seccomp, or ThreadSanitizer, which
/// cannot see membarrier's ordering) the shared word, with one log line for the first case.
void init_barriers();

/// Chooses the barriers of a kernel process (called in it, before it runs its kernel):
/// MEMBARRIER_CMD_GLOBAL_EXPEDITED after registering this process for it, else fences on
/// both sides (one log line). Replaces what this process inherited from the one that forked it.
void init_process_barriers();

namespace barrier_state {
/// Written by init_barriers or init_process_barriers before any kernel runs in this process.
extern BarrierMode mode;
/// The membarrier command heavy_barrier issues in mode `membarrier`.
extern int membarrier_command;
/// The word both sides update in mode `shared_word`.
extern std::atomic<unsigned> fallback_word;
/// Membarriers of this process begun and finished, numbered from 1 (finished: the number of
/// the last one that returned).
extern std::atomic<std::uint64_t> membarriers_started;
extern std::atomic<std::uint64_t> membarriers_finished;
/// 0 when no thread of this process runs a shared membarrier, 1 when one does, 2 when one does
/// and others wait for it in a futex on this word.
extern std::atomic<std::uint32_t> membarrier_busy;
}  // namespace barrier_state

/// The fast side: between a store that publishes work and the load of "sleeping".
inline void light_barrier() noexcept {
  switch (barrier_state::mode) {
    case BarrierMode::membarrier:
      std::atomic_signal_fence(std::memory_order_seq_cst);
      return;
    case BarrierMode::shared_word:
      barrier_state::fallback_word.fetch_add(1, std::memory_order_seq_cst);
      return;
    case BarrierMode::unset:
    case BarrierMode::fence:
      std::atomic_thread_fence(std::memory_order_seq_cst);
      return;
  }
}

/// The slow side: between storing "sleeping" and re-checking for work. With membarrier, shared
/// with the other kernels of this process that go idle at the same moment.
void heavy_barrier() noexcept;

/// heavy_barrier's membarrier mode once the caller's stores are visible (a seq_cst fence) and
/// it read `seen` = membarriers_started: returns once a membarrier numbered above `seen` has
/// finished, running it itself when none is under way. Returns true when it ran one itself.
bool share_membarrier(std::uint64_t seen) noexcept;

}  // namespace mk::runtime
