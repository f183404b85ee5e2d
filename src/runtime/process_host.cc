#include "runtime/process_host.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <utility>

#include "runtime/kernel_process.h"
#include "runtime/listed_threads.h"
#include "runtime/log.h"
#include "runtime/sanitizer.h"
#include "runtime/wake_word.h"

namespace mk::runtime {

namespace {

/// How long a stopping kernel process gets to finish before it is killed.
constexpr auto kStopGrace = std::chrono::seconds(10);
/// How long one look at the control socket and the pidfds blocks, so that a waiter re-checks
/// its condition (and a deadline) at least this often.
constexpr auto kPumpSlice = std::chrono::milliseconds(100);

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_kill(int pidfd) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0));
}

/// invalid_argument when the program runs threads besides the calling one: fork copies only the
/// caller, with every lock another thread holds still held.
std::optional<Error> refuse_threads(const char* what) {
  // ThreadSanitizer keeps a thread of its own once any other thread has run; it holds none of
  // the locks a kernel process takes.
  const std::size_t allowed = kThreadSanitizer ? 2 : 1;
  const std::size_t threads = listed_threads();
  if (threads <= allowed) return std::nullopt;
  return error(Errc::invalid_argument,
               std::string(what) +
                   ": isolation processes forks a process per kernel, which needs the program "
                   "to run a single thread, and this one runs " +
                   std::to_string(threads) +
                   " (boot, and add kernels, before starting threads; or use isolation threads)");
}

std::string describe_exit(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return "exited with status " + std::to_string(info.si_status);
  const char* name = ::strsignal(info.si_status);
  return "killed by signal " + std::to_string(info.si_status) + " (" +
         (name != nullptr ? name : "unknown") + ")";
}

}  // namespace

ProcessHost::ProcessHost(BootPlan plan, const Skb& skb, std::function<Result<void>(Kernel&)> setup)
    : plan_(std::move(plan)), skb_(skb), setup_(std::move(setup)), self_(::getpid()) {
  // Never reallocated: a forked kernel's launch points into the host's tables.
  children_.reserve(plan_.capacity);
}

ProcessHost::~ProcessHost() {
  (void)shutdown();
  if (wake_words_ != nullptr) ::munmap(wake_words_, plan_.capacity * sizeof(WakeWord));
}

