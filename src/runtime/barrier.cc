#include "runtime/barrier.h"

#include <linux/futex.h>
#include <linux/membarrier.h>
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
std::atomic<std::uint64_t> membarriers_started{0};
std::atomic<std::uint64_t> membarriers_finished{0};
std::atomic<std::uint32_t> membarrier_busy{0};
}  // namespace barrier_state

namespace {

long membarrier(int command) {
  return ::syscall(SYS_membarrier, command, 0, 0);
}

long futex(std::atomic<std::uint32_t>& word, int op, std::uint32_t value) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op | FUTEX_PRIVATE_FLAG,
                   value, nullptr, nullptr, 0);
}

/// Spins of a sleeper waiting for another's membarrier before it blocks: a membarrier takes a
/// few microseconds, about what these pauses take, and blocking costs a context switch.
constexpr unsigned kSpinsBeforeBlocking = 256;

inline void cpu_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
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
  barrier_state::membarrier_busy.store(0);
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

// Why a membarrier another thread began after `seen` covers the caller. The caller stored its
// flags, took a seq_cst fence, then read membarriers_started (= seen). The membarrier numbered
// n > seen was begun by a seq_cst fetch_add that read a value >= seen, so it follows the
// caller's read in the single order of seq_cst operations, and with it the caller's fence: the
// flags were visible to every thread before that membarrier entered the OS. membarrier then
// makes every running thread of the process (of every registered process, GLOBAL_EXPEDITED)
// pass a full barrier between its start and its return; a thread that is not running passes
// one when it is switched in. Take a sender that publishes work, then loads a flag of the
// caller's. If its full barrier came before its load, the load sees the flag (visible since
// before the membarrier began), and the sender wakes the caller. If it came after its load, it
// came after its store too, so the store is visible to the thread that ran the membarrier when
// the call returns; that thread's release store of membarriers_finished = n, which the caller
// reads with acquire before its re-check, carries it on to the caller, whose re-check then sees
// the work. Either way no work waits for a wake-up that never comes, exactly as when the
// caller runs the membarrier itself; a membarrier begun at or before `seen` may have begun
// before the flags were visible and proves nothing, so the caller waits for a later one.
bool share_membarrier(std::uint64_t seen) noexcept {
  using barrier_state::membarrier_busy;
  using barrier_state::membarriers_finished;
  using barrier_state::membarriers_started;
  unsigned spins = 0;
  // Acquire: what the membarrier that finished ordered is ordered before the caller's re-check.
  while (membarriers_finished.load(std::memory_order_acquire) <= seen) {
    std::uint32_t free = 0;
    // Acquire on taking, as a lock.
    if (membarrier_busy.compare_exchange_strong(free, 1, std::memory_order_acquire)) {
      bool ran = false;
      if (membarriers_finished.load(std::memory_order_acquire) <= seen) {
        // Seq_cst: the argument above needs this increment in the single order.
        const std::uint64_t number = membarriers_started.fetch_add(1) + 1;
        membarrier(barrier_state::membarrier_command);
        // Release: whoever reads the number sees everything this membarrier ordered.
        membarriers_finished.store(number, std::memory_order_release);
        ran = true;
      }
      // Release: as unlocking; a 2 says some thread waits in the futex.
      if (membarrier_busy.exchange(0, std::memory_order_release) == 2) {
        futex(membarrier_busy, FUTEX_WAKE, INT32_MAX);
      }
      return ran;
    }
    // Another thread is inside membarrier. Kernels may share cores, so after a short spin the
    // wait gives the CPU away until that thread is done.
    if (++spins < kSpinsBeforeBlocking) {
      cpu_pause();
      continue;
    }
    std::uint32_t held = 1;
    // Relaxed: the futex only blocks; the loop's acquire load decides.
    if (free == 2 || membarrier_busy.compare_exchange_strong(held, 2, std::memory_order_relaxed) ||
        held == 2) {
      futex(membarrier_busy, FUTEX_WAIT, 2);
    }
  }
  return false;
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
