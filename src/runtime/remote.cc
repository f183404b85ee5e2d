// The table of tasks a kernel process can be asked to run (mk/remote.h).
#include "mk/remote.h"

#include <mutex>
#include <vector>

namespace mk::detail {

namespace {

/// Filled while the program starts; read-only afterwards, and copied whole into every kernel
/// process by fork, so a number means the same task everywhere.
struct RemoteTable {
  std::mutex mutex;
  std::vector<RemoteEntry> entries;
};

RemoteTable& table() {
  static RemoteTable instance;
  return instance;
}

}  // namespace

std::uint32_t register_remote(RemoteEntry entry) {
  RemoteTable& t = table();
  std::lock_guard lock(t.mutex);
  t.entries.push_back(entry);
  return static_cast<std::uint32_t>(t.entries.size() - 1);
}

RemoteEntry find_remote(std::uint32_t id) noexcept {
  RemoteTable& t = table();
  std::lock_guard lock(t.mutex);
  return id < t.entries.size() ? t.entries[id] : nullptr;
}

}  // namespace mk::detail