Result<std::unique_ptr<ProcessHost>> ProcessHost::boot(BootPlan plan, const Skb& skb,
                                                       std::function<Result<void>(Kernel&)> setup) {
  if (auto refused = refuse_threads("System::boot")) return std::move(*refused);
  auto host = std::unique_ptr<ProcessHost>(new ProcessHost(std::move(plan), skb, std::move(setup)));
  auto socket = make_control_socket();
  if (!socket) return std::move(socket).error();
  host->socket_ = *socket;
  // The doorbells' futex words, one per kernel the System may ever have, in memory every
  // kernel process maps: made before any fork, so kernels forked later (add_kernel) have it
  // too, at the same address.
  void* words = ::mmap(nullptr, host->plan_.capacity * sizeof(WakeWord), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (words == MAP_FAILED) {
    return error(Errc::io_error, std::string("doorbell memory: mmap: ") + std::strerror(errno));
  }
  host->wake_words_ = static_cast<WakeWord*>(words);
  for (std::size_t i = 0; i < host->plan_.capacity; ++i)
    new (&host->wake_words_[i]) WakeWord();
  Lock lock(host->mutex_);
  std::optional<Error> failure;
  // Every kernel's sockets before any fork: each kernel process starts with all of them.
  for (KernelId id = 0; id < host->plan_.cores.size() && !failure; ++id) {
    if (auto made = host->add_endpoints(); !made) failure = std::move(made).error();
  }
  for (KernelId id = 0; id < host->children_.size() && !failure; ++id) {
    if (auto forked = host->fork_kernel(id); !forked) failure = std::move(forked).error();
  }
  for (KernelId id = 0; id < host->children_.size() && !failure; ++id) {
    if (auto started = host->send_start(lock, id); !started) failure = std::move(started).error();
  }
  if (!failure) {
    host->wait_for(
        lock,
        [&] {
          return std::all_of(host->children_.begin(), host->children_.end(), [](const Child& c) {
            return c.state != State::starting || c.setup_failure || c.pidfd < 0;
          });
        },
        std::nullopt);
    for (KernelId id = 0; id < host->children_.size() && !failure; ++id) {
      const Child& child = host->children_[id];
      if (child.setup_failure) {
        failure =
            error(child.setup_failure->code, "kernel " + std::to_string(id) +
                                                 ": setup failed: " + child.setup_failure->message);
      } else if (child.state != State::running) {
        failure = error(Errc::io_error,
                        "kernel " + std::to_string(id) + ": its process ended while starting");
      }
    }
  }
  if (failure) {
    host->stopping_ = true;
    host->kill_all(lock);
    host->close_all();
    host->shut_down_ = true;
    return std::move(*failure);
  }
  return host;
}

Result<void> ProcessHost::add_endpoints() {
  auto control = make_control_socket();
  if (!control) return std::move(control).error();
  const int eventfd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (eventfd < 0) {
    Error failure = error(Errc::io_error, std::string("eventfd: ") + std::strerror(errno));
    ::close(control->reader);
    ::close(control->writer);
    return failure;
  }
  Child child;
  child.reader = control->reader;
  child.writer = control->writer;
  child.eventfd = eventfd;
  children_.push_back(child);
  return {};
}

Result<void> ProcessHost::fork_kernel(KernelId id) {
  KernelLaunch launch;
  launch.id = id;
  launch.plan = &plan_;
  launch.skb = &skb_;
  launch.setup = &setup_;
  launch.host = self_;
  launch.control_reader = children_[id].reader;
  launch.wake_words = wake_words_;
  launch.host_writer = socket_.writer;
  for (const Child& each : children_) {
    launch.peer_writers.push_back(each.writer);
    launch.peer_eventfds.push_back(each.eventfd);
  }
  const pid_t pid = ::fork();
  if (pid == 0) run_kernel_process(launch);
  Child& made = children_[id];
  // Only the kernel reads its socket.
  ::close(std::exchange(made.reader, -1));
  if (pid < 0) {
    made.state = State::failed;
    return error(Errc::io_error,
                 "kernel " + std::to_string(id) + ": fork: " + std::strerror(errno));
  }
  made.pid = pid;
  made.pidfd = pidfd_open(pid);
  if (made.pidfd < 0) {
    Error failure = error(Errc::io_error,
                          "kernel " + std::to_string(id) + ": pidfd_open: " + std::strerror(errno));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    made.state = State::failed;
    return failure;
  }
  return {};
}

Result<void> ProcessHost::send_start(Lock& lock, KernelId id) {
  ControlOut out = control_out(ControlKind::start, kHostSender);
  for (const Child& child : children_) {
    StartEntry entry;
    entry.pid = child.pid;
    entry.state = child.state == State::failed    ? StartEntry::failed
                  : child.state == State::offline ? StartEntry::offline
                                                  : StartEntry::running;
    const auto* bytes = reinterpret_cast<const std::byte*>(&entry);
    out.body.insert(out.body.end(), bytes, bytes + sizeof entry);
  }
  return send_to(lock, id, out);
}

template <class Done>
bool ProcessHost::wait_for(Lock& lock, Done done,
                           std::optional<std::chrono::steady_clock::time_point> deadline) {
  while (!done()) {
    const auto now = std::chrono::steady_clock::now();
    if (deadline && now >= *deadline) return false;
    auto slice = kPumpSlice;
    if (deadline) {
      slice = std::min(slice, std::chrono::ceil<std::chrono::milliseconds>(*deadline - now));
    }
    if (pumping_) {
      changed_.wait_for(lock, slice);
    } else {
      pump(lock, slice);
    }
  }
  return true;
}

void ProcessHost::pump(Lock& lock, std::chrono::milliseconds timeout) {
  std::vector<pollfd> fds{{socket_.reader, POLLIN, 0}};
  std::vector<KernelId> owners{0};
  for (KernelId id = 0; id < children_.size(); ++id) {
    if (!alive(id)) continue;
    fds.push_back({children_[id].pidfd, POLLIN, 0});
    owners.push_back(id);
  }
  pumping_ = true;
  lock.unlock();
  std::vector<ControlMessage> messages;
  std::uint64_t rejected = 0;
  if (::poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) > 0 &&
      (fds[0].revents & POLLIN) != 0) {
    while (auto message = receive_control(socket_.reader, rejected)) {
      messages.push_back(std::move(*message));
    }
  }
  lock.lock();
  pumping_ = false;
  rejected_ += rejected;
  // Answers first: a kernel that answered and then died has its answer counted.
  for (ControlMessage& message : messages)
    on_message(message);
  for (std::size_t i = 1; i < fds.size(); ++i) {
    if ((fds[i].revents & (POLLIN | POLLHUP)) != 0) on_exit(owners[i]);
  }
  changed_.notify_all();
}

