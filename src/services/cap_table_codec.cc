// The capability table's bytes, for a kernel that joins: every field and reference checked on
// the way in, since they come from another kernel.
#include <string>

#include "mk/capability.h"
#include "replica/byte_reader.h"
#include "replica/wire.h"
#include "services/cap_table.h"

namespace mk::services {

namespace {

using replica::put;
using replica::Reader;

/// Sizes and offsets beyond any pool: refused before they can overflow a sum.
constexpr std::uint64_t kLimit = std::uint64_t{1} << 48;

Error bad(const std::string& what) {
  return error(Errc::parse_error, "capability table: " + what);
}

bool valid_type(std::uint8_t type) {
  return type >= static_cast<std::uint8_t>(CapType::ram) &&
         type <= static_cast<std::uint8_t>(CapType::endpoint);
}

}  // namespace

void CapTable::encode(std::vector<std::byte>& out) const {
  put(out, instance_);
  put(out, cspace_slots_);
  put(out, page_);
  put(out, memory_);
  put(out, next_id_);
  put(out, frees_);
  put(out, static_cast<std::uint32_t>(pools_.size()));
  for (const auto& [node, pool] : pools_) {
    put(out, static_cast<std::int32_t>(node));
    put(out, pool.size);
    put(out, static_cast<std::uint32_t>(pool.free.size()));
    for (const auto& [offset, size] : pool.free) {
      put(out, offset);
      put(out, size);
    }
  }
  put(out, static_cast<std::uint32_t>(objects_.size()));
  for (const auto& [id, object] : objects_) {
    put(out, id);
    put(out, static_cast<std::uint8_t>(object.type));
    put(out, static_cast<std::int32_t>(object.node));
    put(out, object.offset);
    put(out, object.size);
    put(out, object.parent);
    put(out, object.slots);
    put(out, object.endpoint_kernel);
    put(out, object.endpoint_type);
  }
  put(out, static_cast<std::uint32_t>(caps_.size()));
  for (const auto& [id, cap] : caps_) {
    put(out, id);
    put(out, cap.object);
    put(out, static_cast<std::uint8_t>(cap.rights));
    put(out, cap.parent);
    put(out, cap.kernel);
    put(out, cap.slot);
    put(out, cap.transfer);
  }
  put(out, static_cast<std::uint32_t>(cspaces_.size()));
  for (const auto& [kernel, space] : cspaces_) {
    put(out, kernel);
    put(out, space.next_base);
    put(out, static_cast<std::uint32_t>(space.segments.size()));
    for (const Segment& segment : space.segments) {
      put(out, segment.cnode);
      put(out, segment.base);
    }
  }
  put(out, static_cast<std::uint32_t>(pending_.size()));
  for (const auto& [number, pending] : pending_) {
    put(out, number);
    put(out, pending.cap);
    put(out, pending.from);
    put(out, pending.to);
    put(out, pending.secret);
  }
  put(out, window_base_);
  put(out, window_size_);
  put(out, revision_);
  put(out, next_vspace_);
  put(out, static_cast<std::uint32_t>(spaces_.size()));
  for (const auto& [number, space] : spaces_) {
    put(out, number);
    put(out, static_cast<std::uint32_t>(space.kernels.size()));
    for (KernelId kernel : space.kernels)
      put(out, kernel);
    put(out, static_cast<std::uint32_t>(space.maps.size()));
    for (const auto& [address, entry] : space.maps) {
      put(out, address);
      put(out, entry.size);
      put(out, static_cast<std::uint8_t>(entry.rights));
      put(out, entry.frame_offset);
      put(out, entry.cap);
    }
  }
}

mk::Result<CapTable> CapTable::decode(std::span<const std::byte> bytes) {
  Reader in(bytes);
  const auto instance = in.value<std::uint64_t>();
  const auto cspace_slots = in.value<std::uint32_t>();
  const auto page = in.value<std::uint64_t>();
  if (in.failed()) return bad("truncated header");
  if (cspace_slots == 0 || cspace_slots > kMaxCNodeSlots) {
    return bad("root CNodes of " + std::to_string(cspace_slots) + " slots");
  }
  if (page == 0 || (page & (page - 1)) != 0) return bad("page size " + std::to_string(page));
  const auto memory = in.value<std::uint64_t>();
  CapTable table(instance, cspace_slots, {}, page, memory);
  table.next_id_ = in.value<std::uint64_t>();
  table.frees_ = in.value<std::uint64_t>();
  const auto pools = in.count(16);
  for (std::size_t i = 0; i < pools && !in.failed(); ++i) {
    const int node = in.value<std::int32_t>();
    Pool pool;
    pool.size = in.value<std::uint64_t>();
    if (pool.size > kLimit) return bad("a pool of " + std::to_string(pool.size) + " bytes");
    const auto blocks = in.count(16);
    for (std::size_t b = 0; b < blocks; ++b) {
      const auto offset = in.value<std::uint64_t>();
      const auto size = in.value<std::uint64_t>();
      if (size == 0 || size > kLimit || offset > kLimit ||
          !pool.free.emplace(offset, size).second) {
        return bad("a free block out of range, or repeated");
      }
    }
    if (!table.pools_.emplace(node, std::move(pool)).second) return bad("a pool repeats");
  }
  const auto objects = in.count(47);
  for (std::size_t i = 0; i < objects && !in.failed(); ++i) {
    const auto id = in.value<std::uint64_t>();
    Object object;
    const auto type = in.value<std::uint8_t>();
    if (!valid_type(type)) return bad("object of type " + std::to_string(type));
    object.type = static_cast<CapType>(type);
    object.node = in.value<std::int32_t>();
    object.offset = in.value<std::uint64_t>();
    object.size = in.value<std::uint64_t>();
    object.parent = in.value<std::uint64_t>();
    object.slots = in.value<std::uint32_t>();
    object.endpoint_kernel = in.value<KernelId>();
    object.endpoint_type = in.value<MessageType>();
    if (id == 0 || id >= table.next_id_) return bad("object number " + std::to_string(id));
    if (object.slots > kMaxCNodeSlots || (object.type != CapType::cnode && object.slots != 0)) {
      return bad("object " + std::to_string(id) + " with " + std::to_string(object.slots) +
                 " slots");
    }
    if (object.offset > kLimit || object.size > kLimit) {
      return bad("object " + std::to_string(id) + " out of any pool's range");
    }
    if (!table.objects_.emplace(id, object).second) return bad("an object repeats");
  }
  const auto caps = in.count(41);
  for (std::size_t i = 0; i < caps && !in.failed(); ++i) {
    const auto id = in.value<std::uint64_t>();
    Cap cap;
    cap.object = in.value<std::uint64_t>();
    cap.rights = static_cast<CapRights>(in.value<std::uint8_t>());
    cap.parent = in.value<std::uint64_t>();
    cap.kernel = in.value<KernelId>();
    cap.slot = in.value<CapSlot>();
    cap.transfer = in.value<std::uint64_t>();
    if (id == 0 || id >= table.next_id_) return bad("capability number " + std::to_string(id));
    if (!has_rights(CapRights::all, cap.rights)) return bad("capability with unknown rights");
    if (!table.caps_.emplace(id, cap).second) return bad("a capability repeats");
  }
  const auto spaces = in.count(12);
  for (std::size_t i = 0; i < spaces && !in.failed(); ++i) {
    const auto kernel = in.value<KernelId>();
    CSpace space;
    space.next_base = in.value<CapSlot>();
    const auto segments = in.count(12);
    for (std::size_t s = 0; s < segments; ++s) {
      Segment segment;
      segment.cnode = in.value<std::uint64_t>();
      segment.base = in.value<CapSlot>();
      space.segments.push_back(std::move(segment));
    }
    if (!table.cspaces_.emplace(kernel, std::move(space)).second) return bad("a CSpace repeats");
  }
  const auto pending = in.count(32);
  for (std::size_t i = 0; i < pending && !in.failed(); ++i) {
    const auto number = in.value<std::uint64_t>();
    Pending entry;
    entry.cap = in.value<std::uint64_t>();
    entry.from = in.value<KernelId>();
    entry.to = in.value<KernelId>();
    entry.secret = in.value<std::uint64_t>();
    if (!table.pending_.emplace(number, entry).second) return bad("a transfer repeats");
  }
  table.window_base_ = in.value<std::uint64_t>();
  table.window_size_ = in.value<std::uint64_t>();
  table.revision_ = in.value<std::uint64_t>();
  table.next_vspace_ = in.value<std::uint32_t>();
  if (table.window_size_ > kLimit || table.window_base_ > kLimit) {
    return bad("a VSpace address range out of bounds");
  }
  const auto vspaces = in.count(12);
  for (std::size_t i = 0; i < vspaces && !in.failed(); ++i) {
    const auto number = in.value<std::uint32_t>();
    Space space;
    const auto kernels = in.count(sizeof(KernelId));
    for (std::size_t k = 0; k < kernels; ++k)
      space.kernels.insert(in.value<KernelId>());
    const auto maps = in.count(33);
    for (std::size_t m = 0; m < maps && !in.failed(); ++m) {
      const auto address = in.value<std::uint64_t>();
      MapEntry entry;
      entry.size = in.value<std::uint64_t>();
      entry.rights = static_cast<CapRights>(in.value<std::uint8_t>());
      entry.frame_offset = in.value<std::uint64_t>();
      entry.cap = in.value<std::uint64_t>();
      if (!has_rights(CapRights::all, entry.rights) || entry.frame_offset > kLimit) {
        return bad("a mapping with unknown rights or out of range");
      }
      if (!space.maps.emplace(address, entry).second) return bad("a mapping repeats");
      ++table.mapped_caps_[entry.cap];
    }
    if (number == 0 || number >= table.next_vspace_ || space.kernels.size() != kernels ||
        !table.spaces_.emplace(number, std::move(space)).second) {
      return bad("VSpace " + std::to_string(number) + " repeats, or a kernel does in it");
    }
  }
  if (auto whole = in.done("capability table"); !whole) return std::move(whole).error();
  if (auto rebuilt = table.rebuild(); !rebuilt) return std::move(rebuilt).error();
  if (auto valid = table.verify(); !valid) return bad(valid.error().message);
  return table;
}

mk::Result<void> CapTable::trees_are_acyclic() const {
  // Every capability and every object must be reached from a root by following children: one
  // in a cycle of parents is not, and would make revoke or a cascade of frees loop forever.
  std::size_t reached = 0;
  std::vector<std::uint64_t> stack;
  for (const auto& [id, cap] : caps_) {
    if (cap.parent == 0) stack.push_back(id);
  }
  while (!stack.empty()) {
    const std::uint64_t id = stack.back();
    stack.pop_back();
    ++reached;
    for (std::uint64_t child : caps_.at(id).children)
      stack.push_back(child);
  }
  if (reached != caps_.size()) return bad("capabilities whose parents form a cycle");
  reached = 0;
  for (const auto& [id, object] : objects_) {
    if (object.parent == 0) stack.push_back(id);
  }
  while (!stack.empty()) {
    const std::uint64_t id = stack.back();
    stack.pop_back();
    ++reached;
    for (std::uint64_t child : objects_.at(id).children)
      stack.push_back(child);
  }
  if (reached != objects_.size()) return bad("objects whose parents form a cycle");
  return {};
}

mk::Result<void> CapTable::rebuild() {
  for (auto& [id, cap] : caps_) {
    auto object = objects_.find(cap.object);
    if (object == objects_.end())
      return bad("capability " + std::to_string(id) + " refers to no object");
    ++object->second.refs;
    if (cap.parent != 0) {
      auto parent = caps_.find(cap.parent);
      if (parent == caps_.end() || cap.parent == id) {
        return bad("capability " + std::to_string(id) + " has no parent " +
                   std::to_string(cap.parent));
      }
      parent->second.children.insert(id);
    }
    if (cap.transfer != 0) ++pending_for_[cap.kernel];
  }
  for (auto& [id, object] : objects_) {
    if (object.parent == 0) {
      if (object.type != CapType::endpoint && !pools_.contains(object.node)) {
        return bad("object " + std::to_string(id) + " on node " + std::to_string(object.node) +
                   ", which has no pool");
      }
      continue;
    }
    auto parent = objects_.find(object.parent);
    if (parent == objects_.end() || object.parent == id || parent->second.type != CapType::ram) {
      return bad("object " + std::to_string(id) + " retyped from no RAM");
    }
    parent->second.children.insert(id);
  }
  if (auto acyclic = trees_are_acyclic(); !acyclic) return acyclic;
  for (auto& [kernel, space] : cspaces_) {
    CapSlot end = 0;
    for (Segment& segment : space.segments) {
      const bool root = &segment == &space.segments.front();
      if (root != (segment.cnode == 0) || (root && segment.base != 0) || segment.base < end) {
        return bad("kernel " + std::to_string(kernel) + "'s CSpace has misplaced segments");
      }
      std::uint32_t slots = cspace_slots_;
      if (segment.cnode != 0) {
        auto cnode = objects_.find(segment.cnode);
        if (cnode == objects_.end() || cnode->second.type != CapType::cnode ||
            cnode->second.attached) {
          return bad("kernel " + std::to_string(kernel) + "'s CSpace has a segment of no CNode");
        }
        cnode->second.attached = true;
        cnode->second.attached_kernel = kernel;
        slots = cnode->second.slots;
      }
      if (segment.base > space.next_base || space.next_base - segment.base < slots) {
        return bad("kernel " + std::to_string(kernel) + "'s CSpace has a segment past its end");
      }
      segment.caps.assign(slots, 0);
      end = segment.base + slots;
    }
  }
  for (const auto& [id, cap] : caps_) {
    if (cap.transfer != 0) continue;
    std::uint64_t* ref = slot_ref(cap.kernel, cap.slot);
    if (ref == nullptr || *ref != 0) {
      return bad("capability " + std::to_string(id) + " in a missing or taken slot");
    }
    *ref = id;
    ++cspaces_.at(cap.kernel).used;
  }
  return {};
}

}  // namespace mk::services
