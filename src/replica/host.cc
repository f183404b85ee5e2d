#include "replica/host.h"

#include <utility>

#include "replica/kernel_seam.h"
#include "replica/replica.h"
#include "replica/wire.h"

namespace mk::replica {

namespace {

/// The layer's one handler: hands every message to the receiving kernel's host.
class Handler final : public detail::HandlerBase {
 public:
  void on_message(Kernel& kernel, KernelId from, std::uint32_t call_id,
                  std::span<const std::byte> payload) override {
    if (call_id != 0) {
      detail::KernelAccess::reply_error(
          kernel, from, call_id, kReplicaMessage,
          error(Errc::invalid_argument, "replica messages are one-way, not calls"));
      return;
    }
    ReplicaHost::of(kernel).on_message(from, payload);
  }
};

/// Sends raw bytes, waiting for room like Kernel::send.
class RawSend {
 public:
  RawSend(Kernel& kernel, KernelId to, std::span<const std::byte> bytes) noexcept
      : kernel_(kernel), to_(to), bytes_(bytes) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> handle) {
    waiter_.handle = handle;
    return detail::KernelAccess::send(kernel_, to_, kReplicaMessage, bytes_, waiter_);
  }
  std::optional<Error> await_resume() { return std::move(waiter_.error); }

 private:
  Kernel& kernel_;
  KernelId to_;
  std::span<const std::byte> bytes_;
  detail::Waiter waiter_;
};

/// Resumes the pump when there is work.
struct Idle {
  std::coroutine_handle<>& slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> handle) noexcept { slot = handle; }
  void await_resume() const noexcept {}
};

/// Runs on the requester: the kernel told of an object has it now.
class DescribedWork final : public RemoteWork {
 public:
  explicit DescribedWork(std::uint64_t number) : number_(number) {}
  void run(Kernel& requester) override { ReplicaHost::of(requester).described(number_); }

 private:
  std::uint64_t number_;
};

/// Runs on the kernel to be told of an object: installs its description (no replica; the
/// join that follows transfers the state), then answers the requester.
class DescribeWork final : public RemoteWork {
 public:
  DescribeWork(detail::ObjectRef object, KernelId requester, std::uint64_t number)
      : object_(std::move(object)), requester_(requester), number_(number) {}
  void run(Kernel& target) override {
    ReplicaHost::of(target).install(object_, nullptr);
    post_work(target, requester_, std::make_unique<DescribedWork>(number_));
  }

 private:
  detail::ObjectRef object_;
  KernelId requester_;
  std::uint64_t number_;
};

}  // namespace

ReplicaHost::ReplicaHost(Kernel& kernel) : kernel_(kernel) {
  // Only the host registers this type, once per kernel, so this cannot already be taken.
  (void)detail::KernelAccess::add_handler(kernel, kReplicaMessage, std::make_unique<Handler>());
  // Failures declared before this kernel first used the layer were handled by the runtime
  // already; the listener hears of the later ones.
  failed_.resize(kernel.system_size(), false);
  for (KernelId id = 0; id < failed_.size(); ++id)
    failed_[id] = kernel.has_failed(id);
  detail::KernelAccess::add_failure_listener(kernel,
                                             [this](KernelId peer) { on_peer_failed(peer); });
  kernel_.spawn(timer());
  kernel_.spawn(watch_stop());
}

ReplicaHost::~ReplicaHost() = default;

Replica* ReplicaHost::find(detail::ObjectId object) noexcept {
  auto it = replicas_.find(object);
  return it == replicas_.end() ? nullptr : it->second.get();
}

Replica& ReplicaHost::install(detail::ObjectRef object,
                              std::unique_ptr<detail::ErasedMachine> machine) {
  const detail::ObjectId id = object->id;
  if (Replica* existing = find(id)) return *existing;
  auto made = std::make_unique<Replica>(*this, object, std::move(machine));
  Replica& ref = *made;
  replicas_.emplace(id, std::move(made));
  if (kernel_.id() < object->installed_size) {
    // Release: a kernel of another System with this id may load the entry (detail::
    // installed_here) and must then see the replica's fields as constructed.
    object->installed[kernel_.id()].store(&ref, std::memory_order_release);
  }
  ref.on_installed();
  return ref;
}

detail::ObjectId ReplicaHost::next_object_id() noexcept {
  return (static_cast<detail::ObjectId>(kernel_.id()) << 32) | ++objects_made_;
}

