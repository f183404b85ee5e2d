// The capability table: checking and applying updates, and the local checks of reads.
#include "services/cap_table.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "mk/capability_memory.h"
#include "mk/capability_service.h"
#include "mk/kernel.h"
#include "services/page_table_edits.h"

namespace mk::services {

namespace {

std::string slot_name(KernelId kernel, CapSlot slot) {
  return "slot " + std::to_string(slot) + " of kernel " + std::to_string(kernel) + "'s CSpace";
}

constexpr std::uint64_t kMaxBytes = std::uint64_t{1} << 48;

mk::Result<void> need_slots(std::size_t free, std::size_t count, KernelId kernel) {
  if (free >= count) return {};
  return error(Errc::full, "kernel " + std::to_string(kernel) + "'s CSpace has " +
                               std::to_string(free) + " free slots, " + std::to_string(count) +
                               " needed");
}

}  // namespace

std::string rights_text(CapRights rights) {
  std::string out;
  if (has_rights(rights, CapRights::read)) out += 'r';
  if (has_rights(rights, CapRights::write)) out += 'w';
  if (has_rights(rights, CapRights::grant)) out += 'g';
  return out.empty() ? "none" : out;
}

CapTable::CapTable(std::uint64_t instance, std::uint32_t cspace_slots,
                   std::vector<std::pair<int, std::uint64_t>> pools, std::uint64_t page,
                   std::uint64_t memory, std::uint64_t window_base, std::uint64_t window_size)
    : instance_(instance),
      cspace_slots_(cspace_slots),
      page_(page),
      memory_(memory),
      window_base_(window_base),
      window_size_(window_size) {
  for (const auto& [node, size] : pools) {
    Pool& pool = pools_[node];
    pool.size = size;
    if (size > 0) pool.free.emplace(0, size);
  }
}

mk::Result<void> CapTable::check(const Op& op) const {
  const auto bad = [](const std::string& what) {
    return error(Errc::invalid_argument, "capability update: " + what);
  };
  if (op.kind < Op::Kind::allocate || op.kind > Op::Kind::protect) {
    return bad("unknown kind " + std::to_string(static_cast<int>(op.kind)));
  }
  if (!has_rights(CapRights::all, op.rights)) {
    return bad("rights " + std::to_string(static_cast<int>(op.rights)) +
               " are not a set of rights");
  }
  switch (op.kind) {
    case Op::Kind::allocate:
      if (op.bytes == 0 || op.bytes > kMaxBytes) {
        return bad("allocate of " + std::to_string(op.bytes) + " bytes");
      }
      break;
    case Op::Kind::retype: {
      if (op.type != CapType::ram && op.type != CapType::frame && op.type != CapType::cnode) {
        return bad("retype into " + std::string(to_string(op.type)) +
                   ": only RAM, Frame and CNode are made from RAM");
      }
      if (op.count == 0 || op.count > kMaxRetypeCount) {
        return bad("retype count " + std::to_string(op.count) + ", not 1 to " +
                   std::to_string(kMaxRetypeCount));
      }
      if (op.bytes == 0 || op.bytes > kMaxBytes || op.bytes % page_ != 0) {
        return bad("retype object size " + std::to_string(op.bytes) +
                   ", not a non-zero multiple of " + std::to_string(page_) + " bytes");
      }
      if (op.offset > kMaxBytes || op.offset % page_ != 0) {
        return bad("retype offset " + std::to_string(op.offset) + ", not a multiple of " +
                   std::to_string(page_) + " bytes");
      }
      if (op.type == CapType::cnode &&
          (op.bytes % kCNodeSlotBytes != 0 || op.bytes / kCNodeSlotBytes > kMaxCNodeSlots)) {
        return bad("CNode of " + std::to_string(op.bytes) + " bytes: not a multiple of " +
                   std::to_string(kCNodeSlotBytes) + " bytes per slot, or over " +
                   std::to_string(kMaxCNodeSlots) + " slots");
      }
      break;
    }
    case Op::Kind::transfer:
      if (op.to == op.kernel) return bad("transfer to the sending kernel itself");
      break;
    case Op::Kind::reclaim:
      if (op.to == op.kernel) return bad("reclaim of the proposing kernel's own CSpace");
      break;
    case Op::Kind::make_endpoint:
      if (op.message_type >= kFirstReservedMessageType) {
        return bad("message type " + std::to_string(op.message_type) + " is reserved by mk");
      }
      break;
    default:
      break;
  }
  return {};
}

CapTable::Result CapTable::apply(const Op& op) {
  edits_.clear();
  auto applied = apply_kind(op);
  if (applied) {
    ++revision_;
    if (!edits_.empty()) apply_page_edits(memory_, instance_, revision_, edits_);
  }
  edits_.clear();
  return applied;
}

CapTable::Result CapTable::apply_kind(const Op& op) {
  if (auto valid = check(op); !valid) return std::move(valid).error();
  switch (op.kind) {
    case Op::Kind::allocate:
      return allocate(op);
    case Op::Kind::retype:
      return retype(op);
    case Op::Kind::copy:
    case Op::Kind::mint:
      return copy(op);
    case Op::Kind::transfer:
      return transfer(op);
    case Op::Kind::accept:
      return accept(op);
    case Op::Kind::remove:
      return remove(op);
    case Op::Kind::revoke:
      return revoke(op);
    case Op::Kind::attach:
      return attach(op);
    case Op::Kind::make_endpoint:
      return make_endpoint(op);
    case Op::Kind::reclaim:
      return reclaim(op);
    case Op::Kind::vspace_create:
      return vspace_create(op);
    case Op::Kind::vspace_span:
      return vspace_span(op);
    case Op::Kind::map:
      return map(op);
    case Op::Kind::unmap:
      return unmap(op);
    case Op::Kind::protect:
      return protect(op);
  }
  return error(Errc::internal, "capability update of a kind check() let through");
}

// --- CSpaces ---

CapTable::CSpace& CapTable::cspace(KernelId kernel) {
  auto [at, made] = cspaces_.try_emplace(kernel);
  if (made) {
    at->second.segments.push_back(Segment{0, 0, std::vector<std::uint64_t>(cspace_slots_, 0)});
    at->second.next_base = cspace_slots_;
  }
  return at->second;
}

const CapTable::CSpace* CapTable::find_cspace(KernelId kernel) const {
  auto at = cspaces_.find(kernel);
  return at == cspaces_.end() ? nullptr : &at->second;
}

std::uint64_t* CapTable::slot_ref(KernelId kernel, CapSlot slot) {
  auto at = cspaces_.find(kernel);
  if (at == cspaces_.end()) return nullptr;
  for (Segment& segment : at->second.segments) {
    if (slot >= segment.base && slot - segment.base < segment.caps.size()) {
      return &segment.caps[slot - segment.base];
    }
  }
  return nullptr;
}

mk::Result<std::uint64_t> CapTable::cap_in(KernelId kernel, CapSlot slot) const {
  const CSpace* space = find_cspace(kernel);
  if (space == nullptr) {
    if (slot < cspace_slots_) return error(Errc::not_found, slot_name(kernel, slot) + " is empty");
  } else {
    for (const Segment& segment : space->segments) {
      if (slot >= segment.base && slot - segment.base < segment.caps.size()) {
        const std::uint64_t cap = segment.caps[slot - segment.base];
        if (cap == 0) return error(Errc::not_found, slot_name(kernel, slot) + " is empty");
        return cap;
      }
    }
  }
  return error(Errc::invalid_argument, "slot " + std::to_string(slot) + " is outside kernel " +
                                           std::to_string(kernel) + "'s CSpace");
}

mk::Result<std::uint64_t> CapTable::cap_of_type(KernelId kernel, CapSlot slot, CapType type,
                                                const char* operation) const {
  auto cap = cap_in(kernel, slot);
  if (!cap) return cap;
  const CapType held = objects_.at(caps_.at(*cap).object).type;
  if (held != type) {
    return error(Errc::invalid_argument, slot_name(kernel, slot) + " holds a " +
                                             std::string(to_string(held)) + "; " + operation +
                                             " needs a " + std::string(to_string(type)));
  }
  return cap;
}

std::size_t CapTable::free_slots(KernelId kernel) const {
  const CSpace* space = find_cspace(kernel);
  if (space == nullptr) return cspace_slots_;
  std::size_t total = 0;
  for (const Segment& segment : space->segments)
    total += segment.caps.size();
  return total - space->used;
}

std::vector<CapSlot> CapTable::take_free_slots(KernelId kernel, std::size_t count) {
  std::vector<CapSlot> out;
  for (const Segment& segment : cspace(kernel).segments) {
    for (std::size_t i = 0; i < segment.caps.size() && out.size() < count; ++i) {
      if (segment.caps[i] == 0) out.push_back(segment.base + static_cast<CapSlot>(i));
    }
  }
  return out;
}

// --- capabilities and objects ---

std::uint64_t CapTable::add_object(Object object) {
  const std::uint64_t id = next_id_++;
  if (object.parent != 0) objects_.at(object.parent).children.insert(id);
  objects_.emplace(id, std::move(object));
  return id;
}

std::uint64_t CapTable::add_cap(std::uint64_t object, CapRights rights, std::uint64_t parent,
                                KernelId kernel, CapSlot slot, std::uint64_t transfer) {
  const std::uint64_t id = next_id_++;
  caps_.emplace(id, Cap{object, rights, parent, kernel, slot, transfer, {}});
  ++objects_.at(object).refs;
  if (parent != 0) caps_.at(parent).children.insert(id);
  if (transfer == 0) {
    *slot_ref(kernel, slot) = id;
    ++cspace(kernel).used;
  }
  return id;
}

void CapTable::drop_cap(std::uint64_t id, CapOutcome& outcome) {
  auto at = caps_.find(id);
  if (at == caps_.end()) return;
  Cap cap = std::move(at->second);
  caps_.erase(at);
  ++outcome.removed;
  if (mapped_caps_.contains(id)) unmap_cap(id);
  // The children move up a level, so that a revoke of any ancestor still reaches them.
  if (cap.parent != 0) caps_.at(cap.parent).children.erase(id);
  for (std::uint64_t child : cap.children) {
    caps_.at(child).parent = cap.parent;
    if (cap.parent != 0) caps_.at(cap.parent).children.insert(child);
  }
  if (cap.transfer != 0) {
    pending_.erase(cap.transfer);
    if (--pending_for_[cap.kernel] == 0) pending_for_.erase(cap.kernel);
  } else if (std::uint64_t* ref = slot_ref(cap.kernel, cap.slot); ref != nullptr && *ref == id) {
    *ref = 0;
    --cspaces_.at(cap.kernel).used;
  }
  Object& object = objects_.at(cap.object);
  if (--object.refs == 0 && object.children.empty()) drop_object(cap.object, outcome);
}

void CapTable::drop_object(std::uint64_t id, CapOutcome& outcome) {
  Object object = std::move(objects_.at(id));
  objects_.erase(id);
  if (object.attached) {
    // The CNode's memory held these slots: they go with it, and what they held is removed.
    CSpace& space = cspaces_.at(object.attached_kernel);
    auto segment = std::find_if(space.segments.begin(), space.segments.end(),
                                [id](const Segment& s) { return s.cnode == id; });
    std::vector<std::uint64_t> held;
    for (std::uint64_t cap : segment->caps) {
      if (cap != 0) held.push_back(cap);
    }
    space.used -= held.size();
    space.segments.erase(segment);
    for (std::uint64_t cap : held)
      drop_cap(cap, outcome);
  }
  if (object.parent == 0) {
    if (object.type != CapType::endpoint)
      free_memory(object.node, object.offset, object.size, outcome);
    return;
  }
  Object& parent = objects_.at(object.parent);
  parent.children.erase(id);
  if (parent.refs == 0 && parent.children.empty()) drop_object(object.parent, outcome);
}

void CapTable::free_memory(int node, std::uint64_t offset, std::uint64_t size,
                           CapOutcome& outcome) {
  auto& free = pools_.at(node).free;
  auto next = free.lower_bound(offset);
  std::uint64_t start = offset;
  std::uint64_t length = size;
  if (next != free.begin()) {
    auto before = std::prev(next);
    if (before->first + before->second == offset) {
      start = before->first;
      length += before->second;
      free.erase(before);
    }
  }
  if (next != free.end() && next->first == offset + size) {
    length += next->second;
    free.erase(next);
  }
  free[start] = length;
  ++frees_;
  outcome.freed.push_back(NodeMemory::Region{static_cast<std::size_t>(offset),
                                             static_cast<std::size_t>(size),
                                             static_cast<std::uint64_t>(node), 0});
}

mk::Result<std::uint64_t> CapTable::take_memory(int node, std::uint64_t bytes) {
  auto& free = pools_.at(node).free;
  for (auto at = free.begin(); at != free.end(); ++at) {
    if (at->second < bytes) continue;
    const std::uint64_t offset = at->first;
    const std::uint64_t rest = at->second - bytes;
    free.erase(at);
    if (rest > 0) free.emplace(offset + bytes, rest);
    return offset;
  }
  auto usage_now = usage(node);
  return error(Errc::full, "node " + std::to_string(node) + " has no free block of " +
                               std::to_string(bytes) + " bytes (" +
                               std::to_string(usage_now->free_bytes) +
                               " bytes free, largest block " +
                               std::to_string(usage_now->largest_free_block) + ")");
}

void CapTable::zero(const Op& op, int node, std::uint64_t offset, std::uint64_t size) const {
  // Only the proposer's replica writes the bytes: the others share them (threads, or one memfd
  // mapped by every kernel process), and a late replica must not zero what the new holder has
  // written since. Nobody else holds the new capabilities yet.
  Kernel* kernel = Kernel::current();
  if (memory_ == 0 || kernel == nullptr || kernel->id() != op.kernel) return;
  auto memory = CapabilityMemory::find(memory_);
  if (!memory) return;
  std::span<std::byte> bytes = memory->bytes(node);
  if (offset <= bytes.size() && size <= bytes.size() - offset) {
    std::memset(bytes.data() + offset, 0, size);
  }
}

// --- updates ---

CapTable::Result CapTable::allocate(const Op& op) {
  if (!pools_.contains(op.node)) {
    return error(Errc::not_found, "no memory of node " + std::to_string(op.node) +
                                      " was given to the capability service");
  }
  if (auto room = need_slots(free_slots(op.kernel), 1, op.kernel); !room) return room.error();
  const std::uint64_t bytes = (op.bytes + page_ - 1) / page_ * page_;
  auto offset = take_memory(op.node, bytes);
  if (!offset) return std::move(offset).error();
  Object object;
  object.type = CapType::ram;
  object.node = op.node;
  object.offset = *offset;
  object.size = bytes;
  const std::uint64_t id = add_object(object);
  const CapSlot slot = take_free_slots(op.kernel, 1).front();
  add_cap(id, CapRights::all, 0, op.kernel, slot, 0);
  zero(op, op.node, *offset, bytes);
  CapOutcome outcome;
  outcome.slots.push_back(slot);
  return outcome;
}

CapTable::Result CapTable::retype(const Op& op) {
  auto source = cap_of_type(op.kernel, op.slot, CapType::ram, "retype");
  if (!source) return std::move(source).error();
  const Cap& cap = caps_.at(*source);
  if (!has_rights(cap.rights, CapRights::write)) {
    return error(Errc::permission_denied, slot_name(op.kernel, op.slot) + " has rights " +
                                              rights_text(cap.rights) + "; retype needs write");
  }
  const Object& ram = objects_.at(cap.object);
  const std::uint64_t length = op.bytes * op.count;  // check() bounds both factors
  if (op.offset > ram.size || length > ram.size - op.offset) {
    return error(Errc::invalid_argument,
                 "retype of [" + std::to_string(op.offset) + ", " +
                     std::to_string(op.offset + length) + ") is past the end of the " +
                     std::to_string(ram.size) + "-byte RAM in " + slot_name(op.kernel, op.slot));
  }
  const std::uint64_t start = ram.offset + op.offset;
  for (std::uint64_t child : ram.children) {
    const Object& other = objects_.at(child);
    if (other.offset < start + length && start < other.offset + other.size) {
      return error(Errc::conflict, "retype of [" + std::to_string(op.offset) + ", " +
                                       std::to_string(op.offset + length) + ") of the RAM in " +
                                       slot_name(op.kernel, op.slot) + " overlaps a live " +
                                       std::string(to_string(other.type)) + " at [" +
                                       std::to_string(other.offset - ram.offset) + ", " +
                                       std::to_string(other.offset - ram.offset + other.size) +
                                       ")");
    }
  }
  if (auto room = need_slots(free_slots(op.kernel), op.count, op.kernel); !room) {
    return room.error();
  }
  const std::uint64_t parent_object = cap.object;
  const CapRights rights = cap.rights;
  const int node = ram.node;
  CapOutcome outcome;
  outcome.slots = take_free_slots(op.kernel, op.count);
  for (std::uint32_t i = 0; i < op.count; ++i) {
    Object object;
    object.type = op.type;
    object.node = node;
    object.offset = start + i * op.bytes;
    object.size = op.bytes;
    object.parent = parent_object;
    if (op.type == CapType::cnode)
      object.slots = static_cast<std::uint32_t>(op.bytes / kCNodeSlotBytes);
    const std::uint64_t id = add_object(object);
    add_cap(id, rights, *source, op.kernel, outcome.slots[i], 0);
  }
  zero(op, node, start, length);
  return outcome;
}

CapTable::Result CapTable::copy(const Op& op) {
  auto source = cap_in(op.kernel, op.slot);
  if (!source) return std::move(source).error();
  const Cap& cap = caps_.at(*source);
  CapRights rights = cap.rights;
  if (op.kind == Op::Kind::mint) {
    if (!has_rights(cap.rights, op.rights)) {
      return error(Errc::permission_denied, "mint of rights " + rights_text(op.rights) + " from " +
                                                slot_name(op.kernel, op.slot) +
                                                ", which has only " + rights_text(cap.rights));
    }
    rights = op.rights;
  }
  if (auto room = need_slots(free_slots(op.kernel), 1, op.kernel); !room) return room.error();
  const CapSlot slot = take_free_slots(op.kernel, 1).front();
  add_cap(cap.object, rights, *source, op.kernel, slot, 0);
  CapOutcome outcome;
  outcome.slots.push_back(slot);
  return outcome;
}

CapTable::Result CapTable::transfer(const Op& op) {
  auto source = cap_in(op.kernel, op.slot);
  if (!source) return std::move(source).error();
  const Cap& cap = caps_.at(*source);
  if (!has_rights(cap.rights, CapRights::grant)) {
    return error(Errc::permission_denied, slot_name(op.kernel, op.slot) + " has rights " +
                                              rights_text(cap.rights) + "; transfer needs grant");
  }
  if (!has_rights(cap.rights, op.rights)) {
    return error(Errc::permission_denied, "transfer of rights " + rights_text(op.rights) +
                                              " from " + slot_name(op.kernel, op.slot) +
                                              ", which has only " + rights_text(cap.rights));
  }
  auto waiting = pending_for_.find(op.to);
  if (waiting != pending_for_.end() && waiting->second >= kMaxPendingGrants) {
    return error(Errc::full, "kernel " + std::to_string(op.to) + " has " +
                                 std::to_string(kMaxPendingGrants) + " transfers waiting");
  }
  const std::uint64_t number = next_id_++;
  const std::uint64_t id = add_cap(cap.object, op.rights, *source, op.to, 0, number);
  pending_.emplace(number, Pending{id, op.kernel, op.to, op.secret});
  ++pending_for_[op.to];
  CapOutcome outcome;
  outcome.transfer = number;
  return outcome;
}

CapTable::Result CapTable::accept(const Op& op) {
  auto at = pending_.find(op.transfer);
  if (at == pending_.end() || at->second.from != op.to || at->second.secret != op.secret ||
      at->second.to != op.kernel) {
    // One answer for every mismatch: a guess learns nothing about which field was wrong.
    return error(Errc::not_found, "kernel " + std::to_string(op.kernel) +
                                      " has no pending transfer " + std::to_string(op.transfer) +
                                      " from kernel " + std::to_string(op.to) +
                                      " with that secret");
  }
  if (auto room = need_slots(free_slots(op.kernel), 1, op.kernel); !room) return room.error();
  const std::uint64_t id = at->second.cap;
  pending_.erase(at);
  if (--pending_for_[op.kernel] == 0) pending_for_.erase(op.kernel);
  Cap& cap = caps_.at(id);
  const CapSlot slot = take_free_slots(op.kernel, 1).front();
  cap.transfer = 0;
  cap.slot = slot;
  *slot_ref(op.kernel, slot) = id;
  ++cspace(op.kernel).used;
  CapOutcome outcome;
  outcome.slots.push_back(slot);
  return outcome;
}

CapTable::Result CapTable::remove(const Op& op) {
  auto cap = cap_in(op.kernel, op.slot);
  if (!cap) return std::move(cap).error();
  CapOutcome outcome;
  drop_cap(*cap, outcome);
  return outcome;
}

CapTable::Result CapTable::revoke(const Op& op) {
  auto root = cap_in(op.kernel, op.slot);
  if (!root) return std::move(root).error();
  // Children before parents, so each removal finds no child to move up.
  std::vector<std::uint64_t> order;
  std::vector<std::pair<std::uint64_t, bool>> stack{{*root, false}};
  while (!stack.empty()) {
    auto [id, expanded] = stack.back();
    stack.pop_back();
    if (expanded) {
      if (id != *root) order.push_back(id);
      continue;
    }
    stack.emplace_back(id, true);
    for (std::uint64_t child : caps_.at(id).children)
      stack.emplace_back(child, false);
  }
  CapOutcome outcome;
  // Removing a CNode's last capability removes what its slots hold, which may be later in
  // `order`: drop_cap skips a capability already gone.
  for (std::uint64_t id : order)
    drop_cap(id, outcome);
  return outcome;
}

CapTable::Result CapTable::attach(const Op& op) {
  auto source = cap_of_type(op.kernel, op.slot, CapType::cnode, "attach");
  if (!source) return std::move(source).error();
  const Cap& cap = caps_.at(*source);
  if (!has_rights(cap.rights, CapRights::write)) {
    return error(Errc::permission_denied, slot_name(op.kernel, op.slot) + " has rights " +
                                              rights_text(cap.rights) + "; attach needs write");
  }
  Object& object = objects_.at(cap.object);
  if (object.attached) {
    return error(Errc::already_exists, "the CNode in " + slot_name(op.kernel, op.slot) +
                                           " is attached to kernel " +
                                           std::to_string(object.attached_kernel) + "'s CSpace");
  }
  CSpace& space = cspace(op.kernel);
  if (space.next_base > std::numeric_limits<CapSlot>::max() - object.slots) {
    return error(Errc::full,
                 "kernel " + std::to_string(op.kernel) + "'s CSpace has used every slot number");
  }
  const CapSlot base = space.next_base;
  space.segments.push_back(Segment{cap.object, base, std::vector<std::uint64_t>(object.slots, 0)});
  space.next_base += object.slots;
  object.attached = true;
  object.attached_kernel = op.kernel;
  CapOutcome outcome;
  outcome.slots.push_back(base);
  return outcome;
}

CapTable::Result CapTable::make_endpoint(const Op& op) {
  if (auto room = need_slots(free_slots(op.kernel), 1, op.kernel); !room) return room.error();
  Object object;
  object.type = CapType::endpoint;
  object.endpoint_kernel = op.kernel;
  object.endpoint_type = op.message_type;
  const std::uint64_t id = add_object(object);
  const CapSlot slot = take_free_slots(op.kernel, 1).front();
  add_cap(id, CapRights::all, 0, op.kernel, slot, 0);
  CapOutcome outcome;
  outcome.slots.push_back(slot);
  return outcome;
}

CapTable::Result CapTable::reclaim(const Op& op) {
  std::vector<std::uint64_t> held;
  for (const auto& [id, cap] : caps_) {
    if (cap.kernel == op.to) held.push_back(id);  // in its slots, or waiting for its accept
  }
  CapOutcome outcome;
  // A CNode's removal removes what its slots hold, which may come later in `held`: drop_cap
  // skips a capability already gone.
  for (std::uint64_t id : held)
    drop_cap(id, outcome);
  // CNodes still held elsewhere stay, no longer attached: the CSpace they extended is gone.
  for (auto& [id, object] : objects_) {
    if (object.attached && object.attached_kernel == op.to) {
      object.attached = false;
      object.attached_kernel = 0;
    }
  }
  cspaces_.erase(op.to);
  for (auto& [number, space] : spaces_)
    space.kernels.erase(op.to);  // its page table went with it
  return outcome;
}

// --- reads ---

mk::Result<CapInfo> CapTable::identify(KernelId kernel, CapSlot slot) const {
  auto id = cap_in(kernel, slot);
  if (!id) return std::move(id).error();
  const Cap& cap = caps_.at(*id);
  const Object& object = objects_.at(cap.object);
  CapInfo info;
  info.type = object.type;
  info.rights = cap.rights;
  info.object = cap.object;
  info.size = object.size;
  info.offset = object.offset;
  info.node = object.type == CapType::endpoint ? -1 : object.node;
  info.slots = object.slots;
  info.endpoint_kernel = object.endpoint_kernel;
  info.endpoint_type = object.endpoint_type;
  return info;
}

mk::Result<CapMemory> CapTable::frame(KernelId kernel, CapSlot slot, CapRights needed) const {
  auto id = cap_of_type(kernel, slot, CapType::frame, "reading or writing bytes");
  if (!id) return std::move(id).error();
  const Cap& cap = caps_.at(*id);
  if (!has_rights(cap.rights, needed)) {
    return error(Errc::permission_denied, slot_name(kernel, slot) + " has rights " +
                                              rights_text(cap.rights) + "; " + rights_text(needed) +
                                              " needed");
  }
  const Object& object = objects_.at(cap.object);
  return CapMemory{object.node, object.offset, object.size};
}

mk::Result<KernelId> CapTable::endpoint(KernelId kernel, CapSlot slot, MessageType type) const {
  auto id = cap_of_type(kernel, slot, CapType::endpoint, "send");
  if (!id) return std::move(id).error();
  const Cap& cap = caps_.at(*id);
  if (!has_rights(cap.rights, CapRights::write)) {
    return error(Errc::permission_denied, slot_name(kernel, slot) + " has rights " +
                                              rights_text(cap.rights) + "; send needs write");
  }
  const Object& object = objects_.at(cap.object);
  if (object.endpoint_type != type) {
    return error(Errc::invalid_argument,
                 "the Endpoint in " + slot_name(kernel, slot) + " is for message type " +
                     std::to_string(object.endpoint_type) + ", not " + std::to_string(type));
  }
  return object.endpoint_kernel;
}

std::size_t CapTable::used_slots(KernelId kernel) const {
  const CSpace* space = find_cspace(kernel);
  return space == nullptr ? 0 : space->used;
}

mk::Result<NodeMemory::Usage> CapTable::usage(int node) const {
  auto pool = pools_.find(node);
  if (pool == pools_.end()) {
    return error(Errc::not_found, "no memory of node " + std::to_string(node) +
                                      " was given to the capability service");
  }
  NodeMemory::Usage out;
  for (const auto& [offset, size] : pool->second.free) {
    out.free_bytes += size;
    out.largest_free_block = std::max<std::size_t>(out.largest_free_block, size);
    ++out.free_blocks;
  }
  for (const auto& [id, object] : objects_) {
    if (object.parent == 0 && object.type != CapType::endpoint && object.node == node) {
      ++out.allocated_regions;
    }
  }
  return out;
}

std::vector<std::pair<KernelId, CapSlot>> CapTable::occupied() const {
  std::vector<std::pair<KernelId, CapSlot>> out;
  for (const auto& [id, cap] : caps_) {
    if (cap.transfer == 0) out.emplace_back(cap.kernel, cap.slot);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace mk::services

namespace mk {

std::string_view to_string(CapType type) noexcept {
  switch (type) {
    case CapType::ram:
      return "RAM";
    case CapType::frame:
      return "Frame";
    case CapType::cnode:
      return "CNode";
    case CapType::endpoint:
      return "Endpoint";
  }
  return "unknown";
}

}  // namespace mk
