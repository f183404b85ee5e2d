// The monitor half of a kernel: system messages that arrive through its inbox. Binding a
// channel between two kernels is a split-phase exchange of these:
//
//   A (wants to send to B)                     B
//   outbox[B]: unbound -> binding   BindRequest(A) -->
//                                              makes the ring on its own NUMA node, keeps the
//                                              receiving end, polls it from now on
//                               <-- BindReply(B, sending end)
//   outbox[B]: binding -> bound, flushes what queued meanwhile
//
// The ring is allocated by the receiver's own thread, so its memory is local to the receiver
// (docs/architecture.md, "Mechanisms"), and channels exist only between kernels that talk.
#include <limits>
#include <string>
#include <utility>

#include "runtime/kernel_core.h"
#include "runtime/log.h"

namespace mk::runtime {

namespace {

class BindRequest final : public InboxItem {
 public:
  explicit BindRequest(KernelId from) : from_(from) {}
  void deliver(KernelCore& kernel) override { kernel.on_bind_request(from_); }

 private:
  KernelId from_;
};

class BindReply final : public InboxItem {
 public:
  BindReply(KernelId from, std::unique_ptr<ChannelSender> sender, std::shared_ptr<PairFlags> flags)
      : from_(from), sender_(std::move(sender)), flags_(std::move(flags)) {}
  void deliver(KernelCore& kernel) override {
    kernel.on_bind_reply(from_, std::move(sender_), std::move(flags_));
  }

 private:
  KernelId from_;
  std::unique_ptr<ChannelSender> sender_;
  std::shared_ptr<PairFlags> flags_;
};

class BindFailure final : public InboxItem {
 public:
  BindFailure(KernelId from, Error failure) : from_(from), failure_(std::move(failure)) {}
  void deliver(KernelCore& kernel) override { kernel.on_bind_failure(from_, failure_); }

 private:
  KernelId from_;
  Error failure_;
};

class StopRequest final : public InboxItem {
 public:
  void deliver(KernelCore& kernel) override { kernel.begin_stop(); }
};

class PeerOffline final : public InboxItem {
 public:
  explicit PeerOffline(KernelId offline) : offline_(offline) {}
  void deliver(KernelCore& kernel) override { kernel.on_peer_offline(offline_); }

 private:
  KernelId offline_;
};

class PeerFailed final : public InboxItem {
 public:
  explicit PeerFailed(KernelId failed) : failed_(failed) {}
  void deliver(KernelCore& kernel) override { kernel.on_peer_failed(failed_); }

 private:
  KernelId failed_;
};

class ExternalItem final : public InboxItem {
 public:
  explicit ExternalItem(std::unique_ptr<detail::ExternalWork> work) : work_(std::move(work)) {}
  // Dropped unstarted when the kernel is stopping: destroying the work tells a waiting
  // System::run that the system shut down.
  void deliver(KernelCore& kernel) override {
    if (!kernel.stopping()) kernel.spawn(work_->start(kernel.self));
  }