void ProcessHost::on_message(ControlMessage& message) {
  const ControlHeader& header = message.header;
  const std::uint32_t from = header.from;
  if (from >= children_.size() || children_[from].pid != message.sender_pid) {
    ++rejected_;
    return;
  }
  if (header.kind == ControlKind::started) {
    Child& child = children_[from];
    if (child.state != State::starting) return;
    child.setup_failure = message.failure();
    if (!child.setup_failure) child.state = State::running;
    return;
  }
  auto waiting = pending_.find(header.b);
  if (waiting == pending_.end() || waiting->second.kernel != from ||
      waiting->second.answer != header.kind || waiting->second.result) {
    ++rejected_;
    return;
  }
  if (auto failure = message.failure()) {
    waiting->second.result.emplace(std::move(*failure));
  } else {
    waiting->second.result.emplace(std::move(message.body));
  }
}

void ProcessHost::on_exit(KernelId kernel) {
  Child& child = children_[kernel];
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child.pidfd), &info,
               WEXITED | WNOHANG) != 0 ||
      info.si_pid == 0) {
    return;  // Not yet reapable: seen again at the next look.
  }
  ::close(child.pidfd);
  child.pidfd = -1;
  const std::string how = describe_exit(info);
  if (child.state == State::leaving) {
    child.state = State::offline;
    fail_pending(kernel, error(Errc::closed, "kernel " + std::to_string(kernel) +
                                                 " went offline before answering"));
    return;
  }
  if (stopping_) {
    fail_pending(kernel, error(Errc::shutting_down, "the system shut down"));
    return;
  }
  if (child.state != State::failed && child.state != State::offline) {
    child.state = State::failed;
    log_line("kernel " + std::to_string(kernel) + " (process " + std::to_string(child.pid) + ") " +
             how + "; declared failed");
  }
  fail_pending(kernel, error(Errc::closed,
                             "kernel " + std::to_string(kernel) + " failed: its process " + how));
}

void ProcessHost::fail_pending(KernelId kernel, const Error& failure) {
  for (auto& [number, waiting] : pending_) {
    if (waiting.kernel == kernel && !waiting.result) waiting.result.emplace(failure);
  }
}

Error ProcessHost::not_running(KernelId kernel) const {
  const State state = children_[kernel].state;
  return error(Errc::not_found, "kernel " + std::to_string(kernel) +
                                    (state == State::failed ? " has failed" : " is offline"));
}

Result<void> ProcessHost::send_to(Lock& lock, KernelId kernel, const ControlOut& out) {
  while (true) {
    if (!alive(kernel)) {
      return error(Errc::closed, "kernel " + std::to_string(kernel) + ": its process has ended");
    }
    switch (send_control(children_[kernel].writer, out)) {
      case ControlSend::sent:
        return {};
      case ControlSend::gone:
        return error(Errc::closed, "kernel " + std::to_string(kernel) + " stopped listening");
      case ControlSend::would_block:
        // Its queue is full: let it drain (or die) for a moment.
        wait_for(
            lock, [&] { return !alive(kernel); },
            std::chrono::steady_clock::now() + std::chrono::milliseconds(1));
        break;
    }
  }
}

Result<std::vector<std::byte>> ProcessHost::request(Lock& lock, KernelId kernel, ControlOut out,
                                                    ControlKind answer) {
  const std::uint64_t number = next_request_++;
  out.header.b = number;
  pending_[number] = Pending{kernel, answer, std::nullopt};
  if (auto sent = send_to(lock, kernel, out); !sent) {
    pending_.erase(number);
    return std::move(sent).error();
  }
  wait_for(
      lock, [&] { return pending_[number].result.has_value(); }, std::nullopt);
  Result<std::vector<std::byte>> result = std::move(*pending_[number].result);
  pending_.erase(number);
  return result;
}