void ReplicaHost::send(KernelId to, std::vector<std::byte> bytes) {
  Lane& lane = lanes_[to];
  lane.queue.push_back(std::move(bytes));
  if (!lane.running) {
    lane.running = true;
    kernel_.spawn(drain(to, lane));
  } else if (lane.idle) {
    detail::KernelAccess::make_ready(kernel_, std::exchange(lane.idle, {}));
  }
}

// One task per destination sends what the layer sends there, so messages to one kernel keep
// their order even when its ring is full, handlers never wait, and a kernel that stopped
// reading (crashed) holds up only the messages addressed to it.
Task<void> ReplicaHost::drain(KernelId to, Lane& lane) {
  for (;;) {
    if (lane.queue.empty()) {
      co_await Idle{lane.idle};
      continue;
    }
    std::vector<std::byte> next = std::move(lane.queue.front());
    lane.queue.pop_front();
    if (auto failed = co_await RawSend(kernel_, to, next)) {
      // The peer or the system is going away; the protocol (its deadlines, a view change)
      // deals with what this message's loss means. Expected losses are not worth a log line.
      if (failed->code != Errc::shutting_down && !known_failed(to)) {
        detail::KernelAccess::note_failure(
            kernel_,
            "replica message to kernel " + std::to_string(to) + " not sent: " + failed->describe());
      }
    }
  }
}

void ReplicaHost::schedule(Replica& replica) {
  if (replica.scheduled_) return;
  replica.scheduled_ = true;
  scheduled_.push_back(replica.object().id);
  wake_pump();
}

void ReplicaHost::wake_pump() {
  if (!pump_running_) {
    pump_running_ = true;
    kernel_.spawn(pump());
  } else if (pump_idle_) {
    detail::KernelAccess::make_ready(kernel_, std::exchange(pump_idle_, {}));
  }
}

// Deferred work (a sequencer's batch, proposals a freeze queued) runs in a task of its own,
// after the channel batch that fed it.
Task<void> ReplicaHost::pump() {
  for (;;) {
    while (!scheduled_.empty()) {
      auto ids = std::exchange(scheduled_, {});
      for (detail::ObjectId id : ids) {
        if (Replica* replica = find(id)) {
          replica->scheduled_ = false;
          replica->after_turn();
        }
      }
    }
    co_await Idle{pump_idle_};
  }
}

ReplicaHost::DeadlineHandle ReplicaHost::add_deadline(Instant when, Deadline deadline) {
  auto handle = deadlines_.emplace(when, deadline);
  arm();
  return handle;
}

void ReplicaHost::cancel_deadline(DeadlineHandle handle) {
  deadlines_.erase(handle);
  arm();
}

/// The timer task's wait: suspended with no sleep until arm() gives it one.
struct TimerSleep {
  ReplicaHost& host;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> handle) {
    host.timer_sleep_.handle = handle;
    host.timer_suspended_ = true;
    host.arm();
  }
  void await_resume() const noexcept {}
};

void ReplicaHost::arm() {
  if (!timer_suspended_) return;  // It is running, and arms its sleep when it next waits.
  std::optional<Instant> wanted;
  if (!deadlines_.empty()) wanted = deadlines_.begin()->first;
  if (wanted == armed_) return;
  if (armed_) {
    if (!detail::KernelAccess::cancel_sleep(kernel_, timer_sleep_)) {
      // Its sleep ended already: the task is about to run, and arms itself again.
      timer_suspended_ = false;
      armed_.reset();
      return;
    }
    armed_.reset();
  }
  if (wanted) {
    armed_ = wanted;
    detail::KernelAccess::sleep_until(kernel_, *wanted, timer_sleep_);
  }
}

Task<void> ReplicaHost::timer() {
  for (;;) {
    co_await TimerSleep{*this};
    timer_suspended_ = false;
    armed_.reset();
    while (!deadlines_.empty() && deadlines_.begin()->first <= kernel_.now()) {
      const Deadline due = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      fire(due);
    }
  }
}

Task<void> ReplicaHost::watch_stop() {
  // A kernel is never told of its own failure, so this wait ends only when the kernel stops
  // (shutdown, remove_kernel, or its own failure), with shutting_down.
  (void)co_await kernel_.until_failed(kernel_.id());
  on_stop();
}

void ReplicaHost::on_stop() {
  stopping_ = true;
  for (auto& [id, replica] : replicas_)
    replica->on_stop();
  for (auto& [id, wait] : std::exchange(creating, {})) {
    cancel_deadline(wait.deadline);
    wait.latch->fail(error(Errc::shutting_down, "creating replicated object " + std::to_string(id) +
                                                    ": the kernel stops"));
  }
  for (auto& [number, wait] : std::exchange(describing_, {})) {
    cancel_deadline(wait.deadline);
    wait.latch->fail(error(Errc::shutting_down, "join: the kernel stops"));
  }
}

