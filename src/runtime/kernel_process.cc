// A kernel process: one kernel, alone on the main (and only) thread of a process forked from the
// host. It builds its own view of the System (its fabric: the other kernels' eventfds and
// control sockets, what it has learnt of their state), then runs the kernel loop, watching one
// epoll set for control datagrams and for the death of any other kernel (a pidfd each).
// Control datagrams and deaths become items of the kernel's own inbox, so that they are handled
// inside a turn, exactly like the system messages of kernels that are threads.
#include "runtime/kernel_process.h"

#include <dirent.h>
#include <numa.h>
#include <poll.h>
#include <sched.h>
#include <stdio_ext.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mk/remote.h"
#include "runtime/barrier.h"
#include "runtime/control.h"
#include "runtime/idle_waiter.h"
#include "runtime/kept_descriptors.h"
#include "runtime/kernel_core.h"
#include "runtime/log.h"
#include "runtime/wake_word.h"

namespace mk::runtime {

namespace {

/// Tag of the control socket among the epoll set's entries; the others carry a KernelId.
constexpr std::uint64_t kControlTag = ~std::uint64_t{0};
/// While busy, the kernel looks at its epoll set once every this many turns (a power of two):
/// a control datagram or a death waits at most that long when the kernel never sleeps.
constexpr std::uint32_t kEventCheckTurns = 256;
/// How soon a kernel with control datagrams it could not send yet tries again, when idle.
constexpr auto kControlRetry = std::chrono::milliseconds(1);

class EventfdNotifier final : public Notifier {
 public:
  explicit EventfdNotifier(int fd) noexcept : fd_(fd) {}
  void notify() noexcept override {
    const std::uint64_t one = 1;
    // A failed write means the counter is saturated: a wake-up is pending anyway.
    [[maybe_unused]] ssize_t written = ::write(fd_, &one, sizeof one);
  }

 private:
  int fd_;
};

/// What the kernel's own channel to itself and the boot-time probe need of an executor.
class ProcessExecutor final : public Executor {
 public:
  const Clock& clock() const noexcept override { return clock_; }
  Result<void> start(std::span<Kernel* const>) override { return {}; }
  void join() override {}

 private:
  SteadyClock clock_;
};

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

}  // namespace

class KernelProcess final : public ControlPort {
 public:
  explicit KernelProcess(const KernelLaunch& launch) : launch_(launch), id_(launch.id) {}

  [[noreturn]] void run() noexcept;
  void send(std::uint32_t to, ControlOut out) override;

 private:
  /// A control datagram, handled in a turn.
  class ControlItem;

  void detach();
  Result<void> place();
  Result<void> build();
  Result<void> await_start();
  void loop();
  void check_events();
  void drain_control();
  bool trusted(const ControlMessage& message) const;
  void on_control(ControlMessage message);
  void handle(ControlMessage& message);
  void on_death(KernelId peer);
  Result<void> add_peer(KernelId peer, pid_t pid, int eventfd, int writer, CoreId core, int node);
  void flush_control();
  /// How this kernel wakes kernel `peer`: its eventfd, or its futex word in the doorbell
  /// memory, as the plan's wake mechanism says.
  std::unique_ptr<Notifier> make_peer_notifier(KernelId peer, int eventfd) const;
  void reply(ControlKind kind, std::uint64_t request, std::vector<std::byte> body = {});
  static Task<void> serve_remote(KernelProcess& self, detail::RemoteEntry entry,
                                 std::vector<std::byte> arguments, std::uint64_t request);
  static Task<void> run_setup(KernelProcess& self);
  [[noreturn]] void leave(int status) noexcept;

  KernelCore& core() { return *kernel_->core_; }

