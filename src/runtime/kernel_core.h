// The inside of a Kernel: its loop, tasks, timers, channels and monitor, all touched only by
// the kernel's own thread (KernelShared holds the few parts other threads may touch).
#pragma once

#include <array>
#include <atomic>
#include <boost/circular_buffer.hpp>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mk/channel.h"
#include "mk/clock.h"
#include "mk/domain.h"
#include "mk/kernel.h"
#include "mk/kernel_stats.h"
#include "mk/system.h"
#include "mk/task.h"
#include "mk/urpc.h"
#include "runtime/broadcast_arena.h"
#include "runtime/call_table.h"
#include "runtime/fabric.h"
#include "runtime/handler_table.h"
#include "runtime/timer_queue.h"
#include "runtime/wire.h"

namespace mk::runtime {

class KernelCore;

/// The kernel whose turn the calling thread is running, or nullptr: API calls check with it
/// that they come from the kernel's own thread. constinit, so that reading it from another file
/// needs no call to a thread-local initialiser.
extern constinit thread_local Kernel* current_kernel;

/// A system message that makes the kernel stop (System::shutdown).
std::unique_ptr<InboxItem> make_stop_request();
/// Tells a kernel that kernel `offline` went offline (System::remove_kernel).
std::unique_ptr<InboxItem> make_peer_offline(KernelId offline);
/// Tells a kernel that kernel `failed` was declared failed.
std::unique_ptr<InboxItem> make_peer_failed(KernelId failed);
/// Work handed over by System::spawn or System::run.
std::unique_ptr<InboxItem> make_external_item(std::unique_ptr<detail::ExternalWork> work);

/// The coroutine that owns a spawned task. The kernel lists every live root so that shutdown
/// can destroy the tasks that never finished; a finished root frees itself.
struct RootPromise;
struct RootTask {
  using promise_type = RootPromise;
  std::coroutine_handle<RootPromise> handle;
};
struct RootPromise {
  RootPromise(KernelCore& core, Task<void>& task) noexcept;
  ~RootPromise();
  RootTask get_return_object() noexcept {
    return RootTask{std::coroutine_handle<RootPromise>::from_promise(*this)};
  }
  std::suspend_always initial_suspend() const noexcept { return {}; }
  std::suspend_never final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
  void unhandled_exception() noexcept;

  KernelCore& core;
  RootPromise* prev = nullptr;
  RootPromise* next = nullptr;
};

/// A message waiting for room (or for its channel to be bound), in send order.
struct OutEntry {
  MessageType type;
  std::vector<std::byte> bytes;      ///< Envelope and payload.
  detail::Waiter* waiter = nullptr;  ///< A send() waiting for this entry to go out.
  std::uint32_t call_id = 0;         ///< A request whose call fails if this entry cannot go.
};

/// This kernel's sending side towards one other kernel.
struct Outbox {
  enum class State { unbound, binding, bound };
  State state = State::unbound;
  std::unique_ptr<ChannelSender> sender;
  /// `sender` when it is a urpc sender, sent to without a virtual call; null otherwise.
  transport::UrpcSender* urpc = nullptr;
  std::shared_ptr<PairFlags> flags;
  std::deque<OutEntry> queue;  ///< Non-empty: every later message queues behind it.
  bool in_backlog = false;
  /// Messages put into the channel so far: the order an answer in line names.
  std::uint64_t sent = 0;
  /// A request may ask for its answer in its own line (the SKB's choice for the pair, and
  /// the channel is urpc).
  bool answers_in_line = false;
  /// The call whose answer is awaited in the line of its request, or 0.
  std::uint32_t answer_call = 0;
  bool answer_listed = false;  ///< In KernelCore::awaiting_answers_.
  /// That answer, seen and copied out, waits for the messages the callee sent before it.
  bool answer_held = false;
  MessageType held_type = 0;                              ///< Its message type.
  std::size_t held_length = 0;                            ///< Its bytes, InLineAnswer included.
  std::array<std::byte, transport::kMaxLineSize> held{};  ///< Those bytes.

  /// Sends through `channel` from now on (null: through nothing).
  void set_sender(std::unique_ptr<ChannelSender> channel) {
    sender = std::move(channel);
    urpc = dynamic_cast<transport::UrpcSender*>(sender.get());
    answer_call = 0;
    answer_held = false;
  }
};

/// A channel bound to this kernel from another.
struct Inbound {
  Inbound(KernelId from_in, std::unique_ptr<ChannelReceiver> receiver_in,
          std::shared_ptr<PairFlags> flags_in)
      : from(from_in),
        receiver(std::move(receiver_in)),
        urpc(dynamic_cast<transport::UrpcReceiver*>(receiver.get())),
        flags(std::move(flags_in)) {}

