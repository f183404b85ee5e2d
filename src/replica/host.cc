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

/// Every kernel has its host, and so the layer's handler, before it takes a message: a
/// kernel installs objects it hears of from others.
const bool kStartsOnEveryKernel =
    (detail::register_layer([](Kernel& kernel) { (void)ReplicaHost::of(kernel); }), true);

}  // namespace

ReplicaHost::ReplicaHost(Kernel& kernel) : kernel_(kernel) {
  // Only the host registers this type, once per kernel, so this cannot already be taken.
  (void)detail::KernelAccess::add_handler(kernel, kReplicaMessage, std::make_unique<Handler>());
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
      // The peer or the system is going away; the protocol's deadlines report what this
      // message's loss means to whoever waits for it.
      detail::KernelAccess::note_failure(
          kernel_,
          "replica message to kernel " + std::to_string(to) + " not sent: " + failed->describe());
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
  if (!sweep_target_ || when < *sweep_target_) {
    // A sleeping sweeper cannot be woken early; a newer one takes over and the old one
    // returns when it wakes.
    sweep_target_ = when;
    kernel_.spawn(sweep(++sweep_generation_));
  }
  return handle;
}

Task<void> ReplicaHost::sweep(std::uint64_t generation) {
  while (generation == sweep_generation_) {
    if (deadlines_.empty()) {
      sweep_target_.reset();
      co_return;
    }
    const Instant when = deadlines_.begin()->first;
    if (kernel_.now() < when) {
      sweep_target_ = when;
      co_await kernel_.sleep_until(when);
      continue;
    }
    const Deadline due = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    fire(due);
  }
}

Task<Result<void>> ReplicaHost::describe_to(detail::ObjectRef object, KernelId target) {
  const std::uint64_t number = ++describes_made_;
  const detail::ObjectId id = object->id;
  auto latch = std::make_shared<detail::ProposalState<bool>>(kernel_);
  auto deadline = add_deadline(kernel_.now() + object->options.timeout,
                               Deadline{id, Deadline::Kind::describe, number});
  describing_.emplace(number, DescribeWait{latch, deadline});
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
  auto header = get<Header>(bytes, at);
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
    if (header->status != 0) {
      auto latch = std::move(it->second.latch);
      cancel_deadline(it->second.deadline);
      creating.erase(it);
      latch->fail(error_of(header->status, body));
    } else if (--it->second.remaining == 0) {
      auto latch = std::move(it->second.latch);
      cancel_deadline(it->second.deadline);
      creating.erase(it);
      static_cast<detail::ProposalState<bool>&>(*latch).fulfill(true);
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