  const KernelLaunch& launch_;
  const KernelId id_;
  ProcessExecutor executor_;
  Fabric fabric_;
  std::vector<std::unique_ptr<KernelShared>> peers_;  ///< By KernelId; empty for this kernel.
  std::vector<std::unique_ptr<Notifier>> notifiers_;
  std::vector<int> writers_;  ///< By KernelId.
  std::vector<pid_t> pids_;   ///< By KernelId; 0 until known.
  std::vector<int> pidfds_;   ///< By KernelId; -1 when not watched.
  std::unique_ptr<IdleWaiter> waiter_;
  int epoll_ = -1;
  std::unique_ptr<Kernel> kernel_;
  /// Datagrams that came before the start, handled after it.
  std::vector<ControlMessage> early_;
  /// Datagrams that found their receiver's queue full, by receiver, in order.
  std::map<std::uint32_t, std::deque<ControlOut>> outgoing_;
  std::uint64_t rejected_ = 0;
};

class KernelProcess::ControlItem final : public InboxItem {
 public:
  ControlItem(KernelProcess& process, ControlMessage message)
      : process_(process), message_(std::move(message)) {}
  void deliver(KernelCore&) override { process_.handle(message_); }

 private:
  KernelProcess& process_;
  ControlMessage message_;
};

void KernelProcess::detach() {
  // The host's death takes this process with it: nothing is left behind if the program dies.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != launch_.host) ::_exit(1);
  // Keep only what this kernel uses: the host's other descriptors (its files, other kernels'
  // receiving ends) would otherwise live as long as this process.
  std::vector<int> keep{0, 1, 2, launch_.control_reader, launch_.host_writer};
  keep.insert(keep.end(), launch_.peer_writers.begin(), launch_.peer_writers.end());
  keep.insert(keep.end(), launch_.peer_eventfds.begin(), launch_.peer_eventfds.end());
  const std::vector<int> kept = kept_descriptors();
  keep.insert(keep.end(), kept.begin(), kept.end());
  std::vector<int> doomed;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    const int own = ::dirfd(dir);
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      const int fd = std::atoi(entry->d_name);
      if (fd != own && std::find(keep.begin(), keep.end(), fd) == keep.end()) {
        doomed.push_back(fd);
      }
    }
    ::closedir(dir);
  }
  for (int fd : doomed)
    ::close(fd);
  // What the program had buffered but not written is the program's to write, not this copy's;
  // what this kernel's own code prints is written when it exits (leave).
  __fpurge(stdout);
  __fpurge(stderr);
}

Result<void> KernelProcess::place() {
  const CoreId core = launch_.plan->cores[id_];
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    return error(Errc::io_error, "kernel " + std::to_string(id_) + ": pinning to core " +
                                     std::to_string(core) + " failed: " + std::strerror(errno));
  }
  // Its task frames and the rings it receives on come from its core's node.
  const int node = launch_.plan->numa_nodes[id_];
  if (numa_available() >= 0 && node >= 0) numa_set_preferred(node);
  init_process_barriers();
  return {};
}

