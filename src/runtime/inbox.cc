#include "runtime/inbox.h"

namespace mk::runtime {

Inbox::~Inbox() {
  InboxItem* item = take_all();
  while (item != nullptr) {
    InboxItem* next = item->next;
    delete item;
    item = next;
  }
}

void Inbox::push(InboxItem* item) noexcept {
  // Relaxed first read: the CAS below validates it.
  InboxItem* head = head_.load(std::memory_order_relaxed);
  do {
    item->next = head;
    // Release on success: the consumer's acquire exchange must see the item's contents.
    // Relaxed on failure: we only retry with the fresh head.
  } while (!head_.compare_exchange_weak(head, item, std::memory_order_release,
                                        std::memory_order_relaxed));
}

InboxItem* Inbox::take_all() noexcept {
  if (empty()) return nullptr;
  // Acquire: pairs with the producers' release CAS, making every taken item's contents visible.
  InboxItem* item = head_.exchange(nullptr, std::memory_order_acquire);
  // The list is newest first; reverse it so each producer's items run in the order pushed.
  InboxItem* reversed = nullptr;
  while (item != nullptr) {
    InboxItem* next = item->next;
    item->next = reversed;
    reversed = item;
    item = next;
  }
  return reversed;
}

}  // namespace mk::runtime