void ReplicaHost::on_peer_failed(KernelId peer) {
  if (peer >= failed_.size()) failed_.resize(peer + 1, false);
  if (failed_[peer]) return;
  failed_[peer] = true;
  if (auto lane = lanes_.find(peer); lane != lanes_.end()) lane->second.queue.clear();
  for (auto it = describing_.begin(); it != describing_.end();) {
    if (it->second.target != peer) {
      ++it;
      continue;
    }
    auto wait = std::move(it->second);
    it = describing_.erase(it);
    cancel_deadline(wait.deadline);
    wait.latch->fail(error(Errc::closed, "join: kernel " + std::to_string(peer) + " failed"));
  }
  for (auto it = creating.begin(); it != creating.end();) {
    // A kernel that failed will never install the object; the survivors remove it (view.cc).
    it->second.waiting.erase(peer);
    if (!it->second.waiting.empty()) {
      ++it;
      continue;
    }
    auto wait = std::move(it->second);
    it = creating.erase(it);
    cancel_deadline(wait.deadline);
    wait.latch->fulfill(true);
  }
  for (auto& [id, replica] : replicas_)
    replica->on_failure(peer);
}

Task<Result<void>> ReplicaHost::describe_to(detail::ObjectRef object, KernelId target) {
  const std::uint64_t number = ++describes_made_;
  const detail::ObjectId id = object->id;
  auto latch = std::make_shared<detail::ProposalState<bool>>(kernel_);
  auto deadline = add_deadline(kernel_.now() + object->options.timeout,
                               Deadline{id, Deadline::Kind::describe, number});
  describing_.emplace(number, DescribeWait{latch, deadline, target});
  post_work(kernel_, target,
            std::make_unique<DescribeWork>(std::move(object), kernel_.id(), number));
  auto done = co_await Proposal<bool>(latch);
  if (!done) co_return std::move(done).error();
  co_return Result<void>();
}

void ReplicaHost::described(std::uint64_t number) {
  auto it = describing_.find(number);
  // Not found: the wait timed out first.
  if (it == describing_.end()) return;
  cancel_deadline(it->second.deadline);
  auto latch = std::move(it->second.latch);
  describing_.erase(it);
  latch->fulfill(true);
}

void ReplicaHost::fire(const Deadline& deadline) {
  if (deadline.kind == Deadline::Kind::describe) {
    auto it = describing_.find(deadline.id);
    if (it == describing_.end()) return;
    auto latch = std::move(it->second.latch);
    describing_.erase(it);
    latch->fail(
        error(Errc::timed_out, "join: replicated object " + std::to_string(deadline.object) +
                                   " could not be installed on the joining kernel in time"));
    return;
  }
  if (deadline.kind == Deadline::Kind::create) {
    auto it = creating.find(deadline.object);
    if (it == creating.end()) return;
    auto latch = std::move(it->second.latch);
    creating.erase(it);
    latch->fail(error(Errc::timed_out, "creating replicated object " +
                                           std::to_string(deadline.object) +
                                           ": not every kernel installed it in time"));
    return;
  }
  if (Replica* replica = find(deadline.object)) replica->on_deadline(deadline);
}

void ReplicaHost::on_message(KernelId from, std::span<const std::byte> bytes) {
  std::size_t at = 0;
  auto header = get<Header>(bytes, at);
  if (!header) {
    detail::KernelAccess::note_failure(
        kernel_, "replica message of " + std::to_string(bytes.size()) + " bytes from kernel " +
                     std::to_string(from) + ": no header");
    return;
  }
  const auto body = bytes.subspan(at);
  if (header->step == Step::created) {
    auto it = creating.find(header->object);
    if (it == creating.end()) return;
    it->second.waiting.erase(header->root);
    if (header->status != 0 || it->second.waiting.empty()) {
      auto wait = std::move(it->second);
      creating.erase(it);
      cancel_deadline(wait.deadline);
      if (header->status != 0) {
        wait.latch->fail(error_of(header->status, body));
      } else {
        wait.latch->fulfill(true);
      }
    }
    return;
  }
  Replica* replica = find(header->object);
  if (replica == nullptr) {
    detail::KernelAccess::note_failure(
        kernel_, "replica message from kernel " + std::to_string(from) + " for object " +
                     std::to_string(header->object) + ", unknown on kernel " +
                     std::to_string(kernel_.id()));
    return;
  }
  replica->on_message(from, *header, body);
}

}  // namespace mk::replica
