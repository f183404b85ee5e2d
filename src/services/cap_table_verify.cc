// The capability table's invariants, checked by tests and by decode.
#include <string>

#include "services/cap_table.h"

namespace mk::services {

namespace {

Error broken(const std::string& what) {
  return error(Errc::internal, "capability table: " + what);
}

}  // namespace

mk::Result<void> CapTable::verify() const {
  std::map<std::uint64_t, std::uint32_t> refs;
  std::map<KernelId, std::size_t> used;
  std::map<KernelId, std::size_t> waiting;
  for (const auto& [id, cap] : caps_) {
    const std::string name = "capability " + std::to_string(id);
    if (!objects_.contains(cap.object)) return broken(name + " refers to no object");
    ++refs[cap.object];
    if (cap.parent != 0) {
      auto parent = caps_.find(cap.parent);
      if (parent == caps_.end() || !parent->second.children.contains(id)) {
        return broken(name + " is not among its parent's children");
      }
    }
    for (std::uint64_t child : cap.children) {
      auto found = caps_.find(child);
      if (found == caps_.end() || found->second.parent != id) {
        return broken(name + " lists a child that is not its own");
      }
    }
    if (cap.transfer != 0) {
      auto pending = pending_.find(cap.transfer);
      if (pending == pending_.end() || pending->second.cap != id ||
          pending->second.to != cap.kernel) {
        return broken(name + " is pending in no transfer");
      }
      ++waiting[cap.kernel];
      continue;
    }
    auto space = cspaces_.find(cap.kernel);
    bool placed = false;
    if (space != cspaces_.end()) {
      for (const Segment& segment : space->second.segments) {
        if (cap.slot >= segment.base && cap.slot - segment.base < segment.caps.size()) {
          placed = segment.caps[cap.slot - segment.base] == id;
        }
      }
    }
    if (!placed) return broken(name + " is not in its slot");
    ++used[cap.kernel];
  }
  for (const auto& [number, pending] : pending_) {
    if (!caps_.contains(pending.cap) || caps_.at(pending.cap).transfer != number) {
      return broken("transfer " + std::to_string(number) + " holds no pending capability");
    }
  }
  if (waiting != pending_for_) return broken("pending counts disagree with the transfers");
  for (const auto& [kernel, space] : cspaces_) {
    std::size_t filled = 0;
    for (const Segment& segment : space.segments) {
      for (std::uint64_t cap : segment.caps)
        filled += cap != 0 ? 1 : 0;
      if (segment.cnode != 0) {
        auto cnode = objects_.find(segment.cnode);
        if (cnode == objects_.end() || !cnode->second.attached ||
            cnode->second.attached_kernel != kernel) {
          return broken("a segment of kernel " + std::to_string(kernel) +
                        "'s CSpace belongs to no attached CNode");
        }
      }
    }
    if (filled != space.used || filled != used[kernel]) {
      return broken("kernel " + std::to_string(kernel) + "'s used slots disagree");
    }
  }
  std::map<int, std::map<std::uint64_t, std::uint64_t>> taken;  // node -> offset -> size
  for (const auto& [id, object] : objects_) {
    const std::string name = "object " + std::to_string(id);
    if (object.refs != refs[id]) return broken(name + " counts the wrong number of references");
    if (object.refs == 0 && object.children.empty()) return broken(name + " is unreachable");
    for (std::uint64_t child : object.children) {
      auto found = objects_.find(child);
      if (found == objects_.end() || found->second.parent != id) {
        return broken(name + " lists a retyped object that is not its own");
      }
    }
    std::uint64_t end = 0;
    std::multimap<std::uint64_t, std::uint64_t> inside;  // two at one offset overlap too
    for (std::uint64_t child : object.children) {
      const Object& part = objects_.at(child);
      if (part.offset < object.offset || part.offset + part.size > object.offset + object.size) {
        return broken("object " + std::to_string(child) + " lies outside the RAM it came from");
      }
      inside.emplace(part.offset, part.size);
    }
    for (const auto& [offset, size] : inside) {
      if (offset < end) return broken(name + " has two live retyped objects that overlap");
      end = offset + size;
    }
    if (object.parent == 0 && object.type != CapType::endpoint) {
      if (!taken[object.node].emplace(object.offset, object.size).second) {
        return broken(name + " shares its pool offset with another allocation");
      }
    } else if (object.parent != 0 && !objects_.contains(object.parent)) {
      return broken(name + " was retyped from no live object");
    }
  }
  for (const auto& [node, pool] : pools_) {
    std::map<std::uint64_t, std::pair<std::uint64_t, bool>> all;  // offset -> size, free?
    for (const auto& [offset, size] : pool.free)
      all.emplace(offset, std::pair{size, true});
    for (const auto& [offset, size] : taken[node]) {
      if (!all.emplace(offset, std::pair{size, false}).second) {
        return broken("node " + std::to_string(node) + ": an allocation is also free");
      }
    }
    std::uint64_t at = 0;
    bool last_free = false;
    for (const auto& [offset, entry] : all) {
      if (offset != at) {
        return broken("node " + std::to_string(node) + ": bytes at " + std::to_string(at) +
                      " are neither free nor allocated, or allocated twice");
      }
      if (entry.second && last_free) {
        return broken("node " + std::to_string(node) + ": two adjacent free blocks");
      }
      last_free = entry.second;
      at = offset + entry.first;
    }
    if (at != pool.size) {
      return broken("node " + std::to_string(node) + ": the blocks do not end at the pool's end");
    }
  }
  for (const auto& [node, allocations] : taken) {
    if (!pools_.contains(node))
      return broken("memory of node " + std::to_string(node) + ", which has no pool");
  }
  return verify_spaces();
}

bool operator==(const CapTable& a, const CapTable& b) {
  return a.instance_ == b.instance_ && a.cspace_slots_ == b.cspace_slots_ && a.page_ == b.page_ &&
         a.memory_ == b.memory_ && a.next_id_ == b.next_id_ && a.frees_ == b.frees_ &&
         a.pools_ == b.pools_ && a.objects_ == b.objects_ && a.caps_ == b.caps_ &&
         a.cspaces_ == b.cspaces_ && a.pending_ == b.pending_ && a.window_base_ == b.window_base_ &&
         a.window_size_ == b.window_size_ && a.revision_ == b.revision_ &&
         a.next_vspace_ == b.next_vspace_ && a.spaces_ == b.spaces_;
}

}  // namespace mk::services
