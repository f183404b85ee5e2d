// A kernel's inbox: how other threads hand it work without touching its state.
#pragma once

#include <atomic>

#include "mk/kernel.h"

namespace mk::runtime {

class KernelCore;

/// One piece of work for a kernel, run on the kernel's thread: a system message for its
/// monitor, or a task handed over from outside.
class InboxItem {
 public:
  virtual ~InboxItem() = default;
  /// Runs on the receiving kernel's thread. The inbox deletes the item afterwards.
  virtual void deliver(KernelCore& kernel) = 0;

  InboxItem* next = nullptr;  ///< Link in the inbox; owned by the inbox while queued.
};

/// A multi-producer single-consumer list. Producers push with one CAS; the kernel takes the
/// whole list at once, so there is no ABA problem and no lock.
class Inbox {
 public:
  Inbox() = default;
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;
  /// Deletes whatever was never taken.
  ~Inbox();

  /// Queues `item` (taking ownership); any thread.
  void push(InboxItem* item) noexcept;

  /// Takes every queued item, oldest first per producer; the kernel's thread only.
  InboxItem* take_all() noexcept;

  /// True when nothing is queued. A hint for idle checks.
  bool empty() const noexcept {
    // Relaxed: the idle protocol orders this load with its own barriers (runtime/barrier.h).
    return head_.load(std::memory_order_relaxed) == nullptr;
  }

 private:
  std::atomic<InboxItem*> head_{nullptr};
};

}  // namespace mk::runtime
