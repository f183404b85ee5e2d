// The descriptors kernel processes keep: a set under a mutex. A kernel process is forked while
// the program runs one thread (process isolation requires it), so no other thread holds the
// mutex across the fork.
#include "runtime/kept_descriptors.h"

#include <algorithm>
#include <mutex>

namespace mk::runtime {

namespace {

struct Kept {
  std::mutex mutex;
  std::vector<int> fds;
};

Kept& kept() {
  static Kept instance;
  return instance;
}

}  // namespace

void keep_in_kernel_processes(int fd) {
  Kept& all = kept();
  std::lock_guard lock(all.mutex);
  all.fds.push_back(fd);
}

void forget_in_kernel_processes(int fd) {
  Kept& all = kept();
  std::lock_guard lock(all.mutex);
  auto at = std::find(all.fds.begin(), all.fds.end(), fd);
  if (at != all.fds.end()) all.fds.erase(at);
}

std::vector<int> kept_descriptors() {
  Kept& all = kept();
  std::lock_guard lock(all.mutex);
  return all.fds;
}

}  // namespace mk::runtime
