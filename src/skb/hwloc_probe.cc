#include "skb/hwloc_probe.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "skb/hwloc_probe_protocol.h"

extern char** environ;

namespace mk::detail {
namespace {

// hwloc reads a 64 MiB export in seconds; a probe still busy after this is stuck.
constexpr auto kProbeDeadline = std::chrono::seconds(60);
// How often the caller looks whether the probe ended without writing (it died).
constexpr int kPollMilliseconds = 20;
// The probe's stack is what the caller has left, less this: the caller calls hwloc a few
// frames deeper than where it measures, so an input that only just fits must fail in the probe.
constexpr std::size_t kStackMargin = 64 * 1024;
// Bounds on the probe's stack: room for hwloc on ordinary files, and no more than any thread
// could have.
constexpr std::size_t kMinProbeStack = 64 * 1024;
constexpr std::size_t kMaxProbeStack = std::size_t{1} << 30;

// Bytes of stack the calling thread has left below this frame.
std::size_t remaining_stack() {
  pthread_attr_t attributes;
  if (pthread_getattr_np(pthread_self(), &attributes) != 0) return kMinProbeStack;
  void* low = nullptr;
  std::size_t size = 0;
  pthread_attr_getstack(&attributes, &low, &size);
  pthread_attr_destroy(&attributes);
  // The frame address, not a local's: a sanitizer may keep locals on a heap "fake stack".
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  const auto bottom = reinterpret_cast<std::uintptr_t>(low);
  return here > bottom ? here - bottom : 0;
}

// The probe's path: $MK_HWLOC_PROBE, else where `cmake --install` (or the Debian package) puts
// it, else where the build put it, so a program linked from the build tree runs without one.
std::string probe_path() {
  if (const char* path = std::getenv("MK_HWLOC_PROBE"); path != nullptr && path[0] != '\0') {
    return path;
  }
  if (access(MK_HWLOC_PROBE_INSTALLED_PATH, X_OK) == 0) return MK_HWLOC_PROBE_INSTALLED_PATH;
  return MK_HWLOC_PROBE_PATH;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    return abbrev != nullptr ? fmt::format("died of SIG{}", abbrev)
                             : fmt::format("died of signal {}", sig);
  }
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return "died";
}

// A file descriptor closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// The input in an anonymous in-memory file the probe reads as its stdin: no pipe to keep
// fed, and nothing to block on if the probe dies early.
Result<void> fill(const Fd& file, std::string_view input) {
  std::size_t done = 0;
  while (done < input.size()) {
    const ssize_t n = write(file.get(), input.data() + done, input.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error(Errc::io_error, std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  if (lseek(file.get(), 0, SEEK_SET) != 0) return error(Errc::io_error, std::strerror(errno));
  return {};
}

// Starts the probe with `input` as stdin, `reports` as stdout, /dev/null as stderr (hwloc
// prints banners about bad input; the caller reports one line), no other descriptor, every
// signal at its default action and none blocked.
Result<pid_t> start(ProbeInput kind, const Fd& input, const Fd& reports, std::size_t stack) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, input.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, reports.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t all;
  sigfillset(&all);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  const std::string path = probe_path();
  std::string mode = kind == ProbeInput::xml ? "xml" : "synthetic";
  std::string stack_text = std::to_string(stack);
  char* argv[] = {const_cast<char*>(path.c_str()), mode.data(), stack_text.data(), nullptr};
  // hwloc reads HWLOC_* variables: the probe sees the caller's, so it behaves the same.
  pid_t pid = -1;
  const int failed = posix_spawn(&pid, path.c_str(), &actions, &attributes, argv, environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (failed != 0) {
    return error(Errc::io_error,
                 fmt::format("cannot start mk's hwloc probe '{}' ({}); set MK_HWLOC_PROBE to its "
                             "path",
                             path, std::strerror(failed)));
  }
  return pid;
}

}  // namespace

Result<ProbeVerdict> probe_with_hwloc(ProbeInput kind, std::string_view input,
                                      std::string_view subject) {
  auto fail = [&](Errc code, std::string_view what) {
    return error(code, fmt::format("{}: {}", subject, what));
  };
  const std::size_t stack =
      std::clamp(remaining_stack() > kStackMargin ? remaining_stack() - kStackMargin : 0,
                 kMinProbeStack, kMaxProbeStack);
  Fd file(memfd_create("mk-hwloc-input", MFD_CLOEXEC));
  if (file.get() < 0) {
    return fail(Errc::io_error, fmt::format("cannot hold the input: {}", std::strerror(errno)));
  }
  if (auto filled = fill(file, input); !filled) {
    return fail(Errc::io_error, fmt::format("cannot hold the input: {}", filled.error().message));
  }
  // Close-on-exec: a program another thread starts meanwhile must not hold the pipe open.
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0) {
    return fail(Errc::io_error, fmt::format("cannot make a pipe: {}", std::strerror(errno)));
  }
  Fd from_probe(ends[0]);
  Fd to_caller(ends[1]);
  auto started = start(kind, file, to_caller, stack);
  if (!started) return fail(started.error().code, started.error().message);
  const pid_t pid = *started;
  to_caller.reset();
  file.reset();

  // Reports until end of file, or until the probe is gone: a process forked elsewhere in the
  // meantime may hold a copy of the write end, so end of file alone cannot be waited for.
  ProbeReport reports[2];
  std::size_t bytes = 0;
  bool reaped = false;
  bool timed_out = false;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + kProbeDeadline;
  auto drain = [&](int timeout_ms) {
    pollfd readable{from_probe.get(), POLLIN, 0};
    while (bytes < sizeof reports && poll(&readable, 1, timeout_ms) > 0) {
      const ssize_t n =
          read(from_probe.get(), reinterpret_cast<char*>(reports) + bytes, sizeof reports - bytes);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;  // end of file
      bytes += static_cast<std::size_t>(n);
    }
    return true;
  };
  auto refused = [&] { return bytes >= sizeof(ProbeReport) && reports[0].stage == kProbeRefused; };
  for (;;) {
    if (!drain(kPollMilliseconds) || bytes == sizeof reports || refused()) break;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) {
      // Ended (or reaped by another part of the program): take what it wrote.
      reaped = true;
      if (done < 0) status = -1;
      drain(0);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      // Not reaped yet, so the pid is still the probe's.
      kill(pid, SIGKILL);
      timed_out = true;
      break;
    }
  }
  if (!reaped) {
    while (waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) {
        status = -1;
        break;
      }
    }
  }

  const std::size_t count = bytes / sizeof(ProbeReport);
  if (refused()) return ProbeVerdict{false, reports[0].error_number};
  if (count == 2 && reports[1].stage == kProbeFreed) return ProbeVerdict{true, 0};
  const std::string stage = count == 0 ? "reading" : "freeing";
  if (timed_out) {
    return fail(Errc::parse_error, fmt::format("hwloc was still {} it after {} s; mk refuses it",
                                               stage, kProbeDeadline.count()));
  }
  return fail(Errc::parse_error,
              fmt::format("hwloc {} while {} it; mk refuses it (malformed, or nested deeper "
                          "than hwloc can parse)",
                          status == -1 ? "died" : describe_status(status), stage));
}

}  // namespace mk::detail
