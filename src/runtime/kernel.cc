// The kernel loop, its tasks and timers, the idle handshake, and Kernel's public methods.
#include "mk/kernel.h"

#include <fmt/format.h>

#include <exception>
#include <string>
#include <utility>

#include "runtime/kernel_core.h"
#include "runtime/log.h"

namespace mk {

namespace runtime {

constinit thread_local Kernel* current_kernel = nullptr;

namespace {

/// Marks the calling thread as running `kernel` for the duration of a turn, so that API calls
/// can tell whether they come from the kernel's own thread.
class CurrentKernel {
 public:
  explicit CurrentKernel(Kernel& kernel) noexcept : previous_(current_kernel) {
    current_kernel = &kernel;
  }
  ~CurrentKernel() { current_kernel = previous_; }
  CurrentKernel(const CurrentKernel&) = delete;
  CurrentKernel& operator=(const CurrentKernel&) = delete;

 private:
  Kernel* previous_;
};

/// After Stop, how many turns the kernel gives its remaining ready tasks to see their
/// shutting_down errors and finish, before it stops anyway and destroys what is left.
constexpr std::size_t kStopTurns = 1024;

RootTask run_root(KernelCore&, Task<void> task) {
  co_await std::move(task);
}

/// Hands a task to a kernel from another thread.
class HandOver final : public InboxItem {
 public:
  explicit HandOver(Task<void> task) : task_(std::move(task)) {}
  void deliver(KernelCore& kernel) override {
    if (!kernel.stopping()) kernel.spawn(std::move(task_));
  }

