// Descriptors a kernel process keeps when it closes what it inherited from the program.
#pragma once

#include <vector>

namespace mk::runtime {

/// Kernel processes forked from now on keep `fd` open (it names memory they map later:
/// a capability pool's memfd). Thread-safe.
void keep_in_kernel_processes(int fd);
/// Undoes keep_in_kernel_processes(fd) for kernel processes forked from now on.
void forget_in_kernel_processes(int fd);
/// The descriptors kept, for a kernel process that has just been forked.
std::vector<int> kept_descriptors();

}  // namespace mk::runtime