Result<void> KernelProcess::build() {
  const BootPlan& plan = *launch_.plan;
  const std::size_t count = plan.cores.size();
  fabric_.cores = plan.cores;
  fabric_.cores.resize(plan.capacity);
  fabric_.numa_nodes = plan.numa_nodes;
  fabric_.numa_nodes.resize(plan.capacity, -1);
  fabric_.kernels.resize(plan.capacity, nullptr);
  fabric_.skb = launch_.skb;
  fabric_.executor = &executor_;
  fabric_.ring_slots = plan.ring_slots;
  fabric_.forced_answer_path = plan.answer_path;
  fabric_.poll_batch = plan.poll_batch;
  fabric_.system_id = plan.system_id;
  fabric_.control = this;
  peers_.resize(plan.capacity);
  notifiers_.resize(plan.capacity);
  writers_.assign(plan.capacity, -1);
  pids_.assign(plan.capacity, 0);
  pidfds_.assign(plan.capacity, -1);

  // A kernel process must also watch its epoll set: make_idle_waiter gives none that cannot.
  auto waiter = make_idle_waiter(
      WakeSource{plan.wake_mechanism, launch_.peer_eventfds[id_], &launch_.wake_words[id_]},
      plan.wait_backend, true);
  if (!waiter) return std::move(waiter).error();
  waiter_ = std::move(*waiter);
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) return error(Errc::io_error, std::string("epoll: ") + std::strerror(errno));
  epoll_event control{};
  control.events = EPOLLIN;
  control.data.u64 = kControlTag;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, launch_.control_reader, &control) != 0) {
    return error(Errc::io_error, std::string("epoll: ") + std::strerror(errno));
  }
  waiter_->watch(epoll_);

  kernel_ = std::unique_ptr<Kernel>(new Kernel(id_, fabric_, executor_.clock()));
  kernel_->set_notifier(*waiter_);
  for (KernelId peer = 0; peer < count; ++peer) {
    if (peer == id_) {
      fabric_.kernels[peer] = &core().shared;
      continue;
    }
    peers_[peer] = std::make_unique<KernelShared>();
    notifiers_[peer] = make_peer_notifier(peer, launch_.peer_eventfds[peer]);
    peers_[peer]->doorbell.notifier = notifiers_[peer].get();
    fabric_.kernels[peer] = peers_[peer].get();
    writers_[peer] = launch_.peer_writers[peer];
  }
  // Single-threaded: no other thread reads the count; release keeps Fabric's contract.
  fabric_.count.store(count, std::memory_order_release);
  return {};
}

Result<void> KernelProcess::await_start() {
  while (true) {
    pollfd readable{launch_.control_reader, POLLIN, 0};
    if (::poll(&readable, 1, -1) < 0 && errno != EINTR) {
      return error(Errc::io_error, std::string("waiting for start: ") + std::strerror(errno));
    }
    auto message = receive_control(launch_.control_reader, rejected_);
    if (!message) continue;
    if (message->header.kind != ControlKind::start || message->sender_pid != launch_.host) {
      // Another kernel may bind to this one as soon as it has run its own setup: kept until
      // the start says who the others are.
      early_.push_back(std::move(*message));
      continue;
    }
    const std::size_t known = message->body.size() / sizeof(StartEntry);
    if (message->body.size() % sizeof(StartEntry) != 0 || known != fabric_.size()) {
      return error(Errc::parse_error, "start: a kernel table of " +
                                          std::to_string(message->body.size()) + " bytes for " +
                                          std::to_string(fabric_.size()) + " kernels");
    }
    for (KernelId peer = 0; peer < known; ++peer) {
      StartEntry entry;
      std::memcpy(&entry, message->body.data() + peer * sizeof entry, sizeof entry);
      pids_[peer] = entry.pid;
      if (peer == id_) continue;
      if (entry.state != StartEntry::running) {
        KernelShared& shared = *fabric_.kernels[peer];
        // Release, as everywhere these flags are set.
        if (entry.state == StartEntry::failed) {
          shared.failed.store(true, std::memory_order_release);
        }
        shared.offline.store(true, std::memory_order_release);
        continue;
      }
      pidfds_[peer] = pidfd_open(entry.pid);
      if (pidfds_[peer] < 0) {
        // Already gone: its death is this kernel's first news.
        on_death(peer);
        continue;
      }
      epoll_event death{};
      death.events = EPOLLIN;
      death.data.u64 = peer;
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, pidfds_[peer], &death);
    }
    return {};
  }
}

void KernelProcess::run() noexcept {
  detach();
  Result<void> ready = place();
  if (ready) ready = build();
  if (ready) ready = await_start();
  if (!ready) {
    ControlOut out = control_out(ControlKind::started, id_);
    set_failure(out, ready.error());
    (void)send_control(launch_.host_writer, out);
    leave(1);
  }
  kernel_->spawn(run_setup(*this));
  for (ControlMessage& message : std::exchange(early_, {})) {
    if (trusted(message)) {
      on_control(std::move(message));
    } else {
      ++rejected_;
    }
  }
  try {
    loop();
  } catch (...) {
    // Kernel code does not throw past its tasks; anything that does is a bug, and this
    // process is the only thing it takes down.
    log_line("kernel " + std::to_string(id_) +
             " process: " + detail::describe_exception(std::current_exception()));
    leave(2);
  }
  core().teardown();
  flush_control();
  leave(0);
}