  KernelId from;
  /// Messages delivered from it so far: an answer in line from `from` waits for its order.
  std::uint64_t delivered = 0;
  std::unique_ptr<ChannelReceiver> receiver;
  /// `receiver` when it is a urpc receiver, polled without a virtual call; null otherwise.
  transport::UrpcReceiver* urpc;
  std::shared_ptr<PairFlags> flags;
};

/// Counters other threads may read; each written only by the kernel's thread.
struct Counters {
  std::atomic<std::uint64_t> sleeps{0};
  std::atomic<std::uint64_t> messages_received{0};
  std::atomic<std::uint64_t> messages_sent{0};
  std::atomic<std::uint64_t> calls_completed{0};
  std::atomic<std::uint64_t> task_failures{0};
  std::atomic<std::uint64_t> rejected_messages{0};
  std::atomic<std::uint64_t> channels_bound{0};
  std::atomic<std::uint64_t> turns{0};
  std::atomic<std::uint64_t> shared_fan_outs{0};
  std::atomic<std::uint64_t> answers_in_line{0};

  /// Adds one. Relaxed: counters are statistics; nothing is ordered by them.
  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  KernelStats snapshot() const noexcept;
};

/// What send-like operations did with a message.
enum class Transmit { sent, queued, failed };

/// Room for this many ready tasks before a kernel's ready queue first grows.
inline constexpr std::size_t kInitialReady = 64;

class KernelCore {
 public:
  KernelCore(Kernel& self, KernelId id, Fabric& fabric, const Clock& clock);
  KernelCore(const KernelCore&) = delete;
  KernelCore& operator=(const KernelCore&) = delete;
  ~KernelCore();

  Kernel& self;
  const KernelId id;
  Fabric& fabric;
  const Clock& clock;
  KernelShared shared;
  Counters counters;

  // Loop (kernel.cc).
  bool run_turn();
  bool has_work();
  /// Runs every registered layer's start (detail::register_layer), once, in the first turn.
  void start_layers();
  bool stopping() const noexcept { return stopping_; }
  bool stopped() const noexcept { return stopped_; }
  std::optional<Instant> next_deadline() const noexcept { return timers_.next(); }
  /// Destroys every task that never finished; after the executor stopped running the kernel.
  void teardown() noexcept;

  /// Calls f(PairFlags&) on the flags of every channel this kernel receives on.
  template <class F>
  void for_each_inbound_flags(F f) {
    for (Inbound& in : inbound_) {
      if (in.flags) f(*in.flags);
    }
  }

  // Tasks (kernel.cc).
  void spawn(Task<void> task);
  void make_ready(std::coroutine_handle<> handle) {
    // A full queue grows: circular_buffer would overwrite its oldest task instead.
    if (ready_.full()) [[unlikely]]
      grow_ready();
    ready_.push_back(handle);
  }
  void sleep_until(Instant when, detail::Waiter& waiter) { timers_.add_sleep(when, waiter); }
  bool cancel_sleep(const detail::Waiter& waiter) { return timers_.cancel_sleep(waiter); }
  void note_failure(const std::string& what);
  RootPromise*& roots() noexcept { return roots_; }

  // Failures of other kernels (monitor.cc).
  bool wait_failure(KernelId peer, detail::Waiter& waiter);
  void add_failure_listener(std::function<void(KernelId)> listener) {
    failure_listeners_.push_back(std::move(listener));
  }

  // Messages (messaging.cc).
  bool send(KernelId to, MessageType type, std::span<const std::byte> payload,
            detail::Waiter& waiter);
  bool call(KernelId to, MessageType type, std::span<const std::byte> payload,
            detail::PendingCall& call, const std::optional<Duration>& timeout);
  Result<void> post(KernelId to, MessageType type, std::span<const std::byte> payload);
  void post_fan_out(const FanOut& fan_out, MessageType type, std::span<const std::byte> payload,
                    FunctionRef<void(KernelId, const Error&)> on_failure);
  void reply(KernelId to, std::uint32_t call_id, MessageType type,
             std::span<const std::byte> payload) {
    send_reply(to, call_id, type, 0, payload);
  }
  void reply_error(KernelId to, std::uint32_t call_id, MessageType type, const Error& failure);
  Result<void> add_handler(MessageType type, std::unique_ptr<detail::HandlerBase> handler);
  /// Not-ok when an operation on `to` cannot even start; `what` names it in the error. Every
  /// send and call asks, so the answer for a usable target is found here, inline.
  std::optional<Error> check_target(KernelId to, const char* what) const {
    if (reachable(to)) [[likely]]
      return std::nullopt;
    return target_error(to, what);
  }
  /// True when an operation on `to` can start: check_target's answer without its error.
  bool reachable(KernelId to) const noexcept {
    return current_kernel == &self && to < fabric.size() && !stopping_ && !fabric.offline(to);
  }
  /// Not-ok unless called from this kernel's own turn; `what` names the operation.
  std::optional<Error> check_caller(const char* what) const {
    if (current_kernel == &self) [[likely]]
      return std::nullopt;
    return caller_error(what);
  }