 private:
  std::unique_ptr<detail::ExternalWork> work_;
};

}  // namespace

std::unique_ptr<InboxItem> make_stop_request() {
  return std::make_unique<StopRequest>();
}

std::unique_ptr<InboxItem> make_peer_offline(KernelId offline) {
  return std::make_unique<PeerOffline>(offline);
}

std::unique_ptr<InboxItem> make_peer_failed(KernelId failed) {
  return std::make_unique<PeerFailed>(failed);
}

std::unique_ptr<InboxItem> make_external_item(std::unique_ptr<detail::ExternalWork> work) {
  return std::make_unique<ExternalItem>(std::move(work));
}

void KernelCore::post_to(KernelId to, InboxItem* item) const noexcept {
  // Another kernel process's inbox is in another address space: what crosses goes by the
  // control plane, and nothing may post an object there.
  if (fabric.control != nullptr && to != id) {
    log_line("internal: kernel " + std::to_string(id) + " posted to kernel " + std::to_string(to) +
             "'s inbox across processes; dropped");
    delete item;
    return;
  }
  fabric.post(to, item);
}

bool KernelCore::take_inbox() {
  InboxItem* item = shared.inbox.take_all();
  if (item == nullptr) return false;
  while (item != nullptr) {
    InboxItem* next = item->next;
    item->deliver(*this);
    delete item;
    item = next;
  }
  return true;
}

std::optional<Error> KernelCore::start_bind(KernelId to, Outbox& box) {
  if (to == id) {
    // A kernel calling itself needs no monitor: both ends stay on this thread.
    auto options = fabric.channel_options(id, id);
    if (!options) return std::move(options).error();
    auto ends = fabric.executor->make_channel(id, id, ChannelKind::local, *options);
    if (!ends) return std::move(ends).error();
    inbound_.push_back(Inbound{id, std::move(ends->receiver), nullptr});
    box.set_sender(std::move(ends->sender));
    box.state = Outbox::State::bound;
    return std::nullopt;
  }
  box.state = Outbox::State::binding;
  if (fabric.control != nullptr) {
    send_bind_request(to);
  } else {
    post_to(to, new BindRequest(id));
  }
  return std::nullopt;
}

void KernelCore::on_bind_request(KernelId from) {
  // A stopping kernel binds nothing; the requester is stopping too and fails its queue. A
  // failed one is fenced off: nothing it sends is taken any more.
  if (stopping_ || fabric.failed(from)) return;
  if (fabric.control != nullptr) {
    bind_shared(from);
    return;
  }
  const ChannelKind kind = fabric.kind_between(from, id);
  auto options = fabric.channel_options(from, id);
  auto ends = options ? fabric.executor->make_channel(from, id, kind, *options)
                      : Result<ChannelEnds>(std::move(options).error());
  if (!ends) {
    post_to(from, new BindFailure(id, error(ends.error().code,
                                            "binding a channel from kernel " +
                                                std::to_string(from) + " to kernel " +
                                                std::to_string(id) + ": " + ends.error().message)));
    return;
  }
  auto flags = std::make_shared<PairFlags>();
  inbound_.push_back(Inbound{from, std::move(ends->receiver), flags});
  Counters::bump(counters.channels_bound);
  post_to(from, new BindReply(id, std::move(ends->sender), std::move(flags)));
}

void KernelCore::on_bind_reply(KernelId to, std::unique_ptr<ChannelSender> sender,
                               std::shared_ptr<PairFlags> flags) {
  // Offline meanwhile: its PeerOffline or PeerFailed notice already failed the queue, and
  // later sends are refused before they reach the outbox.
  if (stopping_ || fabric.offline(to)) return;
  Outbox& box = outbox(to);
  // Only the binding this kernel asked for: a reply it did not ask for (a faulty peer process)
  // must not replace a bound channel.
  if (box.state != Outbox::State::binding) {
    Counters::bump(counters.rejected_messages);
    return;
  }
  box.set_sender(std::move(sender));
  box.answers_in_line = box.urpc != nullptr && fabric.answers_in_line(id, to);
  box.flags = std::move(flags);
  box.state = Outbox::State::bound;
  if (!box.queue.empty()) mark_backlog(to, box);
}

void KernelCore::on_bind_failure(KernelId to, const Error& failure) {
  Outbox& box = outbox(to);
  // Unbound again: a later send retries the binding.
  box.state = Outbox::State::unbound;
  while (!box.queue.empty()) {
    fail_entry(to, box.queue.front(), failure);
    box.queue.pop_front();
  }
}

void KernelCore::on_peer_offline(KernelId to) {
  fail_towards(to, error(Errc::closed, "kernel " + std::to_string(to) + " went offline"));
  // A kernel taken offline without failing will not fail any more.
  std::erase_if(failure_waiters_, [&](const std::pair<KernelId, detail::Waiter*>& entry) {
    if (entry.first != to) return false;
    entry.second->error =
        error(Errc::closed, "kernel " + std::to_string(to) + " went offline without failing");
    make_ready(entry.second->handle);
    return true;
  });
}

void KernelCore::on_peer_failed(KernelId peer) {
  if (peer >= known_failed_.size()) known_failed_.resize(peer + 1, false);
  if (known_failed_[peer]) return;
  known_failed_[peer] = true;
  fail_towards(peer, error(Errc::closed, "kernel " + std::to_string(peer) + " failed"));
  // What it sent before it failed and has arrived is still taken, as from a live kernel; then
  // it is fenced off: its receivers go, so nothing it sends from now on is taken (a stalled
  // kernel that wakes up finds its channels closed), and the memory goes with its sending ends.
  for (std::size_t i = 0; i < inbound_.size(); ++i) {
    if (inbound_[i].from != peer) continue;
    ChannelReceiver* receiver = inbound_[i].receiver.get();
    const std::size_t taken =
        receiver->poll([this, peer](const MessageView& message) { dispatch(peer, message); },
                       std::numeric_limits<std::size_t>::max());
    Counters::bump(counters.messages_received, taken);
  }
  std::erase_if(inbound_, [&](const Inbound& in) { return in.from == peer; });
  std::erase_if(failure_waiters_, [&](const std::pair<KernelId, detail::Waiter*>& entry) {
    if (entry.first != peer) return false;
    make_ready(entry.second->handle);
    return true;
  });
  // By index: a listener may add another.
  for (std::size_t i = 0; i < failure_listeners_.size(); ++i)
    failure_listeners_[i](peer);
}

bool KernelCore::wait_failure(KernelId peer, detail::Waiter& waiter) {
  if (auto misuse = check_caller("until_failed")) {
    waiter.error = std::move(misuse);
    return false;
  }
  // This kernel itself always exists (a kernel just added runs before the others see it).
  if (peer != id && peer >= fabric.size()) {
    waiter.error = error(Errc::not_found, "until_failed: no kernel " + std::to_string(peer));
    return false;
  }
  if (peer < known_failed_.size() && known_failed_[peer]) return false;
  if (peer != id && fabric.offline(peer) && !fabric.failed(peer)) {
    waiter.error =
        error(Errc::closed, "kernel " + std::to_string(peer) + " went offline without failing");
    return false;
  }
  if (stopping_) {
    waiter.error = error(Errc::shutting_down, "kernel " + std::to_string(id) + " is stopping");
    return false;
  }
  failure_waiters_.emplace_back(peer, &waiter);
  return true;
}

void KernelCore::fail_towards(KernelId to, const Error& failure) {
  if (to < outboxes_.size() && outboxes_[to]) {
    Outbox& box = *outboxes_[to];
    while (!box.queue.empty()) {
      fail_entry(to, box.queue.front(), failure);
      box.queue.pop_front();
    }
    if (box.in_backlog) {
      box.in_backlog = false;
      std::erase(backlog_, to);
    }
    box.set_sender(nullptr);
    box.flags.reset();
    box.state = Outbox::State::unbound;
  }
  calls_.drain_to(to, [&](detail::PendingCall& call) {
    call.error = failure;
    Counters::bump(counters.calls_completed);
    make_ready(call.handle);
  });
}

void KernelCore::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  const Error failure =
      error(Errc::shutting_down, "kernel " + std::to_string(id) + " is shutting down");
  calls_.drain([&](detail::PendingCall& call) {
    call.error = failure;
    Counters::bump(counters.calls_completed);
    make_ready(call.handle);
  });
  for (auto& [peer, waiter] : failure_waiters_) {
    waiter->error = failure;
    make_ready(waiter->handle);
  }
  failure_waiters_.clear();
  for (auto& box : outboxes_) {
    if (!box) continue;
    for (OutEntry& entry : box->queue) {
      if (entry.waiter != nullptr) {
        entry.waiter->error = failure;
        make_ready(entry.waiter->handle);
      }
    }
    box->queue.clear();
    box->in_backlog = false;
  }
  backlog_.clear();
}

}  // namespace mk::runtime