void KernelProcess::leave(int status) noexcept {
  std::fflush(stdout);
  std::fflush(stderr);
  // _exit: this process's copy of the program must not run the program's exit handlers or
  // report its leaks.
  ::_exit(status);
}

Task<void> KernelProcess::run_setup(KernelProcess& self) {
  Result<void> outcome;
  if (self.launch_.setup != nullptr && *self.launch_.setup) {
    try {
      outcome = (*self.launch_.setup)(*self.kernel_);
    } catch (...) {
      outcome = error(Errc::handler_failed,
                      "setup threw " + detail::describe_exception(std::current_exception()));
    }
  }
  ControlOut out = control_out(ControlKind::started, self.id_);
  if (!outcome) set_failure(out, outcome.error());
  self.send(kHostSender, std::move(out));
  co_return;
}

void KernelProcess::loop() {
  Kernel& kernel = *kernel_;
  const auto budget = launch_.plan->poll_budget;
  std::uint32_t turns = 0;
  auto busy_check = [&] {
    if ((++turns & (kEventCheckTurns - 1)) == 0) check_events();
  };
  while (!kernel.stopped()) {
    busy_check();
    if (!outgoing_.empty()) flush_control();
    if (kernel.run_turn()) continue;
    if (budget > std::chrono::nanoseconds::zero()) {
      const Instant idle_since = executor_.clock().now();
      bool worked = false;
      while (!worked && executor_.clock().now() - idle_since < budget) {
        busy_check();
        worked = kernel.run_turn();
      }
      if (worked || kernel.stopped()) continue;
    }
    if (kernel.prepare_to_sleep()) {
      std::optional<Instant> deadline = kernel.next_deadline();
      if (!outgoing_.empty()) {
        const Instant retry = executor_.clock().now() + kControlRetry;
        if (!deadline || retry < *deadline) deadline = retry;
      }
      // The epoll set is watched too, level-triggered: a datagram or a death that came after
      // the last look ends the wait at once.
      if (waiter_->wait(deadline)) check_events();
    }
    kernel.end_sleep();
  }
}

void KernelProcess::check_events() {
  epoll_event events[16];
  const int ready = ::epoll_wait(epoll_, events, 16, 0);
  for (int i = 0; i < ready; ++i) {
    if (events[i].data.u64 == kControlTag) {
      drain_control();
    } else {
      on_death(static_cast<KernelId>(events[i].data.u64));
    }
  }
}

void KernelProcess::drain_control() {
  while (auto message = receive_control(launch_.control_reader, rejected_)) {
    if (!trusted(*message)) {
      ++rejected_;
      continue;
    }
    on_control(std::move(*message));
  }
  if (rejected_ > 0) {
    Counters::bump(core().counters.rejected_messages, rejected_);
    rejected_ = 0;
  }
}

bool KernelProcess::trusted(const ControlMessage& message) const {
  const ControlKind kind = message.header.kind;
  const bool from_host = kind == ControlKind::run || kind == ControlKind::stop ||
                         kind == ControlKind::peer_offline || kind == ControlKind::kernel_added ||
                         kind == ControlKind::stats || kind == ControlKind::start;
  const bool from_kernel = kind == ControlKind::bind_request || kind == ControlKind::bind_reply ||
                           kind == ControlKind::bind_failure;
  if (message.header.from == kHostSender) return from_host && message.sender_pid == launch_.host;
  const std::uint32_t from = message.header.from;
  return from_kernel && from != id_ && from < fabric_.size() && pids_[from] != 0 &&
         pids_[from] == message.sender_pid && !fabric_.failed(from);
}