 private:
  Task<void> task_;
};

}  // namespace

RootPromise::RootPromise(KernelCore& owner, Task<void>&) noexcept : core(owner) {
  next = core.roots();
  if (next != nullptr) next->prev = this;
  core.roots() = this;
}

RootPromise::~RootPromise() {
  if (prev != nullptr) {
    prev->next = next;
  } else {
    core.roots() = next;
  }
  if (next != nullptr) next->prev = prev;
}

void RootPromise::unhandled_exception() noexcept {
  core.note_failure("a task on kernel " + std::to_string(core.id) + " threw " +
                    detail::describe_exception(std::current_exception()));
}

KernelStats Counters::snapshot() const noexcept {
  // Relaxed loads: a snapshot of statistics, each counter on its own.
  auto read = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return KernelStats{
      read(sleeps),          read(messages_received), read(messages_sent),  read(calls_completed),
      read(task_failures),   read(rejected_messages), read(channels_bound), read(turns),
      read(shared_fan_outs), read(answers_in_line)};
}

KernelCore::KernelCore(Kernel& owner, KernelId kernel_id, Fabric& system_fabric,
                       const Clock& kernel_clock)
    : self(owner), id(kernel_id), fabric(system_fabric), clock(kernel_clock) {}

KernelCore::~KernelCore() {
  teardown();
}

void KernelCore::teardown() noexcept {
  if (torn_down_) return;
  torn_down_ = true;
  // Forget every reference into task frames first, then destroy the frames: a root frame
  // destroys the tasks it awaits, and with them their awaiters.
  ready_.clear();
  timers_.clear();
  failure_waiters_.clear();
  calls_.drain([](detail::PendingCall&) {});
  for (auto& box : outboxes_) {
    if (box) box->queue.clear();
  }
  backlog_.clear();
  while (roots_ != nullptr) {
    std::coroutine_handle<RootPromise>::from_promise(*roots_).destroy();
  }
  // Extensions go after the tasks, whose frames may still refer to them.
  while (!extensions.empty()) {
    Extension last = extensions.back();
    extensions.pop_back();
    last.destroy(last.object);
  }
}

namespace {

/// Filled while the program starts; read-only once kernels run.
std::vector<detail::LayerStart>& layers() {
  static std::vector<detail::LayerStart> registered;
  return registered;
}

}  // namespace

void KernelCore::start_layers() {
  layers_started_ = true;
  for (detail::LayerStart start : layers())
    start(self);
}

void KernelCore::spawn(Task<void> task) {
  if (current_kernel != &self) {
    post_to(id, new HandOver(std::move(task)));
    return;
  }
  RootTask root = run_root(*this, std::move(task));
  make_ready(root.handle);
}

void KernelCore::grow_ready() {
  ready_.set_capacity(ready_.capacity() * 2);
}

void KernelCore::note_failure(const std::string& what) {
  Counters::bump(counters.task_failures);
  log_line(what);
}

bool KernelCore::run_turn() {
  CurrentKernel scope(self);
  Counters::bump(counters.turns);
  if (!layers_started_) [[unlikely]]
    start_layers();
  // Each step is looked at before it is called: most turns of a spinning kernel find nothing
  // but a message, and an idle turn's length is what a message waits for, half of it on
  // average, on each side of every round trip.
  bool worked = !shared.inbox.empty() && take_inbox();
  if (!stopping_) {
    if (!awaiting_answers_.empty() && answers_changed()) worked |= poll_answers();
    worked |= poll_channels();
    if (!backlog_.empty()) worked |= flush_backlog();
    if (!timers_.empty()) worked |= fire_timers();
  }
  if (!ready_.empty()) worked |= run_ready();
  if (stopping_ && (ready_.empty() || ++stop_turns_ > kStopTurns)) stopped_ = true;
  return worked;
}

bool KernelCore::fire_timers() {
  const Instant now = clock.now();
  bool fired = false;
  while (auto timer = timers_.pop_due(now)) {
    if (timer->sleeper != nullptr) {
      make_ready(timer->sleeper->handle);
      fired = true;
    } else if (detail::PendingCall* call = calls_.take(timer->call_id, timer->call_serial)) {
      call->error =
          error(Errc::timed_out, "call of message type " + std::to_string(timer->call_type) +
                                     " to kernel " + std::to_string(timer->call_to) +
                                     ": no reply before its deadline");
      Counters::bump(counters.calls_completed);
      make_ready(call->handle);
      fired = true;
    }
  }
  return fired;
}

bool KernelCore::run_ready() {
  // Only the tasks ready when this step began: a task that yields runs again next turn,
  // after the channels were polled.
  std::size_t count = ready_.size();
  while (count-- > 0) {
    std::coroutine_handle<> handle = ready_.front();
    ready_.pop_front();
    handle.resume();
  }
  return true;
}

bool KernelCore::has_work() {
  if (!ready_.empty() || !shared.inbox.empty()) return true;
  if (stopping_) return false;
  for (const Inbound& in : inbound_) {
    if (in.receiver->has_message()) return true;
  }
  if (answers_changed()) return true;
  if (!backlog_.empty() && flush_backlog()) return true;
  auto deadline = timers_.next();
  return deadline && *deadline <= clock.now();
}

}  // namespace runtime

namespace detail {

void register_layer(LayerStart start) {
  runtime::layers().push_back(start);
}

Task<Result<void>> ready_task(Result<void> result) {
  co_return result;
}

Task<void> own_and_run(std::unique_ptr<TaskFactory<void>> factory, Kernel& kernel) {
  co_await factory->make(kernel);
}

std::string describe_exception(std::exception_ptr failure) {
  try {
    std::rethrow_exception(std::move(failure));
  } catch (const std::exception& e) {
    return std::string("an exception: ") + e.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

Error reserved_type_error(MessageType type, const char* what) {
  return error(Errc::invalid_argument,
               fmt::format("{}: message type {:#06x} is in the range mk's own layers reserve "
                           "({:#06x} to {:#06x}); give the message a type below {:#06x}",
                           what, type, kFirstReservedMessageType, kLastReservedMessageType,
                           kFirstReservedMessageType));
}

bool KernelAccess::send(Kernel& kernel, KernelId to, MessageType type,
                        std::span<const std::byte> payload, Waiter& waiter) {
  return kernel.core_->send(to, type, payload, waiter);
}

Result<void> KernelAccess::post(Kernel& kernel, KernelId to, MessageType type,
                                std::span<const std::byte> payload) {
  return kernel.core_->post(to, type, payload);
}

void KernelAccess::post_fan_out(Kernel& kernel, const FanOut& fan_out, MessageType type,
                                std::span<const std::byte> payload,
                                FunctionRef<void(KernelId, const Error&)> on_failure) {
  kernel.core_->post_fan_out(fan_out, type, payload, on_failure);
}

bool KernelAccess::call(Kernel& kernel, KernelId to, MessageType type,
                        std::span<const std::byte> payload, PendingCall& call,
                        const std::optional<Duration>& timeout) {
  return kernel.core_->call(to, type, payload, call, timeout);
}

void KernelAccess::sleep_until(Kernel& kernel, Instant when, Waiter& waiter) {
  kernel.core_->sleep_until(when, waiter);
}

bool KernelAccess::cancel_sleep(Kernel& kernel, const Waiter& waiter) {
  return kernel.core_->cancel_sleep(waiter);
}

void KernelAccess::make_ready(Kernel& kernel, std::coroutine_handle<> handle) {
  kernel.core_->make_ready(handle);
}

Result<void> KernelAccess::add_handler(Kernel& kernel, MessageType type,
                                       std::unique_ptr<HandlerBase> handler) {
  return kernel.core_->add_handler(type, std::move(handler));
}

void KernelAccess::reply(Kernel& kernel, KernelId to, std::uint32_t call_id, MessageType type,
                         std::span<const std::byte> payload) {
  kernel.core_->reply(to, call_id, type, payload);
}

void KernelAccess::reply_error(Kernel& kernel, KernelId to, std::uint32_t call_id, MessageType type,
                               const Error& failure) {
  kernel.core_->reply_error(to, call_id, type, failure);
}

void KernelAccess::note_failure(Kernel& kernel, const std::string& what) {
  kernel.core_->note_failure(what);
}

bool KernelAccess::wait_failure(Kernel& kernel, KernelId peer, Waiter& waiter) {
  return kernel.core_->wait_failure(peer, waiter);
}

void KernelAccess::add_failure_listener(Kernel& kernel, std::function<void(KernelId)> listener) {
  kernel.core_->add_failure_listener(std::move(listener));
}

Dispatcher* KernelAccess::find_dispatcher(Kernel& kernel, std::uint32_t domain) noexcept {
  for (auto& dispatcher : kernel.core_->dispatchers) {
    if (dispatcher->domain() == domain) return dispatcher.get();
  }
  return nullptr;
}

void* KernelAccess::find_extension(Kernel& kernel, const void* key) noexcept {
  for (const auto& extension : kernel.core_->extensions) {
    if (extension.key == key) return extension.object;
  }
  return nullptr;
}

void KernelAccess::add_extension(Kernel& kernel, const void* key, void* extension,
                                 void (*destroy)(void*)) {
  try {
    kernel.core_->extensions.push_back({key, extension, destroy});
  } catch (...) {
    destroy(extension);
    throw;
  }
}

void KernelAccess::add_dispatcher(Kernel& kernel, std::unique_ptr<Dispatcher> dispatcher) {
  kernel.core_->dispatchers.push_back(std::move(dispatcher));
}

}  // namespace detail

Kernel::Kernel(KernelId id, runtime::Fabric& fabric, const Clock& clock)
    : id_(id), core_(std::make_unique<runtime::KernelCore>(*this, id, fabric, clock)) {}

Kernel::~Kernel() = default;

CoreId Kernel::core() const noexcept {
  return core_->fabric.cores[core_->id];
}
CoreId Kernel::core_of(KernelId kernel) const noexcept {
  return core_->fabric.cores[kernel];
}
const Skb& Kernel::skb() const noexcept {
  return *core_->fabric.skb;
}
std::uint64_t Kernel::system_id() const noexcept {
  return core_->fabric.system_id;
}
bool Kernel::is_online(KernelId kernel) const noexcept {
  return core_->fabric.online(kernel);
}
bool Kernel::has_failed(KernelId kernel) const noexcept {
  return kernel < core_->fabric.size() && core_->fabric.failed(kernel);
}

std::size_t Kernel::system_size() const noexcept {
  return core_->fabric.size();
}
Instant Kernel::now() const noexcept {
  return core_->clock.now();
}
KernelStats Kernel::stats() const noexcept {
  return core_->counters.snapshot();
}
Kernel* Kernel::current() noexcept {
  return runtime::current_kernel;
}

void Kernel::spawn(Task<void> task) {
  core_->spawn(std::move(task));
}

void Kernel::set_notifier(Notifier& notifier) noexcept {
  core_->shared.doorbell.notifier = &notifier;
}

bool Kernel::run_turn() {
  return core_->run_turn();
}

std::optional<Instant> Kernel::next_deadline() const noexcept {
  return core_->next_deadline();
}

bool Kernel::prepare_to_sleep() noexcept {
  runtime::KernelCore& k = *core_;
  runtime::CurrentKernel scope(*this);
  // The handshake is runtime/doorbell.h's; the kernel only names its flags.
  const bool asleep = runtime::announce_sleep(
      k.shared.doorbell,
      [&k](auto raise) {
        for (KernelId to : k.backlog_) {
          runtime::Outbox& box = *k.outboxes_[to];
          if (box.flags) raise(*box.flags);
        }
        // An answer awaited in line comes back as room does: the callee rings as it would.
        for (KernelId to : k.awaiting_answers_) {
          runtime::Outbox& box = *k.outboxes_[to];
          if (box.answer_call != 0 && box.flags) raise(*box.flags);
        }
      },
      [&k](auto raise) { k.for_each_inbound_flags(raise); }, [&k] { return k.has_work(); });
  if (asleep) runtime::Counters::bump(k.counters.sleeps);
  return asleep;
}

void Kernel::end_sleep() noexcept {
  runtime::KernelCore& k = *core_;
  runtime::end_sleep(k.shared.doorbell, [&k](auto lower) { k.for_each_inbound_flags(lower); });
}

bool Kernel::stopped() const noexcept {
  return core_->stopped();
}

}  // namespace mk
