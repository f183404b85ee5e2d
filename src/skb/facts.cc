#include "skb/facts.h"

#include <algorithm>
#include <climits>
#include <cstdio>

namespace mk::detail {
namespace {

// Matrix values come from files; anything past this is nonsense and must not overflow.
constexpr std::uint64_t kMaxDistance = 1'000'000;

int clamp_distance(std::uint64_t value) {
  return static_cast<int>(std::min<std::uint64_t>(value, kMaxDistance));
}

}  // namespace

void DistanceMatrix::index_rows() {
  rows.clear();
  for (std::size_t i = 0; i < indexes.size(); ++i)
    rows.try_emplace(indexes[i], i);
}

std::optional<std::size_t> DistanceMatrix::row(int index) const {
  if (auto it = rows.find(index); it != rows.end()) return it->second;
  return std::nullopt;
}

std::optional<int> DistanceMatrix::normalized(int from, int to) const {
  const auto i = row(from);
  const auto j = row(to);
  if (!i || !j) return std::nullopt;
  return normalized_at(*i, *j);
}

int DistanceMatrix::normalized_at(std::size_t i, std::size_t j) const {
  const std::size_t n = indexes.size();
  const std::uint64_t self = values[i * n + i];
  const std::uint64_t value = std::min(values[i * n + j], kMaxDistance);
  // A zero diagonal means the matrix counts hops: each hop costs one remote step of 10.
  if (self == 0) return clamp_distance(10 + 10 * value);
  return clamp_distance((value * 10 + self / 2) / self);
}

const CoreInfo* SkbFacts::find(CoreId pu) const {
  auto it = std::lower_bound(cores.begin(), cores.end(), pu,
                             [](const CoreInfo& core, CoreId id) { return core.pu < id; });
  return it != cores.end() && it->pu == pu ? &*it : nullptr;
}

CoreInfo* SkbFacts::find(CoreId pu) {
  return const_cast<CoreInfo*>(static_cast<const SkbFacts*>(this)->find(pu));
}

void SkbFacts::refresh_usable() {
  usable.clear();
  for (const CoreInfo& core : cores) {
    if (core.usable()) usable.push_back(core.pu);
  }
}

std::optional<int> topology_distance(const SkbFacts& facts, CoreId a, CoreId b) {
  const CoreInfo* x = facts.find(a);
  const CoreInfo* y = facts.find(b);
  if (x == nullptr || y == nullptr || !x->online || !y->online) return std::nullopt;
  if (a == b) return 0;
  if (x->core >= 0 && x->core == y->core) return kSameCore;
  // A cache is shared when it lies above both PUs in the tree: the innermost one above x that
  // is also above y.
  for (std::size_t index : x->caches) {
    if (std::find(y->caches.begin(), y->caches.end(), index) != y->caches.end()) {
      return kCacheBase + facts.caches[index].level;
    }
  }
  return node_distance(facts, *x, *y);
}

int node_distance(const SkbFacts& facts, const CoreInfo& x, const CoreInfo& y) {
  if (x.numa_node != y.numa_node) {
    std::optional<int> remote;
    if (facts.numa_distances) remote = facts.numa_distances->normalized(x.numa_node, y.numa_node);
    // Where packages differ, a package (hops) matrix can tell what a flat NUMA matrix hides;
    // each is a lower bound of the cost, so the larger wins.
    if (facts.package_distances && x.package != y.package) {
      if (auto hops = facts.package_distances->normalized(x.package, y.package)) {
        remote = std::max(remote.value_or(0), *hops);
      }
    }
    // Another node is never as close as the local one, whatever a matrix claims.
    return std::max(remote.value_or(kRemoteNode), kSameNode + 1);
  }
  if (x.package >= 0 && x.package == y.package) return kSamePackage;
  return kSameNode;
}

Proximity::Proximity(const SkbFacts& facts, const std::vector<CoreId>& cores)
    : facts_(facts), by_latency_(cores.size() > 1) {
  for (std::size_t i = 0; i < cores.size() && by_latency_; ++i) {
    for (std::size_t j = i + 1; j < cores.size(); ++j) {
      if (cores[i] != cores[j] && !facts.latencies.contains(make_pair_key(cores[i], cores[j]))) {
        by_latency_ = false;
        break;
      }
    }
  }
}

std::int64_t Proximity::operator()(CoreId a, CoreId b) const {
  if (a == b) return 0;
  if (by_latency_) return facts_.latencies.at(make_pair_key(a, b)).median.count();
  if (auto it = facts_.asserted_distances.find(make_pair_key(a, b));
      it != facts_.asserted_distances.end()) {
    return it->second;
  }
  return topology_distance(facts_, a, b).value_or(INT_MAX);
}

std::string fnv1a_hex(std::string_view text) {
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash));
  return out;
}

}  // namespace mk::detail