std::size_t ProcessHost::size() const {
  std::lock_guard lock(mutex_);
  // As with kernels that are threads: once shut down, no id reaches a kernel.
  return shut_down_ ? 0 : children_.size();
}

bool ProcessHost::is_online(KernelId kernel) {
  Lock lock(mutex_);
  if (shut_down_ || kernel >= children_.size()) return false;
  if (!pumping_) pump(lock, std::chrono::milliseconds(0));
  return children_[kernel].state == State::running;
}

bool ProcessHost::has_failed(KernelId kernel) {
  Lock lock(mutex_);
  if (shut_down_ || kernel >= children_.size()) return false;
  if (!pumping_) pump(lock, std::chrono::milliseconds(0));
  return children_[kernel].state == State::failed;
}

Result<int> ProcessHost::pid_of(KernelId kernel) const {
  std::lock_guard lock(mutex_);
  if (kernel >= children_.size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) + ": no such kernel");
  }
  return static_cast<int>(children_[kernel].pid);
}

Result<CoreId> ProcessHost::core_of(KernelId kernel) const {
  std::lock_guard lock(mutex_);
  if (shut_down_ || kernel >= children_.size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) + ": no such kernel");
  }
  return plan_.cores[kernel];
}

Result<KernelStats> ProcessHost::stats(KernelId kernel) {
  Lock lock(mutex_);
  if (kernel >= children_.size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) + ": no such kernel");
  }
  if (stopping_) return error(Errc::shutting_down, "the system is shutting down");
  if (children_[kernel].state != State::running) return not_running(kernel);
  auto body =
      request(lock, kernel, control_out(ControlKind::stats, kHostSender), ControlKind::stats_reply);
  if (!body) return std::move(body).error();
  KernelStats stats;
  if (body->size() != sizeof stats) {
    return error(Errc::parse_error, "kernel " + std::to_string(kernel) + ": stats of " +
                                        std::to_string(body->size()) + " bytes");
  }
  std::memcpy(&stats, body->data(), sizeof stats);
  return stats;
}

Result<std::vector<std::byte>> ProcessHost::call(KernelId kernel, std::uint32_t task,
                                                 std::vector<std::byte> arguments, bool wait) {
  Lock lock(mutex_);
  if (stopping_) return error(Errc::shutting_down, "the system is shutting down");
  if (kernel >= children_.size()) {
    return error(Errc::not_found, "kernel " + std::to_string(kernel) +
                                      ": no such kernel (the system has " +
                                      std::to_string(children_.size()) + ")");
  }
  if (children_[kernel].state != State::running) return not_running(kernel);
  if (arguments.size() > kMaxControlBody) {
    return error(Errc::too_large, "the task's arguments are " + std::to_string(arguments.size()) +
                                      " bytes encoded, more than the " +
                                      std::to_string(kMaxControlBody) +
                                      " a kernel process accepts");
  }
  ControlOut out = control_out(ControlKind::run, kHostSender);
  out.header.a = task;
  out.body = std::move(arguments);
  if (!wait) {
    if (auto sent = send_to(lock, kernel, out); !sent) return std::move(sent).error();
    return std::vector<std::byte>();
  }
  return request(lock, kernel, std::move(out), ControlKind::run_done);
}

