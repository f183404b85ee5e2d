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
bool membarrier_in_use = false;
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
    if (kThreadSanitizer) return;
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0) {
      barrier_state::membarrier_in_use = true;
      return;
    }
    log_line(std::string("membarrier(PRIVATE_EXPEDITED) unavailable (") + std::strerror(errno) +
             "); senders and sleepers both take a full barrier");
  });
}

void heavy_barrier() noexcept {
  if (barrier_state::membarrier_in_use) {
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  } else {
    barrier_state::fallback_word.fetch_add(1, std::memory_order_seq_cst);
  }
}

}  // namespace mk::runtime
