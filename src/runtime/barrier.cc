#include "runtime/barrier.h"

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
  // (the one it inherited says "done" for the process that forked it).
  if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0) {
    barrier_state::membarrier_command = MEMBARRIER_CMD_GLOBAL_EXPEDITED;
    barrier_state::mode = BarrierMode::membarrier;
    return;
  }
  barrier_state::mode = BarrierMode::fence;
  log_line(std::string("membarrier(GLOBAL_EXPEDITED) unavailable (") + std::strerror(errno) +
           "); senders and sleepers both take a full fence");
}

void heavy_barrier() noexcept {
  switch (barrier_state::mode) {
    case BarrierMode::membarrier:
      membarrier(barrier_state::membarrier_command);
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