  // Monitor (monitor.cc): system messages arriving through the inbox.
  bool take_inbox();
  void on_bind_request(KernelId from);
  void on_bind_reply(KernelId to, std::unique_ptr<ChannelSender> sender,
                     std::shared_ptr<PairFlags> flags);
  void on_bind_failure(KernelId to, const Error& failure);
  // The same exchange between kernel processes, over the control plane (process_monitor.cc).
  void send_bind_request(KernelId to);
  /// Makes the channel from `from` in a memfd it can map, and sends it the memfd.
  void bind_shared(KernelId from);
  /// Maps the memfd `fd` that kernel `to` sent for the channel to it (a ring of `slots` slots
  /// of `line_size` bytes, as this kernel expects), then as on_bind_reply. Takes `fd`.
  void on_shared_bind_reply(KernelId to, int fd, std::uint64_t slots, std::uint64_t line_size);
  /// Kernel `to` went offline: fails what waits to be sent to it and the calls it would
  /// have answered, with `closed`.
  void on_peer_offline(KernelId to);
  /// Kernel `peer` failed: as on_peer_offline, then its channels to this kernel are dropped
  /// (nothing it sends is taken any more), until_failed waiters resume and the listeners run.
  void on_peer_failed(KernelId peer);
  void begin_stop();
  /// Hands `item` to kernel `to`'s monitor and wakes it.
  void post_to(KernelId to, InboxItem* item) const noexcept;

  std::vector<std::unique_ptr<Dispatcher>> dispatchers;

  /// Kernel::extension's objects, in creation order; destroyed in reverse at teardown.
  struct Extension {
    const void* key;
    void* object;
    void (*destroy)(void*);
  };
  std::vector<Extension> extensions;

