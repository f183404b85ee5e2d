#include "replica/host.h"

#include <algorithm>
#include <utility>

#include "replica/objects.h"
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

/// Resumes the pump when there is work.
struct Idle {
  std::coroutine_handle<>& slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> handle) noexcept { slot = handle; }
  void await_resume() const noexcept {}
};

/// Every kernel has its host, and so the layer's handler, before it takes a message: a
/// kernel installs objects it hears of from others.
const bool kStartsOnEveryKernel =
    (detail::register_layer([](Kernel& kernel) { (void)ReplicaHost::of(kernel); }), true);

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

// The runtime queues what the ring has no room for, in order, so messages to one kernel keep
// their order, handlers never wait, and a kernel that stopped reading (crashed) holds up only
// the messages addressed to it.
void ReplicaHost::send(KernelId to, std::vector<std::byte> bytes) {
  if (auto sent = detail::KernelAccess::post(kernel_, to, kReplicaMessage, bytes); !sent) {
    on_send_failed(to, sent.error());
  }
}

void ReplicaHost::send_fan_out(const FanOut& fan_out, std::span<const std::byte> bytes) {
  detail::KernelAccess::post_fan_out(
      kernel_, fan_out, kReplicaMessage, bytes,
      [this](KernelId to, const Error& failure) { on_send_failed(to, failure); });
}

void ReplicaHost::on_send_failed(KernelId to, const Error& failure) {
  // The peer or the system is going away; the protocol (its deadlines, a view change) deals
  // with what this message's loss means. Expected losses are not worth a log line.
  if (failure.code != Errc::shutting_down && !known_failed(to) && kernel_.is_online(to)) {
    detail::KernelAccess::note_failure(kernel_, "replica message to kernel " + std::to_string(to) +
                                                    " not sent: " + failure.describe());
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
  std::vector<detail::ObjectId> stable_due;
  for (;;) {
    run_scheduled(stable_due);
    if (stable_due.empty()) {
      co_await Idle{pump_idle_};
      continue;
    }
    // A proposal finished, and its proposer is typically about to propose again: the task it
    // resumed runs before the pump's next turn, and the wave it starts carries the stable
    // prefix. A notice sent now would be a second message per member per proposal, ahead of
    // that wave in each channel; one turn later it is sent only if no wave carried it.
    co_await kernel_.yield();
    run_scheduled(stable_due);
    for (detail::ObjectId id : std::exchange(stable_due, {})) {
      if (Replica* replica = find(id)) replica->send_stable();
    }
  }
}

void ReplicaHost::run_scheduled(std::vector<detail::ObjectId>& stable_due) {
  while (!scheduled_.empty()) {
    auto ids = std::exchange(scheduled_, {});
    for (detail::ObjectId id : ids) {
      Replica* replica = find(id);
      if (replica == nullptr) continue;
      replica->scheduled_ = false;
      replica->after_turn();
      if (replica->stable_unsent() &&
          std::find(stable_due.begin(), stable_due.end(), id) == stable_due.end()) {
        stable_due.push_back(id);
      }
    }
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
  Header header;
  header.object = id;
  header.a = number;
  header.root = kernel_.id();
  header.step = Step::describe;
  std::vector<std::byte> description;
  encode_description(*object, description);
  send(target, message(header, description));
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
  auto header = decode_header(bytes, at);
  if (!header) {
    detail::KernelAccess::note_failure(
        kernel_, "replica message of " + std::to_string(bytes.size()) + " bytes from kernel " +
                     std::to_string(from) + ": no header");
    return;
  }
  const auto body = bytes.subspan(at);
  switch (header->step) {
    case Step::install_part:
      on_install_part(*header, body);
      return;
    case Step::install:
      on_install(from, *header, body);
      return;
    case Step::describe:
      on_describe(from, *header, body);
      return;
    case Step::described:
      described(header->a);
      return;
    default:
      break;
  }
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

void ReplicaHost::send_install(KernelId to, const detail::ObjectInfo& object,
                               const std::vector<std::byte>& state) {
  Header header;
  header.object = object.id;
  header.root = kernel_.id();
  header.step = Step::install_part;
  for (std::size_t offset = 0; offset < state.size(); offset += kMaxBody) {
    header.b = offset;
    const std::size_t size = std::min(kMaxBody, state.size() - offset);
    send(to, message(header, std::span(state).subspan(offset, size)));
  }
  header.step = Step::install;
  header.a = state.size();
  header.b = 0;
  std::vector<std::byte> description;
  encode_description(object, description);
  send(to, message(header, description));
}

void ReplicaHost::on_install_part(const Header& header, std::span<const std::byte> body) {
  auto& incoming = installing_[header.object];
  // Parts come in order on one channel; anything else is not a part of this state.
  if (header.b != incoming.size()) {
    installing_.erase(header.object);
    return;
  }
  incoming.insert(incoming.end(), body.begin(), body.end());
}

void ReplicaHost::on_install(KernelId from, const Header& header, std::span<const std::byte> body) {
  Header answer;
  answer.object = header.object;
  answer.root = kernel_.id();
  answer.step = Step::created;
  auto refuse = [&](const Error& failure) {
    answer.status = status_of(failure);
    send(from, message(answer, text_of(failure)));
  };
  std::vector<std::byte> state;
  if (auto parts = installing_.find(header.object); parts != installing_.end()) {
    state = std::move(parts->second);
    installing_.erase(parts);
  }
  if (state.size() != header.a) {
    return refuse(error(Errc::parse_error, "replicated object " + std::to_string(header.object) +
                                               ": " + std::to_string(state.size()) +
                                               " bytes of state arrived, " +
                                               std::to_string(header.a) + " announced"));
  }
  auto described = decode_description(header.object, body);
  if (!described) return refuse(described.error());
  detail::ObjectRef object = adopt_object(kernel_.system_id(), std::move(described).value());
  const auto& members = object->options.kernels;
  std::unique_ptr<detail::ErasedMachine> machine;
  if (std::binary_search(members.begin(), members.end(), kernel_.id())) {
    auto made = object->make(state);
    if (!made) return refuse(made.error());
    machine = std::move(*made);
  }
  install(std::move(object), std::move(machine));
  send(from, message(answer));
}

void ReplicaHost::on_describe(KernelId from, const Header& header,
                              std::span<const std::byte> body) {
  auto described = decode_description(header.object, body);
  if (!described) {
    detail::KernelAccess::note_failure(
        kernel_, "description of replicated object " + std::to_string(header.object) +
                     " from kernel " + std::to_string(from) + ": " + described.error().message);
    return;
  }
  // No replica: the join that follows transfers the state.
  install(adopt_object(kernel_.system_id(), std::move(described).value()), nullptr);
  Header answer;
  answer.object = header.object;
  answer.a = header.a;
  answer.root = kernel_.id();
  answer.step = Step::described;
  send(from, message(answer));
}

}  // namespace mk::replica
