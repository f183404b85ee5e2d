// NameWatch: a task's end of a watch queue.
#include <utility>

#include "mk/naming.h"
#include "services/watch_registry.h"

namespace mk {

NameWatch::NameWatch(std::shared_ptr<detail::WatchQueue> queue) noexcept
    : queue_(std::move(queue)) {}

NameWatch::~NameWatch() = default;

std::size_t NameWatch::queued() const noexcept {
  return queue_ ? queue_->events.size() : 0;
}

std::uint64_t NameWatch::start_sequence() const noexcept {
  return queue_ ? queue_->start_sequence : 0;
}

const std::string& NameWatch::prefix() const noexcept {
  static const std::string none;
  return queue_ ? queue_->prefix : none;
}

NameWatch::NextAwaiter::NextAwaiter(std::shared_ptr<detail::WatchQueue> queue) noexcept
    : queue_(std::move(queue)) {
  if (!queue_) {
    misuse_ = "next() on a moved-from NameWatch";
  } else if (Kernel::current() != queue_->kernel) {
    misuse_ = "a NameWatch is used on the kernel that made it";
  } else if (queue_->waiter) {
    misuse_ = "another task is already waiting in next() on this NameWatch";
  }
}

NameWatch::NextAwaiter::~NextAwaiter() {
  // A task destroyed while waiting (at shutdown) must not be resumed by a later change.
  if (queue_ && handle_ && queue_->waiter == handle_) queue_->waiter = {};
}

bool NameWatch::NextAwaiter::await_ready() const noexcept {
  return misuse_ != nullptr || !queue_->events.empty() || queue_->overflowed;
}

bool NameWatch::NextAwaiter::await_suspend(std::coroutine_handle<> handle) noexcept {
  handle_ = handle;
  queue_->waiter = handle;
  return true;
}

Result<NameEvent> NameWatch::NextAwaiter::await_resume() {
  handle_ = {};
  if (misuse_ != nullptr) return error(Errc::invalid_argument, misuse_);
  if (!queue_->events.empty()) {
    NameEvent event = std::move(queue_->events.front());
    queue_->events.pop_front();
    return event;
  }
  if (queue_->overflowed) {
    return error(Errc::full, "watch of prefix '" + queue_->prefix +
                                 "' overflowed: its watcher fell behind by more than " +
                                 std::to_string(queue_->capacity) + " changes; " +
                                 std::to_string(queue_->lost) + " changes from sequence " +
                                 std::to_string(queue_->first_lost) +
                                 " on were not queued, and the watch has ended");
  }
  return error(Errc::internal, "a NameWatch resumed with nothing to report");
}

}  // namespace mk