Result<KernelId> ProcessHost::add_kernel(CoreId core) {
  std::lock_guard membership(membership_);
  if (auto refused = refuse_threads("System::add_kernel")) return std::move(*refused);
  Lock lock(mutex_);
  if (stopping_) return error(Errc::shutting_down, "the system is shutting down");
  auto node = plan_added_kernel(plan_, skb_, core);
  if (!node) return std::move(node).error();
  const auto id = static_cast<KernelId>(children_.size());
  if (auto made = add_endpoints(); !made) return std::move(made).error();
  plan_.cores.push_back(core);
  plan_.numa_nodes.push_back(*node);
  if (auto forked = fork_kernel(id); !forked) return std::move(forked).error();
  // The others learn of it first, so that they accept its datagrams once it runs.
  for (KernelId other = 0; other < id; ++other) {
    if (children_[other].state != State::running) continue;
    ControlOut out = control_out(ControlKind::kernel_added, kHostSender);
    out.header.a = id;
    out.header.c = static_cast<std::uint64_t>(children_[id].pid);
    const std::int32_t where = *node;
    const auto* core_bytes = reinterpret_cast<const std::byte*>(&core);
    const auto* node_bytes = reinterpret_cast<const std::byte*>(&where);
    out.body.insert(out.body.end(), core_bytes, core_bytes + sizeof core);
    out.body.insert(out.body.end(), node_bytes, node_bytes + sizeof where);
    out.fds = {children_[id].eventfd, children_[id].writer};
    // A kernel that dies meanwhile needs no news.
    (void)request(lock, other, std::move(out), ControlKind::ack);
  }
  if (auto started = send_start(lock, id); !started) return std::move(started).error();
  wait_for(
      lock,
      [&] {
        const Child& child = children_[id];
        return child.state != State::starting || child.setup_failure || !alive(id);
      },
      std::nullopt);
  Child& child = children_[id];
  if (child.state == State::running) return id;
  const Error failure =
      child.setup_failure
          ? error(child.setup_failure->code, "kernel " + std::to_string(id) +
                                                 ": setup failed: " + child.setup_failure->message)
          : error(Errc::io_error,
                  "kernel " + std::to_string(id) + ": its process ended while starting");
  if (!alive(id)) {
    // Its process ended while starting: a failure, which the others see as one.
    child.state = State::failed;
    return failure;
  }
  // Its setup refused: it never served anything, so it goes offline (as a kernel that is a
  // thread does) and its id stays taken. The others learn first, so that its exit is no
  // failure to them.
  child.state = State::leaving;
  announce_offline(lock, id);
  pidfd_kill(child.pidfd);
  wait_for(
      lock, [&] { return !alive(id); }, std::nullopt);
  children_[id].state = State::offline;
  changed_.notify_all();
  return failure;
}

void ProcessHost::announce_offline(Lock& lock, KernelId kernel) {
  for (KernelId other = 0; other < children_.size(); ++other) {
    if (other == kernel || children_[other].state != State::running) continue;
    ControlOut out = control_out(ControlKind::peer_offline, kHostSender);
    out.header.a = kernel;
    // A kernel that dies meanwhile needs no news.
    (void)request(lock, other, std::move(out), ControlKind::ack);
  }
}

Result<void> ProcessHost::remove_kernel(KernelId kernel) {
  std::lock_guard membership(membership_);
  Lock lock(mutex_);
  if (stopping_) return error(Errc::shutting_down, "the system is shutting down");
  if (kernel >= children_.size()) {
    return error(Errc::not_found,
                 "remove_kernel: kernel " + std::to_string(kernel) + ": no such kernel");
  }
  if (!pumping_) pump(lock, std::chrono::milliseconds(0));
  // A failed kernel is already out of the System; removing it again asks for nothing more.
  if (children_[kernel].state == State::failed) return {};
  if (children_[kernel].state != State::running) {
    return error(Errc::not_found,
                 "remove_kernel: kernel " + std::to_string(kernel) + " is offline");
  }
  const auto online = std::count_if(children_.begin(), children_.end(),
                                    [](const Child& c) { return c.state == State::running; });
  if (online == 1) {
    return error(Errc::invalid_argument,
                 "remove_kernel: kernel " + std::to_string(kernel) + " is the last online kernel");
  }
  children_[kernel].state = State::leaving;
  // The others first: once they have acknowledged, its exit is no failure to them.
  announce_offline(lock, kernel);
  (void)send_to(lock, kernel, control_out(ControlKind::stop, kHostSender));
  if (!wait_for(
          lock, [&] { return !alive(kernel); }, std::chrono::steady_clock::now() + kStopGrace)) {
    log_line("kernel " + std::to_string(kernel) + " did not stop within " +
             std::to_string(kStopGrace.count()) + " s of remove_kernel; killed");
    pidfd_kill(children_[kernel].pidfd);
    wait_for(
        lock, [&] { return !alive(kernel); }, std::nullopt);
  }
  children_[kernel].state = State::offline;
  changed_.notify_all();
  return {};
}

