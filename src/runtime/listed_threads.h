// How many threads this process runs, counted the way the kernel lists them.
#pragma once

#include <dirent.h>

#include <cstddef>

namespace mk::runtime {

/// Threads of this process, as /proc/self/task lists them: what fork's single-thread check
/// and a probe waiting for its threads to be gone both count.
inline std::size_t listed_threads() {
  std::size_t count = 0;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') ++count;
    }
    ::closedir(dir);
  }
  return count;
}

}  // namespace mk::runtime