void KernelProcess::on_control(ControlMessage message) {
  switch (message.header.kind) {
    case ControlKind::stats: {
      const KernelStats stats = kernel_->stats();
      const auto* bytes = reinterpret_cast<const std::byte*>(&stats);
      reply(ControlKind::stats_reply, message.header.b,
            std::vector<std::byte>(bytes, bytes + sizeof stats));
      return;
    }
    case ControlKind::kernel_added: {
      KernelId peer = static_cast<KernelId>(message.header.a);
      CoreId where = 0;
      std::int32_t node = -1;
      if (message.body.size() != sizeof where + sizeof node || peer != fabric_.size() ||
          peer >= fabric_.kernels.size()) {
        Counters::bump(core().counters.rejected_messages);
        return;
      }
      std::memcpy(&where, message.body.data(), sizeof where);
      std::memcpy(&node, message.body.data() + sizeof where, sizeof node);
      auto added = add_peer(peer, static_cast<pid_t>(message.header.c), message.take_fd(0),
                            message.take_fd(1), where, node);
      if (!added) log_line("kernel " + std::to_string(id_) + ": " + added.error().describe());
      reply(ControlKind::ack, message.header.b);
      return;
    }
    default:
      // Everything else changes the kernel's state: handled in its next turn.
      core().shared.inbox.push(new ControlItem(*this, std::move(message)));
      return;
  }
}

void KernelProcess::handle(ControlMessage& message) {
  const ControlHeader& header = message.header;
  switch (header.kind) {
    case ControlKind::run: {
      auto entry = detail::find_remote(static_cast<std::uint32_t>(header.a));
      if (entry == nullptr) {
        ControlOut out = control_out(ControlKind::run_done, id_);
        out.header.b = header.b;
        set_failure(out, error(Errc::parse_error,
                               "no task is registered as number " + std::to_string(header.a)));
        if (header.b != 0) send(kHostSender, std::move(out));
        return;
      }
      if (!core().stopping()) {
        kernel_->spawn(serve_remote(*this, entry, std::move(message.body), header.b));
      }
      return;
    }
    case ControlKind::stop:
      core().begin_stop();
      return;
    case ControlKind::peer_offline: {
      const auto peer = static_cast<KernelId>(header.a);
      if (peer < fabric_.size() && peer != id_) {
        // Release, as the host's System does for kernels that are threads.
        fabric_.kernels[peer]->offline.store(true, std::memory_order_release);
        core().on_peer_offline(peer);
      }
      reply(ControlKind::ack, header.b);
      return;
    }
    case ControlKind::bind_request:
      core().on_bind_request(header.from);
      return;
    case ControlKind::bind_reply:
      core().on_shared_bind_reply(header.from, message.take_fd(0), header.a, header.c);
      return;
    case ControlKind::bind_failure:
      core().on_bind_failure(header.from, message.failure().value_or(error(Errc::internal, "")));
      return;
    default:
      Counters::bump(core().counters.rejected_messages);
      return;
  }
}

Task<void> KernelProcess::serve_remote(KernelProcess& self, detail::RemoteEntry entry,
                                       std::vector<std::byte> arguments, std::uint64_t request) {
  Result<std::vector<std::byte>> result = error(Errc::internal, "not run");
  try {
    auto value = co_await entry(*self.kernel_, std::move(arguments));
    result = std::move(value);
  } catch (...) {
    result = error(Errc::handler_failed,
                   "task threw " + detail::describe_exception(std::current_exception()));
  }
  if (request == 0) {
    if (!result) self.core().note_failure("a task the host spawned: " + result.error().describe());
    co_return;
  }
  ControlOut out = control_out(ControlKind::run_done, self.id_);
  out.header.b = request;
  if (!result) {
    set_failure(out, result.error());
  } else if (result->size() > kMaxControlBody) {
    set_failure(out, error(Errc::too_large,
                           "the task's value is " + std::to_string(result->size()) +
                               " bytes encoded, more than the " + std::to_string(kMaxControlBody) +
                               " a kernel process can send back"));
  } else {
    out.body = std::move(result).value();
  }
  self.send(kHostSender, std::move(out));
}

