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
// (DESIGN.md, "Messages and channels"), and channels exist only between kernels that talk.
#include <string>
#include <utility>

#include "runtime/kernel_core.h"

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

std::unique_ptr<InboxItem> make_external_item(std::unique_ptr<detail::ExternalWork> work) {
  return std::make_unique<ExternalItem>(std::move(work));
}

void KernelCore::post_to(KernelId to, InboxItem* item) const noexcept {
  fabric.kernels[to]->inbox.push(item);
  fabric.ring(to);
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
    auto ends = fabric.executor->make_channel(
        id, id, ChannelKind::local,
        ChannelOptions{fabric.ring_slots, fabric.numa_nodes[id], fabric.line_size});
    if (!ends) return std::move(ends).error();
    inbound_.push_back(Inbound{id, std::move(ends->receiver), nullptr});
    box.sender = std::move(ends->sender);
    box.state = Outbox::State::bound;
    return std::nullopt;
  }
  box.state = Outbox::State::binding;
  post_to(to, new BindRequest(id));
  return std::nullopt;
}

void KernelCore::on_bind_request(KernelId from) {
  // A stopping kernel binds nothing; the requester is stopping too and fails its queue.
  if (stopping_) return;
  const ChannelKind kind = fabric.kind_between(from, id);
  auto ends = fabric.executor->make_channel(
      from, id, kind, ChannelOptions{fabric.ring_slots, fabric.numa_nodes[id], fabric.line_size});
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
  if (stopping_) return;
  Outbox& box = outbox(to);
  box.sender = std::move(sender);
  box.flags = std::move(flags);
  box.state = Outbox::State::bound;
  if (!box.queue.empty()) mark_backlog(to, box);
}

void KernelCore::on_bind_failure(KernelId to, const Error& failure) {
  Outbox& box = outbox(to);
  // Unbound again: a later send retries the binding.
  box.state = Outbox::State::unbound;
  while (!box.queue.empty()) {
    fail_entry(box.queue.front(), failure);
    box.queue.pop_front();
  }
}

void KernelCore::on_peer_offline(KernelId to) {
  const Error failure = error(Errc::closed, "kernel " + std::to_string(to) + " went offline");
  if (to < outboxes_.size() && outboxes_[to]) {
    Outbox& box = *outboxes_[to];
    while (!box.queue.empty()) {
      fail_entry(box.queue.front(), failure);
      box.queue.pop_front();
    }
    if (box.in_backlog) {
      box.in_backlog = false;
      std::erase(backlog_, to);
    }
    box.sender.reset();
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
