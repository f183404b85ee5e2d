// The model-independent parts of the linearizability checker: the memo's set and the event list.
#include "support/linearizability.h"

#include <numeric>

namespace mk::test::lin::detail {

std::size_t Bitset::hash() const noexcept {
  // FNV-1a over the words: cheap, and sets differing in one bit land far apart.
  std::uint64_t h = 1469598103934665603ull;
  for (std::uint64_t word : words_) {
    h ^= word;
    h *= 1099511628211ull;
  }
  return static_cast<std::size_t>(h);
}

Result<EventList> EventList::make(const std::vector<std::uint64_t>& invoked,
                                  const std::vector<std::uint64_t>& returned,
                                  const std::vector<bool>& has_return) {
  const std::size_t n = invoked.size();
  struct Event {
    std::uint64_t stamp;
    bool is_return;
    std::size_t op;
  };
  std::vector<Event> order;
  order.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    order.push_back(Event{invoked[i], false, i});
    if (!has_return[i]) continue;
    if (returned[i] < invoked[i]) {
      return error(Errc::invalid_argument, "history: operation " + std::to_string(i) +
                                               " returned at stamp " + std::to_string(returned[i]) +
                                               ", before its call at stamp " +
                                               std::to_string(invoked[i]));
    }
    order.push_back(Event{returned[i], true, i});
  }
  // Calls before returns at equal stamps: operations that touch at a stamp overlap.
  std::stable_sort(order.begin(), order.end(), [](const Event& a, const Event& b) {
    return a.stamp != b.stamp ? a.stamp < b.stamp : (!a.is_return && b.is_return);
  });

  EventList list;
  const std::size_t size = order.size();
  list.sentinel_ = size;
  list.next_.resize(size + 1);
  list.prev_.resize(size + 1);
  list.op_.resize(size);
  list.match_.assign(size, kNone);
  std::vector<std::size_t> call_of(n, kNone);
  for (std::size_t e = 0; e < size; ++e) {
    list.op_[e] = order[e].op;
    if (order[e].is_return) {
      list.match_[call_of[order[e].op]] = e;
      list.match_[e] = kReturnTag;
    } else {
      call_of[order[e].op] = e;
    }
  }
  for (std::size_t e = 0; e <= size; ++e) {
    list.next_[e] = e == size ? 0 : e + 1;
    list.prev_[e] = e == 0 ? size : e - 1;
  }
  if (size == 0) list.next_[size] = list.prev_[size] = size;
  return list;
}

void EventList::unlink(std::size_t event) noexcept {
  next_[prev_[event]] = next_[event];
  prev_[next_[event]] = prev_[event];
}

void EventList::relink(std::size_t event) noexcept {
  next_[prev_[event]] = event;
  prev_[next_[event]] = event;
}

void EventList::lift(std::size_t call) noexcept {
  unlink(call);
  if (match_[call] != kNone) unlink(match_[call]);
}

void EventList::unlift(std::size_t call) noexcept {
  if (match_[call] != kNone) relink(match_[call]);
  relink(call);
}

}  // namespace mk::test::lin::detail