 private:
  /// Fails what is queued for kernel `to` and the calls awaiting its replies, and unbinds it.
  void fail_towards(KernelId to, const Error& failure);
  bool poll_channels();
  /// poll_channels' poll of inbound channel `i`, from kernel `from`, while a call to `from`
  /// awaits its answer in line: each message first delivers that answer if it came before.
  std::size_t poll_in_order(std::size_t i, KernelId from);
  /// True when poll_answers has something to do: an answer awaited in line came (or was
  /// declined), is held, or its wait ended. Inline: a spinning kernel asks in every turn.
  bool answers_changed() const noexcept {
    for (KernelId to : awaiting_answers_) {
      const Outbox& box = *outboxes_[to];
      if (box.answer_call == 0 || box.answer_held || box.urpc->answer_changed()) return true;
    }
    return false;
  }
  /// Looks at the answers awaited in line: delivers those whose turn has come, ends the waits
  /// of those declined. Only when awaiting_answers_ is not empty.
  bool poll_answers();
  /// Settles the answer awaited in line from kernel `to` once it has come, where `index`
  /// messages from `to` have been delivered: delivers it if exactly the messages `to` sent
  /// before it have; holds it while some of those are still to come; ends the wait if it was
  /// declined; rejects it if `to` broke the format or the order.
  void settle_answer(KernelId to, Outbox& box, std::uint64_t index);
  /// Ends the wait for an answer in line from kernel `to`, which broke the protocol (`what`).
  void reject_answer(KernelId to, Outbox& box, const char* what);
  /// The caller's side: sends a request that asks for its answer in its own line, when
  /// nothing stands in the way (the caller checked that `to`'s outbox answers in line); false,
  /// having sent nothing, otherwise.
  bool ask_in_line(KernelId to, MessageType type, const Envelope& envelope,
                   std::span<const std::byte> payload);
  /// The callee's side: answers the request being handled in its own line; false when it
  /// cannot (the reply then goes through the channel).
  bool answer_in_line(KernelId to, std::uint32_t call_id, MessageType type, std::uint8_t status,
                      std::span<const std::byte> payload);
  /// Drops inbound channel `index`, whose sender broke its format, and reports it.
  void close_faulty(std::size_t index);
  void dispatch(KernelId from, const MessageView& message);
  /// dispatch of a request that asks for its answer in its line (`receiver`, whose channel's
  /// flags are `flags`): its handler gets a copy of it, and a reply it gives before returning
  /// goes into the line.
  void dispatch_asking(KernelId from, const MessageView& message, transport::UrpcReceiver& receiver,
                       PairFlags* flags);
  /// A shared_ref message from `from`: its payload is read in place from `from`'s broadcast
  /// buffers, handled as a one-way message, then released.
  void dispatch_shared(KernelId from, MessageType type, std::span<const std::byte> body);
  /// Hands a message's body to the handler for `type` (call_id nonzero: a request).
  void deliver(KernelId from, MessageType type, std::uint32_t call_id,
               std::span<const std::byte> body);
  // deliver's slow halves, out of line: no handler for `type` (a request is answered with
  // no_handler), and a handler that threw (called inside the catch: a request is answered
  // with handler_failed, a one-way message is logged).
  [[gnu::noinline]] void refuse_unhandled(KernelId from, std::uint32_t call_id, MessageType type);
  [[gnu::noinline]] void handler_threw(KernelId from, std::uint32_t call_id, MessageType type);
  /// post() with a given envelope.
  Result<void> post_as(KernelId to, MessageType type, const Envelope& envelope,
                       std::span<const std::byte> payload);
  /// Writes `payload` once into this kernel's broadcast buffers for every send of `fan_out`
  /// and posts each a SharedRef; false, having posted nothing, when it cannot (then the caller
  /// posts copies).
  bool post_shared(const FanOut& fan_out, MessageType type, std::span<const std::byte> payload,
                   FunctionRef<void(KernelId, const Error&)> on_failure);
  void send_reply(KernelId to, std::uint32_t call_id, MessageType type, std::uint8_t status,
                  std::span<const std::byte> payload);
  void on_reply(const Envelope& envelope, MessageType type, std::span<const std::byte> body);
  /// Why a reply completes its call with an error: the callee's failure, or a reply of the
  /// wrong size. Out of line, so that on_reply's path for a good reply builds no strings.
  [[gnu::noinline]] static Error failed_reply(const Envelope& envelope, MessageType type,
                                              std::span<const std::byte> body,
                                              const detail::PendingCall& call);
  // The slow halves of call, out of line: a call refused before it is sent (why: check_target,
  // or the call table is full), one its ring did not take at once (transmit_slowly; false
  // when it failed, with the call taken back and its error set), and a call's deadline.
  [[gnu::noinline]] bool refuse_call(KernelId to, detail::PendingCall& call);
  [[gnu::noinline]] bool send_call_slowly(KernelId to, MessageType type, const Envelope& envelope,
                                          std::span<const std::byte> payload,
                                          std::optional<SendStatus> tried,
                                          detail::PendingCall& call);
  /// send_reply's slow half, like send_call_slowly; a reply that fails is logged and lost.
  [[gnu::noinline]] void send_reply_slowly(KernelId to, MessageType type, const Envelope& envelope,
                                           std::span<const std::byte> payload,
                                           std::optional<SendStatus> tried);
  [[gnu::noinline]] void arm_deadline(Duration timeout, const CallTable::Entry& entry,
                                      MessageType type, KernelId to);
  /// Fires the due timers. Only when timers_ is not empty: run_turn looks first, so that an
  /// idle turn makes no calls.
  bool fire_timers();
  /// Resumes the tasks that were ready when it began. Only when ready_ is not empty.
  bool run_ready();
  /// The outbox to kernel `to`, made on first use.
  Outbox& outbox(KernelId to) {
    if (to < outboxes_.size() && outboxes_[to]) [[likely]]
      return *outboxes_[to];
    return add_outbox(to);
  }
  // The slow halves of outbox, check_target and check_caller, out of line.
  Outbox& add_outbox(KernelId to);
  std::optional<Error> target_error(KernelId to, const char* what) const;
  Error caller_error(const char* what) const;
  std::optional<Error> start_bind(KernelId to, Outbox& box);
  /// Puts a message into the ring at once when its outbox is bound and holds nothing queued,
  /// and gives the ring's answer (ok: sent, counted, and the receiver rung if it sleeps).
  /// Empty, having tried nothing, when the message must wait for a binding or behind others.
  [[gnu::always_inline]] std::optional<SendStatus> send_now(KernelId to, MessageType type,
                                                            const Envelope& envelope,
                                                            std::span<const std::byte> payload) {
    if (to >= outboxes_.size() || !outboxes_[to]) return std::nullopt;
    Outbox& box = *outboxes_[to];
    if (box.state != Outbox::State::bound || !box.queue.empty()) return std::nullopt;
    // The envelope goes into the ring in front of the payload, straight from here.
    const auto head = std::as_bytes(std::span(&envelope, 1));
    const SendStatus status = box.urpc != nullptr ? box.urpc->try_send_parts(type, head, payload)
                                                  : box.sender->try_send_parts(type, head, payload);
    if (status == SendStatus::ok) went_out(to, box);
    return status;
  }
  /// Counts a message that went into the channel of `box` (to kernel `to`) and rings the
  /// receiver if it sleeps.
  void went_out(KernelId to, Outbox& box) {
    ++box.sent;
    Counters::bump(counters.messages_sent);
    if (box.flags) box.flags->ring_receiver(fabric.kernels[to]->doorbell);
  }
  /// Sends, queues or fails a message: every send, post, call and reply goes through here.
  /// Inline, as the usual case is send_now's; the rest is transmit_slowly's. `failure` is set
  /// when the result is failed.
  [[gnu::always_inline]] Transmit transmit(KernelId to, MessageType type, const Envelope& envelope,
                                           std::span<const std::byte> payload,
                                           detail::Waiter* waiter, std::optional<Error>& failure) {
    const std::optional<SendStatus> tried = send_now(to, type, envelope, payload);
    if (tried == SendStatus::ok) [[likely]]
      return Transmit::sent;
    return transmit_slowly(to, type, envelope, payload, waiter, tried, failure);
  }
  /// transmit when send_now did not send (`tried` is its answer): binds an unbound outbox and
  /// tries the ring again if that bound it at once, fails a message the ring refused for good,
  /// queues the others.
  Transmit transmit_slowly(KernelId to, MessageType type, const Envelope& envelope,
                           std::span<const std::byte> payload, detail::Waiter* waiter,
                           std::optional<SendStatus> tried, std::optional<Error>& failure);
  bool flush(KernelId to, Outbox& box);
  /// Sends what the outboxes in backlog_ hold, as far as their rings take it. Only when
  /// backlog_ is not empty.
  bool flush_backlog();
  /// Fails a message that was queued for kernel `to` and will never be sent.
  void fail_entry(KernelId to, OutEntry& entry, const Error& failure);
  void mark_backlog(KernelId to, Outbox& box);