Result<void> ProcessHost::declare_failed(KernelId kernel) {
  Lock lock(mutex_);
  if (stopping_) return error(Errc::shutting_down, "the system is shutting down");
  if (kernel >= children_.size()) {
    return error(Errc::not_found, "declare_failed: no kernel " + std::to_string(kernel));
  }
  Child& child = children_[kernel];
  if (child.state == State::failed) return {};
  if (child.state != State::running) {
    return error(Errc::not_found,
                 "declare_failed: kernel " + std::to_string(kernel) + " was taken offline");
  }
  const auto online = std::count_if(children_.begin(), children_.end(),
                                    [](const Child& c) { return c.state == State::running; });
  if (online == 1) {
    return error(Errc::invalid_argument,
                 "declare_failed: kernel " + std::to_string(kernel) + " is the last online kernel");
  }
  // A failure is made real: the process is killed, and the others see it die.
  child.state = State::failed;
  log_line("kernel " + std::to_string(kernel) + " declared failed: System::declare_failed");
  pidfd_kill(child.pidfd);
  fail_pending(kernel,
               error(Errc::closed, "kernel " + std::to_string(kernel) + " was declared failed"));
  wait_for(
      lock, [&] { return !alive(kernel); }, std::nullopt);
  changed_.notify_all();
  return {};
}

Result<void> ProcessHost::wait_until_failed(KernelId kernel, std::chrono::nanoseconds timeout) {
  Lock lock(mutex_);
  if (kernel >= children_.size()) {
    return error(Errc::not_found, "wait_until_failed: no kernel " + std::to_string(kernel));
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
  wait_for(
      lock,
      [&] {
        const State state = children_[kernel].state;
        return state == State::failed || state == State::offline || stopping_;
      },
      deadline);
  switch (children_[kernel].state) {
    case State::failed:
      return {};
    case State::offline:
      return error(Errc::closed,
                   "kernel " + std::to_string(kernel) + " was taken offline without failing");
    default:
      if (stopping_) return error(Errc::shutting_down, "the system is shutting down");
      return error(Errc::timed_out, "kernel " + std::to_string(kernel) + " has not failed within " +
                                        std::to_string(timeout.count()) + " ns");
  }
}

Result<void> ProcessHost::shutdown() {
  std::lock_guard membership(membership_);
  Lock lock(mutex_);
  if (shut_down_) return {};
  stopping_ = true;
  for (KernelId id = 0; id < children_.size(); ++id) {
    // A full queue or a dead kernel: the grace below ends in a kill either way.
    if (alive(id))
      (void)send_control(children_[id].writer, control_out(ControlKind::stop, kHostSender));
  }
  const bool all_stopped = wait_for(
      lock,
      [&] {
        for (KernelId id = 0; id < children_.size(); ++id) {
          if (alive(id)) return false;
        }
        return true;
      },
      std::chrono::steady_clock::now() + kStopGrace);
  if (!all_stopped) log_line("kernel processes did not stop within the grace period; killed");
  kill_all(lock);
  for (auto& [number, waiting] : pending_) {
    if (!waiting.result) waiting.result.emplace(error(Errc::shutting_down, "the system shut down"));
  }
  close_all();
  shut_down_ = true;
  changed_.notify_all();
  return {};
}

void ProcessHost::kill_all(Lock& lock) {
  for (KernelId id = 0; id < children_.size(); ++id) {
    if (alive(id)) pidfd_kill(children_[id].pidfd);
  }
  wait_for(
      lock,
      [&] {
        for (KernelId id = 0; id < children_.size(); ++id) {
          if (alive(id)) return false;
        }
        return true;
      },
      std::nullopt);
}

void ProcessHost::close_all() {
  for (Child& child : children_) {
    if (child.reader >= 0) ::close(std::exchange(child.reader, -1));
    if (child.writer >= 0) ::close(std::exchange(child.writer, -1));
    if (child.eventfd >= 0) ::close(std::exchange(child.eventfd, -1));
    if (child.pidfd >= 0) ::close(std::exchange(child.pidfd, -1));
  }
  if (socket_.reader >= 0) ::close(std::exchange(socket_.reader, -1));
  if (socket_.writer >= 0) ::close(std::exchange(socket_.writer, -1));
}

}  // namespace mk::runtime
