#include "runtime/barrier.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include "runtime/log.h"

namespace mk::runtime {

namespace barrier_state {
BarrierMode mode = BarrierMode::unset;
int membarrier_command = 0;
std::atomic<unsigned> fallback_word{0};
std::atomic<bool> membarrier_busy{false};
std::atomic<std::uint64_t> membarriers_started{0};
std::atomic<std::uint64_t> membarriers_finished{0};
}  // namespace barrier_state

namespace {

long membarrier(int command) {
  return ::syscall(SYS_membarrier, command, 0, 0);
}

}  // namespace

void init_barriers() {
  static std::once_flag once;
  std::call_once(once, [] {
    barrier_state::mode = BarrierMode::shared_word;
    if (kThreadSanitizer) return;
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0) {
      barrier_state::membarrier_command = MEMBARRIER_CMD_PRIVATE_EXPEDITED;
      barrier_state::mode = BarrierMode::membarrier;
      return;
    }
    log_line(std::string("membarrier(PRIVATE_EXPEDITED) unavailable (") + std::strerror(errno) +
             "); senders and sleepers both take a full barrier");
  });
}

void init_process_barriers() {
  // A kernel process is single-threaded and set up once, before its kernel runs: no once_flag
  // (the one it inherited says "done" for the process that forked it). Nor is anything of the
  // forking process's membarriers in flight here.
  barrier_state::membarrier_busy.store(false);
  barrier_state::membarriers_started.store(0);
  barrier_state::membarriers_finished.store(0);
  if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0) {
    barrier_state::membarrier_command = MEMBARRIER_CMD_GLOBAL_EXPEDITED;
    barrier_state::mode = BarrierMode::membarrier;
    return;
  }
  barrier_state::mode = BarrierMode::fence;
  log_line(std::string("membarrier(GLOBAL_EXPEDITED) unavailable (") + std::strerror(errno) +
           "); senders and sleepers both take a full fence");
}

void share_membarrier(std::uint64_t seen) noexcept {
  using barrier_state::membarrier_busy;
  using barrier_state::membarriers_finished;
  using barrier_state::membarriers_started;
  unsigned spins = 0;
  // Acquire: what the barrier that finished ordered is ordered before the caller's re-check.
  while (membarriers_finished.load(std::memory_order_acquire) <= seen) {
    // Relaxed look first, so waiters do not bounce the line while one holds it; acquire on
    // taking, as a lock.
    if (!membarrier_busy.load(std::memory_order_relaxed) &&
        !membarrier_busy.exchange(true, std::memory_order_acquire)) {
      if (membarriers_finished.load(std::memory_order_acquire) <= seen) {
        // Seq_cst: a sleeper that read the count before this increment is covered by this
        // membarrier (its flags were visible before it read the count).
        const std::uint64_t number = membarriers_started.fetch_add(1) + 1;
        membarrier(barrier_state::membarrier_command);
        // Release: waiters that see the number see everything this barrier ordered.
        membarriers_finished.store(number, std::memory_order_release);
      }
      // Release: as unlocking.
      membarrier_busy.store(false, std::memory_order_release);
      return;
    }
    // Another thread is inside membarrier; it takes microseconds. Kernels may share cores, so
    // the wait gives the CPU away after a short spin.
    if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      sched_yield();
    }
  }
}

void heavy_barrier() noexcept {
  switch (barrier_state::mode) {
    case BarrierMode::membarrier:
      // The caller's flag stores are visible to every thread before it reads which
      // membarriers have begun: one that begins later orders every sender against them.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      share_membarrier(barrier_state::membarriers_started.load());
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

}  // namespace mk::runtime
