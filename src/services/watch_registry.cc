// Delivery of applied changes to the watches of one kernel.
#include "services/watch_registry.h"

#include <algorithm>
#include <utility>

namespace mk::services {

std::uint64_t WatchRegistry::next_instance() noexcept {
  return (static_cast<std::uint64_t>(kernel_.id()) << 32) | ++instances_made_;
}

void WatchRegistry::add(const std::shared_ptr<detail::WatchQueue>& queue) {
  watches_[queue->instance].push_back(queue);
}

void WatchRegistry::publish(std::uint64_t instance, NameEvent::Kind kind, std::string_view name,
                            std::string_view value, std::uint64_t sequence) {
  auto found = watches_.find(instance);
  if (found == watches_.end()) return;
  auto& list = found->second;
  // Watches whose NameWatch was dropped are forgotten here rather than at their destruction,
  // which may happen after the kernel stopped running tasks.
  std::erase_if(list, [](const std::weak_ptr<detail::WatchQueue>& w) { return w.expired(); });
  for (const auto& weak : list) {
    auto queue = weak.lock();
    if (!queue || !name.starts_with(queue->prefix)) continue;
    if (queue->overflowed) {
      ++queue->lost;
      continue;
    }
    if (queue->events.size() >= queue->capacity) {
      queue->overflowed = true;
      queue->first_lost = sequence;
      queue->lost = 1;
    } else {
      queue->events.push_back(NameEvent{kind, std::string(name), std::string(value), sequence});
    }
    if (queue->waiter) {
      detail::KernelAccess::make_ready(kernel_, std::exchange(queue->waiter, {}));
    }
  }
  if (list.empty()) watches_.erase(found);
}

}  // namespace mk::services