void KernelProcess::on_death(KernelId peer) {
  if (pidfds_[peer] >= 0) {
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, pidfds_[peer], nullptr);
    ::close(pidfds_[peer]);
    pidfds_[peer] = -1;
  }
  // Taken offline on purpose (remove_kernel told this kernel first), or this kernel is itself
  // stopping: an exit, not a failure.
  if (fabric_.offline(peer) || core().stopping()) return;
  KernelShared& shared = *fabric_.kernels[peer];
  // Release, failed before offline, as the host's System does for kernels that are threads.
  shared.failed.store(true, std::memory_order_release);
  shared.offline.store(true, std::memory_order_release);
  outgoing_.erase(peer);
  core().shared.inbox.push(make_peer_failed(peer).release());
}

std::unique_ptr<Notifier> KernelProcess::make_peer_notifier(KernelId peer, int eventfd) const {
  if (launch_.plan->wake_mechanism == WakeMechanism::futex) {
    return std::make_unique<WordNotifier>(launch_.wake_words[peer], true);
  }
  return std::make_unique<EventfdNotifier>(eventfd);
}

Result<void> KernelProcess::add_peer(KernelId peer, pid_t pid, int eventfd, int writer,
                                     CoreId core_id, int node) {
  if (eventfd < 0 || writer < 0) {
    if (eventfd >= 0) ::close(eventfd);
    if (writer >= 0) ::close(writer);
    return error(Errc::parse_error, "kernel_added without its descriptors");
  }
  peers_[peer] = std::make_unique<KernelShared>();
  notifiers_[peer] = make_peer_notifier(peer, eventfd);
  peers_[peer]->doorbell.notifier = notifiers_[peer].get();
  fabric_.kernels[peer] = peers_[peer].get();
  fabric_.cores[peer] = core_id;
  fabric_.numa_nodes[peer] = node;
  writers_[peer] = writer;
  pids_[peer] = pid;
  fabric_.count.store(peer + 1, std::memory_order_release);
  pidfds_[peer] = pidfd_open(pid);
  if (pidfds_[peer] < 0) {
    on_death(peer);
    return {};
  }
  epoll_event death{};
  death.events = EPOLLIN;
  death.data.u64 = peer;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, pidfds_[peer], &death);
  return {};
}

void KernelProcess::send(std::uint32_t to, ControlOut out) {
  auto queued = outgoing_.find(to);
  if (queued != outgoing_.end()) {
    queued->second.push_back(std::move(out));
    return;
  }
  const int writer =
      to == kHostSender ? launch_.host_writer : (to < writers_.size() ? writers_[to] : -1);
  if (writer < 0) return;
  if (send_control(writer, out) == ControlSend::would_block) {
    outgoing_[to].push_back(std::move(out));
  }
}

void KernelProcess::flush_control() {
  for (auto it = outgoing_.begin(); it != outgoing_.end();) {
    const std::uint32_t to = it->first;
    const int writer = to == kHostSender ? launch_.host_writer : writers_[to];
    auto& queue = it->second;
    while (!queue.empty()) {
      const ControlSend sent = send_control(writer, queue.front());
      if (sent == ControlSend::would_block) break;
      queue.pop_front();  // Sent, or its reader is gone.
    }
    it = queue.empty() ? outgoing_.erase(it) : std::next(it);
  }
}

void KernelProcess::reply(ControlKind kind, std::uint64_t request, std::vector<std::byte> body) {
  ControlOut out = control_out(kind, id_);
  out.header.b = request;
  out.body = std::move(body);
  send(kHostSender, std::move(out));
}

void run_kernel_process(const KernelLaunch& launch) noexcept {
  // Never destroyed: the process ends inside run().
  auto* process = new KernelProcess(launch);
  process->run();
}

}  // namespace mk::runtime