  friend class ::mk::Kernel;

  /// Doubles ready_'s capacity, keeping its tasks in order.
  void grow_ready();

  /// Tasks to resume, in order: a ring, so a turn's pushes and pops touch no allocator.
  boost::circular_buffer<std::coroutine_handle<>> ready_{kInitialReady};
  RootPromise* roots_ = nullptr;
  TimerQueue timers_;
  CallTable calls_{timers_};
  std::vector<std::unique_ptr<Outbox>> outboxes_;  ///< By KernelId; made on first use.
  std::vector<KernelId> backlog_;                  ///< Outboxes with queued messages.
  /// Outboxes whose call awaits its answer in line (Outbox::answer_listed).
  std::vector<KernelId> awaiting_answers_;
  /// The request being handled that asked for an answer in its line: its caller, its call id
  /// (0: none), the channel it came by and that channel's flags.
  KernelId answering_from_ = 0;
  std::uint32_t answering_call_ = 0;
  transport::UrpcReceiver* answering_urpc_ = nullptr;
  PairFlags* answering_flags_ = nullptr;
  std::vector<Inbound> inbound_;
  HandlerTable handlers_;
  /// This kernel's broadcast buffers, once a shared fan-out made them (KernelShared publishes
  /// them to readers).
  std::unique_ptr<BroadcastArena> arena_;
  bool arena_refused_ = false;  ///< Making them failed once: fan-outs send copies.
  /// Tasks in until_failed, with the kernel each waits for.
  std::vector<std::pair<KernelId, detail::Waiter*>> failure_waiters_;
  std::vector<std::function<void(KernelId)>> failure_listeners_;
  std::vector<bool> known_failed_;  ///< By KernelId: the failure was handled here.
  bool layers_started_ = false;
  bool stopping_ = false;
  bool stopped_ = false;
  std::size_t stop_turns_ = 0;
  bool torn_down_ = false;
};

}  // namespace mk::runtime
