// The watches of one kernel, and how a change applied on its replicas reaches them.
#pragma once

#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mk/kernel.h"
#include "mk/naming.h"

namespace mk::detail {

/// One watch's queue, on the kernel that made it; touched by that kernel's thread only.
struct WatchQueue {
  Kernel* kernel = nullptr;
  std::uint64_t instance = 0;  ///< The service watched.
  std::string prefix;          ///< Names it reports.
  std::size_t capacity = 0;    ///< Events it holds before it overflows.
  std::uint64_t start_sequence = 0;
  std::deque<NameEvent> events;    ///< Reported in order, oldest first.
  bool overflowed = false;         ///< A change found the queue full; the watch has ended.
  std::uint64_t first_lost = 0;    ///< The sequence of the first change not queued.
  std::uint64_t lost = 0;          ///< Changes not queued since.
  std::coroutine_handle<> waiter;  ///< The task in next(), if one waits.
};

}  // namespace mk::detail

namespace mk::services {

/// The kernel extension holding the kernel's watches, by service instance.
class WatchRegistry {
 public:
  explicit WatchRegistry(Kernel& kernel) noexcept : kernel_(kernel) {}

  /// A new service instance name, unique in the System: this kernel's id in the high half.
  std::uint64_t next_instance() noexcept;
  /// Starts reporting changes of `queue->instance` to `queue`, as long as someone holds it.
  void add(const std::shared_ptr<detail::WatchQueue>& queue);
  /// Queues a change of service `instance` on every live watch of it whose prefix matches,
  /// and wakes the watchers waiting.
  void publish(std::uint64_t instance, NameEvent::Kind kind, std::string_view name,
               std::string_view value, std::uint64_t sequence);

 private:
  Kernel& kernel_;
  std::uint32_t instances_made_ = 0;
  std::unordered_map<std::uint64_t, std::vector<std::weak_ptr<detail::WatchQueue>>> watches_;
};

}  // namespace mk::services
