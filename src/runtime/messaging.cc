// Sending, calling, replying and dispatching: a kernel's side of its channels.
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>

#include "mk/slot_format.h"
#include "runtime/kernel_core.h"
#include "runtime/log.h"

namespace mk::runtime {

namespace {

Error send_failure(SendStatus status, KernelId to, MessageType type, std::size_t size) {
  if (status == SendStatus::too_large) {
    return error(Errc::too_large,
                 "message type " + std::to_string(type) + " of " + std::to_string(size) +
                     " bytes does not fit the channel to kernel " + std::to_string(to));
  }
  return error(Errc::closed, "the channel to kernel " + std::to_string(to) + " is closed");
}

}  // namespace

Error KernelCore::caller_error(const char* what) const {
  return error(Errc::invalid_argument, std::string("Kernel::") + what + " on kernel " +
                                           std::to_string(id) +
                                           " from a thread that is not running it");
}

std::optional<Error> KernelCore::target_error(KernelId to, const char* what) const {
  if (auto misuse = check_caller(what)) return misuse;
  if (to >= fabric.size()) {
    return error(Errc::not_found, std::string(what) + " to kernel " + std::to_string(to) +
                                      ": no such kernel (the system has " +
                                      std::to_string(fabric.size()) + ")");
  }
  // A stopping kernel refuses with shutting_down whatever became of `to`: at shutdown its
  // peers stop too, and which one a send finds gone first is a race.
  if (stopping_) {
    return error(Errc::shutting_down,
                 std::string(what) + " on kernel " + std::to_string(id) + ": shutting down");
  }
  // `to` < size(), checked above: only the flag is left to read.
  if (fabric.offline(to)) {
    return error(Errc::closed, std::string(what) + " to kernel " + std::to_string(to) +
                                   ": the kernel is offline");
  }
  return std::nullopt;
}

bool KernelCore::send(KernelId to, MessageType type, std::span<const std::byte> payload,
                      detail::Waiter& waiter) {
  if (auto failure = check_target(to, "send")) {
    waiter.error = std::move(failure);
    return false;
  }
  std::optional<Error> failure;
  switch (transmit(to, type, Envelope{0, WireKind::one_way, 0, 0}, payload, &waiter, failure)) {
    case Transmit::sent:
      return false;
    case Transmit::queued:
      return true;
    case Transmit::failed:
      waiter.error = std::move(failure);
      return false;
  }
  return false;
}

Result<void> KernelCore::post(KernelId to, MessageType type, std::span<const std::byte> payload) {
  return post_as(to, type, Envelope{0, WireKind::one_way, 0, 0}, payload);
}

Result<void> KernelCore::post_as(KernelId to, MessageType type, const Envelope& envelope,
                                 std::span<const std::byte> payload) {
  if (auto failure = check_target(to, "post")) return std::move(*failure);
  std::optional<Error> failure;
  if (transmit(to, type, envelope, payload, nullptr, failure) == Transmit::failed) {
    return std::move(*failure);
  }
  return {};
}

void KernelCore::post_fan_out(const FanOut& fan_out, MessageType type,
                              std::span<const std::byte> payload,
                              FunctionRef<void(KernelId, const Error&)> on_failure) {
  fabric.executor->begin_fan_out(id, fan_out);
  // Ends the fan-out however the posts end: on_failure may throw.
  struct End {
    Executor& executor;
    KernelId from;
    ~End() { executor.end_fan_out(from); }
  } end{*fabric.executor, id};
  // One reader gains nothing from a shared buffer and would pay a second line for the ref.
  if (fan_out.shared_buffer && fan_out.sends.size() >= 2 && fabric.shared_buffers &&
      post_shared(fan_out, type, payload, on_failure)) {
    return;
  }
  for (const FanOutSend& send : fan_out.sends) {
    if (auto posted = post(send.to, type, payload); !posted) on_failure(send.to, posted.error());
  }
}

bool KernelCore::post_shared(const FanOut& fan_out, MessageType type,
                             std::span<const std::byte> payload,
                             FunctionRef<void(KernelId, const Error&)> on_failure) {
  if (!arena_) {
    if (arena_refused_) return false;
    auto made = BroadcastArena::make(fabric.kernels.size());
    if (!made) {
      arena_refused_ = true;
      log_line("kernel " + std::to_string(id) +
               ": fan-outs send a copy to each receiver: " + made.error().describe());
      return false;
    }
    arena_ = std::move(*made);
    // Release: a reader that finds the arena through a shared_ref message is ordered after
    // this by the channel already; the release covers one that finds it otherwise.
    shared.broadcast_arena.store(arena_.get(), std::memory_order_release);
  }
  // A kernel taken offline by remove_kernel had its thread joined first: it reads nothing
  // more. A failed one may be stuck in a handler reading a slot, so it keeps its holds.
  auto gone = [this](KernelId kernel) {
    return kernel < fabric.size() && fabric.offline(kernel) && !fabric.failed(kernel);
  };
  const std::optional<SharedRef> ref = arena_->publish(payload, fan_out.sends, gone);
  if (!ref) return false;
  Counters::bump(counters.shared_fan_outs);
  const auto body = encode_shared_ref(*ref);
  const Envelope envelope{0, WireKind::shared_ref, 0, 0};
  std::size_t next = 0;
  try {
    for (; next < fan_out.sends.size(); ++next) {
      const KernelId to = fan_out.sends[next].to;
      if (auto posted = post_as(to, type, envelope, body); !posted) {
        // Nobody will read it for `to`: its hold goes with the message.
        arena_->release(*ref, to);
        on_failure(to, posted.error());
      }
    }
  } catch (...) {
    // on_failure threw: the receivers not yet posted to will never read the slot either.
    for (++next; next < fan_out.sends.size(); ++next)
      arena_->release(*ref, fan_out.sends[next].to);
    throw;
  }
  return true;
}

bool KernelCore::call(KernelId to, MessageType type, std::span<const std::byte> payload,
                      detail::PendingCall& call, const std::optional<Duration>& timeout) {
  // Everything but a call that goes straight into its ring is out of line: the path every
  // call takes then holds no Error and saves few registers.
  if (!reachable(to)) [[unlikely]]
    return refuse_call(to, call);
  const std::optional<CallTable::Entry> entry = calls_.add(call, to);
  if (!entry) [[unlikely]]
    return refuse_call(to, call);
  const Envelope envelope{entry->id, WireKind::request, 0, 0};
  // Only pairs that answer in line pay for the look at the rest of what that needs.
  const bool in_line = to < outboxes_.size() && outboxes_[to] && outboxes_[to]->answers_in_line &&
                       ask_in_line(to, type, envelope, payload);
  if (!in_line) {
    const std::optional<SendStatus> tried = send_now(to, type, envelope, payload);
    if (tried != SendStatus::ok && !send_call_slowly(to, type, envelope, payload, tried, call))
        [[unlikely]] {
      return false;
    }
  }
  if (timeout) [[unlikely]]
    arm_deadline(*timeout, *entry, type, to);
  return true;
}

bool KernelCore::refuse_call(KernelId to, detail::PendingCall& call) {
  if (auto failure = check_target(to, "call")) {
    call.error = std::move(failure);
  } else {
    call.error = CallTable::full_error();
  }
  return false;
}

bool KernelCore::send_call_slowly(KernelId to, MessageType type, const Envelope& envelope,
                                  std::span<const std::byte> payload,
                                  std::optional<SendStatus> tried, detail::PendingCall& call) {
  std::optional<Error> failure;
  if (transmit_slowly(to, type, envelope, payload, nullptr, tried, failure) != Transmit::failed) {
    return true;
  }
  calls_.take(envelope.call_id);
  call.error = std::move(failure);
  return false;
}

void KernelCore::arm_deadline(Duration timeout, const CallTable::Entry& entry, MessageType type,
                              KernelId to) {
  timers_.add_deadline(clock.now() + timeout, entry.id, entry.serial, type, to);
  calls_.set_timed(entry.id);
}

void KernelCore::reply_error(KernelId to, std::uint32_t call_id, MessageType type,
                             const Error& failure) {
  const std::string_view text = std::string_view(failure.message).substr(0, kMaxMessageBody);
  send_reply(to, call_id, type, status_of(failure.code),
             std::as_bytes(std::span(text.data(), text.size())));
}

bool KernelCore::ask_in_line(KernelId to, MessageType type, const Envelope& envelope,
                             std::span<const std::byte> payload) {
  Outbox& box = *outboxes_[to];
  // Only a call alone in flight: calls that overlap are answered through the channel back,
  // where their requests and replies share lines, and those behind queued messages too (they
  // must not overtake them).
  if (calls_.in_flight() != 1 || box.answer_call != 0 || box.urpc == nullptr ||
      box.state != Outbox::State::bound || !box.queue.empty()) {
    return false;
  }
  if (box.urpc->send_for_answer(type, std::as_bytes(std::span(&envelope, 1)), payload) !=
      SendStatus::ok) {
    return false;  // transmit sends it the usual way, or queues it, or says why not.
  }
  went_out(to, box);
  box.answer_call = envelope.call_id;
  if (!box.answer_listed) {
    box.answer_listed = true;
    awaiting_answers_.push_back(to);
  }
  return true;
}

bool KernelCore::answer_in_line(KernelId to, std::uint32_t call_id, MessageType type,
                                std::uint8_t status, std::span<const std::byte> payload) {
  answering_call_ = 0;  // One answer per request, whatever becomes of this one.
  if (answering_urpc_ == nullptr) return false;
  Outbox* box = to < outboxes_.size() ? outboxes_[to].get() : nullptr;
  // Queued messages were sent before this reply: it must not overtake them.
  if (box != nullptr && !box->queue.empty()) return false;
  const InLineAnswer head{static_cast<std::uint32_t>(box != nullptr ? box->sent : 0),
                          Envelope{call_id, WireKind::reply, status, 0}};
  if (!answering_urpc_->answer(type, std::as_bytes(std::span(&head, 1)), payload)) return false;
  Counters::bump(counters.messages_sent);
  Counters::bump(counters.answers_in_line);
  // The caller may be asleep waiting for it, as a sender waits for room.
  if (answering_flags_ != nullptr) answering_flags_->ring_sender(fabric.kernels[to]->doorbell);
  return true;
}

void KernelCore::send_reply(KernelId to, std::uint32_t call_id, MessageType type,
                            std::uint8_t status, std::span<const std::byte> payload) {
  // An offline caller waits for nothing any more.
  if (stopping_ || fabric.offline(to)) return;
  if (call_id == answering_call_ && to == answering_from_ &&
      answer_in_line(to, call_id, type, status, payload)) {
    return;
  }
  const Envelope envelope{call_id, WireKind::reply, status, 0};
  const std::optional<SendStatus> tried = send_now(to, type, envelope, payload);
  if (tried != SendStatus::ok) [[unlikely]]
    send_reply_slowly(to, type, envelope, payload, tried);
}

void KernelCore::send_reply_slowly(KernelId to, MessageType type, const Envelope& envelope,
                                   std::span<const std::byte> payload,
                                   std::optional<SendStatus> tried) {
  std::optional<Error> failure;
  if (transmit_slowly(to, type, envelope, payload, nullptr, tried, failure) == Transmit::failed) {
    note_failure("reply to kernel " + std::to_string(to) + " lost: " + failure->describe());
  }
}

Result<void> KernelCore::add_handler(MessageType type,
                                     std::unique_ptr<detail::HandlerBase> handler) {
  if (Kernel::current() != &self) {
    return error(Errc::invalid_argument, "Kernel::handle on kernel " + std::to_string(id) +
                                             " from a thread that is not running it");
  }
  if (!handlers_.add(type, std::move(handler))) {
    return error(Errc::already_exists, "kernel " + std::to_string(id) +
                                           " already has a handler for message type " +
                                           std::to_string(type));
  }
  return {};
}

Outbox& KernelCore::add_outbox(KernelId to) {
  // Kernels can be added while this one runs; the table grows when first asked past its end.
  if (to >= outboxes_.size()) outboxes_.resize(to + 1);
  auto& box = outboxes_[to];
  if (!box) box = std::make_unique<Outbox>();
  return *box;
}

Transmit KernelCore::transmit_slowly(KernelId to, MessageType type, const Envelope& envelope,
                                     std::span<const std::byte> payload, detail::Waiter* waiter,
                                     std::optional<SendStatus> tried,
                                     std::optional<Error>& failure) {
  Outbox& box = outbox(to);
  if (!tried && box.state == Outbox::State::unbound) {
    if (auto bind_failure = start_bind(to, box)) {
      failure = std::move(bind_failure);
      return Transmit::failed;
    }
    // A kernel's channel to itself is bound at once: its ring may take the message now.
    tried = send_now(to, type, envelope, payload);
    if (tried == SendStatus::ok) return Transmit::sent;
  }
  const auto head = std::as_bytes(std::span(&envelope, 1));
  if (tried && *tried != SendStatus::full) {
    failure = send_failure(*tried, to, type, head.size() + payload.size());
    return Transmit::failed;
  }
  std::vector<std::byte> bytes;
  bytes.reserve(head.size() + payload.size());
  bytes.insert(bytes.end(), head.begin(), head.end());
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  box.queue.push_back(OutEntry{type, std::move(bytes), waiter,
                               envelope.kind == WireKind::request ? envelope.call_id : 0});
  if (box.state == Outbox::State::bound) mark_backlog(to, box);
  return Transmit::queued;
}

void KernelCore::mark_backlog(KernelId to, Outbox& box) {
  if (box.in_backlog) return;
  box.in_backlog = true;
  backlog_.push_back(to);
}

void KernelCore::fail_entry(KernelId to, OutEntry& entry, const Error& failure) {
  Envelope envelope;
  std::memcpy(&envelope, entry.bytes.data(), kEnvelopeSize);
  if (envelope.kind == WireKind::shared_ref && arena_) {
    // Queued by this kernel, so well formed: `to` will never read the slot it names.
    if (auto ref = decode_shared_ref(std::span(entry.bytes).subspan(kEnvelopeSize))) {
      arena_->release(*ref, to);
    }
  }
  if (entry.waiter != nullptr) {
    entry.waiter->error = failure;
    make_ready(entry.waiter->handle);
  } else if (entry.call_id != 0) {
    if (detail::PendingCall* call = calls_.take(entry.call_id)) {
      call->error = failure;
      Counters::bump(counters.calls_completed);
      make_ready(call->handle);
    }
  } else {
    note_failure("message to be sent lost: " + failure.describe());
  }
}

bool KernelCore::flush(KernelId to, Outbox& box) {
  bool sent = false;
  while (!box.queue.empty()) {
    OutEntry& entry = box.queue.front();
    const SendStatus status = box.sender->try_send(entry.type, entry.bytes);
    if (status == SendStatus::full) break;
    if (status == SendStatus::ok) {
      sent = true;
      ++box.sent;
      Counters::bump(counters.messages_sent);
      if (entry.waiter != nullptr) make_ready(entry.waiter->handle);
    } else {
      fail_entry(to, entry, send_failure(status, to, entry.type, entry.bytes.size()));
    }
    box.queue.pop_front();
  }
  if (sent && box.flags) box.flags->ring_receiver(fabric.kernels[to]->doorbell);
  return sent;
}

bool KernelCore::flush_backlog() {
  bool progress = false;
  for (std::size_t i = 0; i < backlog_.size();) {
    Outbox& box = *outboxes_[backlog_[i]];
    progress |= flush(backlog_[i], box);
    if (box.queue.empty()) {
      box.in_backlog = false;
      backlog_[i] = backlog_.back();
      backlog_.pop_back();
    } else {
      ++i;
    }
  }
  return progress;
}

bool KernelCore::poll_channels() {
  bool received = false;
  // By index: a handler calling this kernel itself binds a local channel, growing inbound_;
  // a faulty channel is dropped, and the one moved into its place is polled next.
  for (std::size_t i = 0; i < inbound_.size();) {
    const KernelId from = inbound_[i].from;
    ChannelReceiver* receiver = inbound_[i].receiver.get();
    transport::UrpcReceiver* urpc = inbound_[i].urpc;
    std::size_t count;
    if (!awaiting_answers_.empty() && from < outboxes_.size() && outboxes_[from] &&
        outboxes_[from]->answer_call != 0) [[unlikely]] {
      count = poll_in_order(i, from);
    } else if (urpc != nullptr) {
      auto on_message = [this, from, urpc, i](const MessageView& message) {
        if (urpc->answer_asked()) [[unlikely]] {
          dispatch_asking(from, message, *urpc, inbound_[i].flags.get());
        } else {
          dispatch(from, message);
        }
      };
      count = urpc->poll_each(on_message, fabric.poll_batch);
      inbound_[i].delivered += count;
    } else {
      auto on_message = [this, from](const MessageView& message) { dispatch(from, message); };
      count = receiver->poll(on_message, fabric.poll_batch);
      inbound_[i].delivered += count;
    }
    if (receiver->fault() != nullptr) [[unlikely]] {
      close_faulty(i);
      received = true;
      continue;
    }
    ++i;
    if (count == 0) continue;
    received = true;
    Counters::bump(counters.messages_received, count);
    PairFlags* flags = inbound_[i - 1].flags.get();
    // A sender waiting for room that this poll did not show it would wake only to sleep again.
    if (flags == nullptr || !receiver->made_room()) continue;
    // The sender may be asleep waiting for the room this poll made.
    flags->ring_sender(fabric.kernels[from]->doorbell);
  }
  return received;
}

std::size_t KernelCore::poll_in_order(std::size_t i, KernelId from) {
  Outbox& box = *outboxes_[from];
  // By index, not by reference: a handler may grow inbound_.
  transport::UrpcReceiver* urpc = inbound_[i].urpc;
  auto on_message = [this, i, from, &box, urpc](const MessageView& message) {
    if (box.answer_call != 0 && (box.answer_held || box.urpc->answer_changed())) {
      settle_answer(from, box, inbound_[i].delivered);
    }
    ++inbound_[i].delivered;
    if (urpc != nullptr && urpc->answer_asked()) {
      dispatch_asking(from, message, *urpc, inbound_[i].flags.get());
    } else {
      dispatch(from, message);
    }
  };
  return urpc != nullptr ? urpc->poll_each(on_message, fabric.poll_batch)
                         : inbound_[i].receiver->poll(on_message, fabric.poll_batch);
}

void KernelCore::settle_answer(KernelId to, Outbox& box, std::uint64_t index) {
  InLineAnswer head;
  MessageType type;
  std::span<const std::byte> body;
  if (!box.answer_held) {
    MessageView answer;
    switch (box.urpc->poll_answer(answer)) {
      case transport::UrpcSender::AnswerState::pending:
        return;
      case transport::UrpcSender::AnswerState::declined:
        box.answer_call = 0;
        return;
      case transport::UrpcSender::AnswerState::broken:
        reject_answer(to, box, "wrote neither an answer nor a refusal into a request's line");
        return;
      case transport::UrpcSender::AnswerState::answered:
        break;
    }
    if (answer.payload.size() < sizeof head) {
      reject_answer(to, box, "answered in line without the answer's header");
      return;
    }
    std::memcpy(&head, answer.payload.data(), sizeof head);
    type = answer.type;
    body = answer.payload.subspan(sizeof head);
    if (static_cast<std::int32_t>(head.order - static_cast<std::uint32_t>(index)) > 0) {
      // The callee sent messages before it that are still to be delivered: the answer waits
      // for them, out of the slot that the next request will overwrite.
      std::memcpy(box.held.data(), answer.payload.data(), answer.payload.size());
      box.held_length = answer.payload.size();
      box.held_type = type;
      box.answer_held = true;
      return;
    }
  } else {
    std::memcpy(&head, box.held.data(), sizeof head);
    type = box.held_type;
    body = std::span<const std::byte>(box.held).subspan(sizeof head, box.held_length - sizeof head);
  }
  const auto ahead = static_cast<std::int32_t>(head.order - static_cast<std::uint32_t>(index));
  if (ahead > 0) return;
  if (ahead < 0) {
    reject_answer(to, box, "answered in line before messages already delivered");
    return;
  }
  box.answer_call = 0;
  box.answer_held = false;
  if (head.envelope.kind != WireKind::reply) {
    Counters::bump(counters.rejected_messages);
    return;
  }
  on_reply(head.envelope, type, body);
}

void KernelCore::reject_answer(KernelId to, Outbox& box, const char* what) {
  box.answer_call = 0;
  box.answer_held = false;
  Counters::bump(counters.rejected_messages);
  note_failure("kernel " + std::to_string(id) + ": kernel " + std::to_string(to) + " " + what);
}

bool KernelCore::poll_answers() {
  bool worked = false;
  for (std::size_t k = 0; k < awaiting_answers_.size();) {
    const KernelId to = awaiting_answers_[k];
    Outbox& box = *outboxes_[to];
    if (box.answer_call != 0) {
      const Inbound* in = nullptr;
      for (const Inbound& candidate : inbound_) {
        if (candidate.from == to) in = &candidate;
      }
      settle_answer(to, box, in != nullptr ? in->delivered : 0);
      // The callee's earlier messages were visible before its answer was: if none is waiting,
      // it claims messages it never sent.
      if (box.answer_held && (in == nullptr || !in->receiver->has_message())) {
        reject_answer(to, box, "answered in line after messages it never sent");
      }
    }
    if (box.answer_call == 0) {
      box.answer_listed = false;
      awaiting_answers_[k] = awaiting_answers_.back();
      awaiting_answers_.pop_back();
      worked = true;
    } else {
      ++k;
    }
  }
  return worked;
}

void KernelCore::close_faulty(std::size_t index) {
  const KernelId from = inbound_[index].from;
  Counters::bump(counters.rejected_messages);
  note_failure("kernel " + std::to_string(id) + ": the channel from kernel " +
               std::to_string(from) + " is closed: " + inbound_[index].receiver->fault()->message);
  // Its sender sees the channel closed; every other channel is served as before.
  inbound_.erase(inbound_.begin() + static_cast<std::ptrdiff_t>(index));
}

void KernelCore::dispatch(KernelId from, const MessageView& message) {
  if (message.payload.size() < kEnvelopeSize) {
    Counters::bump(counters.rejected_messages);
    return;
  }
  Envelope envelope;
  std::memcpy(&envelope, message.payload.data(), kEnvelopeSize);
  const auto body = message.payload.subspan(kEnvelopeSize);
  if (envelope.kind == WireKind::reply) {
    on_reply(envelope, message.type, body);
    return;
  }
  if (envelope.kind == WireKind::shared_ref) {
    dispatch_shared(from, message.type, body);
    return;
  }
  const bool is_request = envelope.kind == WireKind::request;
  if ((!is_request && envelope.kind != WireKind::one_way) ||
      (is_request && envelope.call_id == 0)) {
    Counters::bump(counters.rejected_messages);
    return;
  }
  deliver(from, message.type, is_request ? envelope.call_id : 0, body);
}

void KernelCore::dispatch_asking(KernelId from, const MessageView& message,
                                 transport::UrpcReceiver& receiver, PairFlags* flags) {
  Envelope envelope;
  if (message.payload.size() >= kEnvelopeSize) {
    std::memcpy(&envelope, message.payload.data(), kEnvelopeSize);
  }
  if (message.payload.size() < kEnvelopeSize || envelope.kind != WireKind::request ||
      envelope.call_id == 0) {
    // Only a request has an answer to give: the sender broke the protocol. The transport
    // declines the line when this returns.
    Counters::bump(counters.rejected_messages);
    return;
  }
  // The answer overwrites the request's line, and the caller may write its next request there
  // as soon as it has read the answer: the handler reads a copy.
  const auto body = message.payload.subspan(kEnvelopeSize);
  std::array<std::byte, transport::kMaxLineSize> request;
  std::memcpy(request.data(), body.data(), body.size());
  answering_from_ = from;
  answering_call_ = envelope.call_id;
  answering_urpc_ = &receiver;
  answering_flags_ = flags;
  deliver(from, message.type, envelope.call_id, std::span(request.data(), body.size()));
  answering_call_ = 0;
  answering_urpc_ = nullptr;
  answering_flags_ = nullptr;
}

void KernelCore::dispatch_shared(KernelId from, MessageType type, std::span<const std::byte> body) {
  auto refuse = [&](const std::string& why) {
    Counters::bump(counters.rejected_messages);
    log_line("kernel " + std::to_string(id) + ": message type " + std::to_string(type) +
             " from kernel " + std::to_string(from) + " dropped: " + why);
  };
  const std::optional<SharedRef> ref = decode_shared_ref(body);
  if (!ref) {
    return refuse("a broadcast buffer's name is " + std::to_string(kSharedRefSize) +
                  " bytes, not " + std::to_string(body.size()));
  }
  // Acquire: pairs with post_shared's release (see there).
  BroadcastArena* arena = fabric.kernels[from]->broadcast_arena.load(std::memory_order_acquire);
  if (arena == nullptr) return refuse("it names a broadcast buffer, and its sender has none");
  auto payload = arena->read(*ref, id);
  if (!payload) return refuse(payload.error().message);
  // Released however deliver() ends.
  struct Release {
    BroadcastArena& arena;
    SharedRef ref;
    KernelId reader;
    ~Release() { arena.release(ref, reader); }
  } release{*arena, *ref, id};
  deliver(from, type, 0, *payload);
}

void KernelCore::deliver(KernelId from, MessageType type, std::uint32_t call_id,
                         std::span<const std::byte> body) {
  detail::HandlerBase* handler = handlers_.find(type);
  if (handler == nullptr) [[unlikely]] {
    refuse_unhandled(from, call_id, type);
    return;
  }
  try {
    handler->on_message(self, from, call_id, body);
  } catch (...) {
    handler_threw(from, call_id, type);
  }
}

void KernelCore::refuse_unhandled(KernelId from, std::uint32_t call_id, MessageType type) {
  Counters::bump(counters.rejected_messages);
  if (call_id == 0) return;
  reply_error(
      from, call_id, type,
      error(Errc::no_handler, "kernel " + std::to_string(id) + " has no handler for message type " +
                                  std::to_string(type)));
}

void KernelCore::handler_threw(KernelId from, std::uint32_t call_id, MessageType type) {
  const Error failure = error(
      Errc::handler_failed, "handler for message type " + std::to_string(type) +
                                " failed: " + detail::describe_exception(std::current_exception()));
  if (call_id != 0) {
    reply_error(from, call_id, type, failure);
  } else {
    note_failure(failure.describe());
  }
}

void KernelCore::on_reply(const Envelope& envelope, MessageType type,
                          std::span<const std::byte> body) {
  detail::PendingCall* call = calls_.take(envelope.call_id);
  if (call == nullptr) [[unlikely]] {
    // A reply after its call timed out, or a forged id.
    Counters::bump(counters.rejected_messages);
    return;
  }
  if (envelope.status == 0 && (call->exact ? body.size() == call->reply.size()
                                           : body.size() <= call->reply.size())) [[likely]] {
    transport::copy_bytes(call->reply.data(), body);
    call->reply_length = body.size();
  } else {
    call->error = failed_reply(envelope, type, body, *call);
  }
  Counters::bump(counters.calls_completed);
  make_ready(call->handle);
}

Error KernelCore::failed_reply(const Envelope& envelope, MessageType type,
                               std::span<const std::byte> body, const detail::PendingCall& call) {
  if (envelope.status == 0) {
    return error(Errc::parse_error, "reply to message type " + std::to_string(type) + ": " +
                                        std::to_string(body.size()) + " bytes, expected " +
                                        (call.exact ? "" : "at most ") +
                                        std::to_string(call.reply.size()));
  }
  std::string text(reinterpret_cast<const char*>(body.data()), body.size());
  if (const auto code = errc_of(envelope.status)) return error(*code, std::move(text));
  return error(Errc::parse_error, "reply to message type " + std::to_string(type) +
                                      " with unknown status " + std::to_string(envelope.status));
}

}  // namespace mk::runtime
