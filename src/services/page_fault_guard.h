// The page-fault guard behind VSpace::load and VSpace::store: a copy that returns the address
// of a fault in a registered window instead of dying of it, and a SIGSEGV/SIGBUS handler that
// leaves every other fault to whoever handled it before mk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "mk/result.h"

namespace mk::services {

/// The most windows one process registers at a time.
inline constexpr std::size_t kMaxFaultWindows = 64;

/// Makes [base, base + size) a window: faults there inside guarded_copy are returned, and faults
/// there anywhere else are reported on stderr before the process stops as it would have without
/// mk. The first call installs the SIGSEGV and SIGBUS handler, chained to the ones in place
/// then. Windows are plain memory, so a forked child has its parent's. Errors:
/// invalid_argument (size 0, a range past the end of the address space, or one overlapping a
/// window), full (kMaxFaultWindows windows), io_error (sigaction refused).
Result<void> register_window(std::uintptr_t base, std::size_t size);

/// Forgets the window that starts at `base`: its faults are no longer mk's. A fault being
/// handled on another thread at the same time may still see it. Errors: not_found (no window
/// starts there).
Result<void> unregister_window(std::uintptr_t base);

/// A fault guarded_copy stopped at.
struct GuardedFault {
  std::uintptr_t address = 0;  ///< The address the faulting access touched.
  bool write = false;          ///< The copy's `store`: true when it wrote into a window.
};

/// Copies `n` bytes from `src` to `dst`. If an access faults (SIGSEGV or SIGBUS) at an address
/// inside a window, returns that address instead, with `store` as its write flag; the bytes
/// before it may have been copied. A fault outside every window is not recovered. Not to be
/// called from a signal handler (one recovery point per thread).
std::optional<GuardedFault> guarded_copy(void* dst, const void* src, std::size_t n,
                                         bool store) noexcept;

}  // namespace mk::services
