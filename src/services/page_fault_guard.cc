// The page-fault guard: a lock-free table of windows the signal handler reads, a per-thread
// recovery point guarded_copy arms around its copy, and the handler that jumps back to it or
// hands the fault on unchanged.
#include "services/page_fault_guard.h"

#include <fmt/format.h>
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>

namespace mk::services {

namespace {

/// One window; end == 0 marks a free slot. A lookup racing the unregistration and reuse of the
/// same slot may pair one window's base with the other's end: that race is the caller's (its
/// memory is going away), and either answer is one a slightly different timing would give.
struct Window {
  std::atomic<std::uintptr_t> base{0};
  std::atomic<std::uintptr_t> end{0};
};

static_assert(std::atomic<std::uintptr_t>::is_always_lock_free,
              "the signal handler reads windows, so their atomics must be lock-free");

/// Zero-initialized at load time, before any constructor runs, and copied into forked children.
std::array<Window, kMaxFaultWindows> windows;

/// Serializes register_window and unregister_window; the handler never takes it.
std::mutex windows_mutex;

/// Whether `address` lies in a window. Async-signal-safe: lock-free atomic loads only.
bool in_window(std::uintptr_t address) noexcept {
  for (const Window& window : windows) {
    // acquire: pairs with register_window's release store of end, so base is the new window's.
    const std::uintptr_t end = window.end.load(std::memory_order_acquire);
    if (end == 0) continue;
    // relaxed: ordered by the acquire load of end above.
    const std::uintptr_t base = window.base.load(std::memory_order_relaxed);
    if (address >= base && address < end) return true;
  }
  return false;
}

/// The recovery point of one thread. Initial-exec TLS, so that the handler's access never
/// allocates (general-dynamic TLS may, on a thread's first touch).
struct Recovery {
  sigjmp_buf env;
  /// Set only while guarded_copy's copy runs; read by this thread's own signal handler.
  volatile std::sig_atomic_t armed;
  /// The fault address the handler hands back through the jump.
  std::uintptr_t address;
};
thread_local Recovery recovery __attribute__((tls_model("initial-exec")));

/// The SIGSEGV and SIGBUS actions in place before mk's, written once before mk's is installed.
struct sigaction previous_segv;
struct sigaction previous_bus;

const struct sigaction& previous(int signal) noexcept {
  return signal == SIGBUS ? previous_bus : previous_segv;
}

void restore_default(int signal) noexcept {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal, &action, nullptr);
}

/// Writes the line that says a window address faulted outside guarded_copy, with write(2)
/// only: no allocation, no stdio, no locale.
void report_unguarded(std::uintptr_t address) noexcept {
  static constexpr char kHead[] = "mk: page fault at 0x";
  static constexpr char kTail[] =
      " in a VSpace range outside VSpace::load/store; the process stops\n";
  char line[sizeof kHead + 2 * sizeof address + sizeof kTail];
  std::size_t length = 0;
  for (char c : std::string_view(kHead))
    line[length++] = c;
  int shift = 4 * (2 * sizeof address - 1);
  while (shift > 0 && ((address >> shift) & 0xf) == 0)
    shift -= 4;
  for (; shift >= 0; shift -= 4)
    line[length++] = "0123456789abcdef"[(address >> shift) & 0xf];
  for (char c : std::string_view(kTail))
    line[length++] = c;
  for (std::size_t written = 0; written < length;) {
    const ssize_t n = ::write(STDERR_FILENO, line + written, length - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    written += static_cast<std::size_t>(n);
  }
}

/// Hands the signal to the action that was in place before mk's, as the kernel would have run
/// it: with its mask and its SA_NODEFER and SA_RESETHAND. SIG_DFL (and SIG_IGN, which the kernel
/// overrides for a fault) is restored so the faulting access, run again on return, stops the
/// process as it would have without mk; a signal sent by kill() is raised again instead.
void chain(int signal, siginfo_t* info, void* context) noexcept {
  const struct sigaction& action = previous(signal);
  const bool fault = info->si_code > 0;  // SI_USER, SI_QUEUE and SI_TKILL are 0 or below
  if (action.sa_handler == SIG_DFL || action.sa_handler == SIG_IGN) {
    if (action.sa_handler == SIG_IGN && !fault) return;
    restore_default(signal);
    if (!fault) raise(signal);
    return;
  }
  sigset_t mask = action.sa_mask;
  if ((action.sa_flags & SA_NODEFER) == 0) sigaddset(&mask, signal);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  if ((action.sa_flags & SA_RESETHAND) != 0) restore_default(signal);
  if ((action.sa_flags & SA_SIGINFO) != 0) {
    action.sa_sigaction(signal, info, context);
  } else {
    action.sa_handler(signal);
  }
}

void on_fault(int signal, siginfo_t* info, void* context) {
  // The interrupted code's errno, for the handler chained to and for the return.
  const int saved_errno = errno;
  const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
  if (info->si_code <= 0 || !in_window(address)) {
    chain(signal, info, context);
    errno = saved_errno;
    return;
  }
  Recovery& own = recovery;
  if (own.armed != 0) {
    own.armed = 0;
    own.address = address;
    // The mask of the faulting copy: a jump does not restore it, and the handler's may block
    // more than on_fault's sa_mask (ThreadSanitizer runs handlers with every signal blocked).
    pthread_sigmask(SIG_SETMASK, &static_cast<const ucontext_t*>(context)->uc_sigmask, nullptr);
    // Jumps over guarded_copy's copy loop only: no frame with a destructor lies between.
    siglongjmp(own.env, 1);
  }
  report_unguarded(address);
  errno = saved_errno;
  chain(signal, info, context);
  errno = saved_errno;
}

/// Installs on_fault for SIGSEGV and SIGBUS; 0 or the errno of the sigaction that failed.
int install() noexcept {
  if (sigaction(SIGSEGV, nullptr, &previous_segv) != 0) return errno;
  if (sigaction(SIGBUS, nullptr, &previous_bus) != 0) return errno;
  struct sigaction action {};
  action.sa_sigaction = on_fault;
  sigemptyset(&action.sa_mask);
  // SA_NODEFER and an empty sa_mask: chain() then gives the handler it calls exactly the mask
  // the kernel would have, blocking the signal itself only when that handler did not ask for
  // SA_NODEFER (ASan's does). SA_ONSTACK: a stack overflow still reaches a handler that relies
  // on an alternate stack.
  action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  if (sigaction(SIGSEGV, &action, nullptr) != 0) return errno;
  if (sigaction(SIGBUS, &action, nullptr) != 0) return errno;
  return 0;
}

/// A word type the copy may read any bytes as.
using Word __attribute__((may_alias)) = std::uint64_t;

/// The copy, out of line and through volatile accesses so that it stays a loop of plain loads
/// and stores between the arming and disarming of the recovery point (no memcpy call, no
/// reordering past them). Words only where both sides are aligned, so no access straddles a
/// page and a fault's address is the first byte the copy could not reach.
__attribute__((noinline)) void copy_volatile(void* dst, const void* src, std::size_t n) noexcept {
  auto* to = static_cast<volatile unsigned char*>(dst);
  auto* from = static_cast<const volatile unsigned char*>(src);
  const auto misalignment = [](const volatile void* p) {
    return reinterpret_cast<std::uintptr_t>(p) % sizeof(Word);
  };
  if (misalignment(to) == misalignment(from)) {
    for (; n > 0 && misalignment(from) != 0; --n)
      *to++ = *from++;
    auto* to_words = reinterpret_cast<volatile Word*>(to);
    auto* from_words = reinterpret_cast<const volatile Word*>(from);
    for (; n >= sizeof(Word); n -= sizeof(Word))
      *to_words++ = *from_words++;
    to = reinterpret_cast<volatile unsigned char*>(to_words);
    from = reinterpret_cast<const volatile unsigned char*>(from_words);
  }
  for (; n > 0; --n)
    *to++ = *from++;
}

}  // namespace

Result<void> register_window(std::uintptr_t base, std::size_t size) {
  static std::once_flag installed;
  static int install_error = 0;
  std::call_once(installed, [] { install_error = install(); });
  if (install_error != 0) {
    return error(Errc::io_error, fmt::format("sigaction for the page-fault guard: {}",
                                             std::strerror(install_error)));
  }
  if (size == 0 || base > UINTPTR_MAX - size) {
    return error(Errc::invalid_argument,
                 fmt::format("fault window [{:#x}, +{:#x}): empty or past the end of the "
                             "address space",
                             base, size));
  }
  const std::uintptr_t end = base + size;
  std::lock_guard lock(windows_mutex);
  Window* free = nullptr;
  for (Window& window : windows) {
    // relaxed: writers are serialized by windows_mutex, which orders them.
    const std::uintptr_t other_end = window.end.load(std::memory_order_relaxed);
    if (other_end == 0) {
      if (free == nullptr) free = &window;
      continue;
    }
    // relaxed: as above.
    const std::uintptr_t other_base = window.base.load(std::memory_order_relaxed);
    if (base < other_end && other_base < end) {
      return error(Errc::invalid_argument,
                   fmt::format("fault window [{:#x}, {:#x}) overlaps window [{:#x}, {:#x})", base,
                               end, other_base, other_end));
    }
  }
  if (free == nullptr) {
    return error(Errc::full, fmt::format("fault window [{:#x}, {:#x}): all {} windows in use", base,
                                         end, kMaxFaultWindows));
  }
  // relaxed: published by the release store of end below.
  free->base.store(base, std::memory_order_relaxed);
  // release: a handler that sees this end sees the base stored above.
  free->end.store(end, std::memory_order_release);
  return {};
}

Result<void> unregister_window(std::uintptr_t base) {
  std::lock_guard lock(windows_mutex);
  for (Window& window : windows) {
    // relaxed: writers are serialized by windows_mutex.
    if (window.end.load(std::memory_order_relaxed) == 0) continue;
    // relaxed: as above.
    if (window.base.load(std::memory_order_relaxed) != base) continue;
    // relaxed: freeing publishes nothing; a handler that still sees the old end treats the
    // fault as the window's, as it would have a moment earlier.
    window.end.store(0, std::memory_order_relaxed);
    return {};
  }
  return error(Errc::not_found, fmt::format("no fault window starts at {:#x}", base));
}

std::optional<GuardedFault> guarded_copy(void* dst, const void* src, std::size_t n,
                                         bool store) noexcept {
  Recovery& own = recovery;
  // Without the signal mask, which would cost a system call per copy: on_fault restores the
  // mask the copy faulted with, which is this one, before it jumps.
  if (sigsetjmp(own.env, 0) != 0) return GuardedFault{own.address, store};
  own.armed = 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  copy_volatile(dst, src, n);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  own.armed = 0;
  return std::nullopt;
}

}  // namespace mk::services
