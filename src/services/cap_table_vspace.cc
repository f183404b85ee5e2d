// The capability table's VSpaces: mappings of Frame capabilities at addresses, changed in the
// table's one order, each replica turning what it applies into its kernel's page table.
#include <algorithm>
#include <charconv>
#include <limits>
#include <string>

#include "mk/kernel.h"
#include "services/cap_table.h"

namespace mk::services {

namespace {

/// `edit`'s "any kernel the VSpace spans".
constexpr KernelId kAnyKernel = std::numeric_limits<KernelId>::max();

std::string fmt_hex(std::uint64_t value) {
  char text[17];
  const auto end = std::to_chars(text, text + sizeof(text), value, 16).ptr;
  return std::string(text, end);
}

std::string range_name(std::uint64_t address, std::uint64_t size) {
  return "[0x" + fmt_hex(address) + ", 0x" + fmt_hex(address + size) + ")";
}

}  // namespace

mk::Result<void> CapTable::check_range(const Op& op, const char* operation) const {
  const auto bad = [&](const std::string& what) {
    return error(Errc::invalid_argument, std::string(operation) + ": " + what);
  };
  if (op.bytes == 0) return bad("0 bytes");
  if (op.offset % page_ != 0 || op.bytes % page_ != 0) {
    return bad("address 0x" + fmt_hex(op.offset) + " and size " + std::to_string(op.bytes) +
               " must be multiples of the " + std::to_string(page_) + "-byte page");
  }
  if (op.offset < window_base_ || op.offset - window_base_ > window_size_ ||
      op.bytes > window_size_ - (op.offset - window_base_)) {
    return bad(range_name(op.offset, op.bytes) + " is outside the VSpace address range " +
               range_name(window_base_, window_size_));
  }
  return {};
}

mk::Result<CapTable::Space*> CapTable::space_of(const Op& op) {
  auto found = spaces_.find(op.count);
  if (found == spaces_.end()) {
    return error(Errc::not_found, "no VSpace " + std::to_string(op.count));
  }
  return &found->second;
}

void CapTable::split_at(Space& space, std::uint64_t address) {
  auto after = space.maps.upper_bound(address);
  if (after == space.maps.begin()) return;
  auto covering = std::prev(after);
  const std::uint64_t start = covering->first;
  MapEntry& entry = covering->second;
  if (start == address || start + entry.size <= address) return;
  MapEntry right = entry;
  right.size = start + entry.size - address;
  right.frame_offset = entry.frame_offset + (address - start);
  entry.size = address - start;
  space.maps.emplace(address, right);
  ++mapped_caps_[right.cap];
}

void CapTable::edit(const Space& space, const PageEdit& change, KernelId only) {
  Kernel* kernel = Kernel::current();
  if (memory_ == 0 || kernel == nullptr) return;
  const KernelId self = kernel->id();
  if (only != kAnyKernel ? self != only : !space.kernels.contains(self)) return;
  edits_.push_back(change);
}

void CapTable::unmap_cap(std::uint64_t cap) {
  for (auto& [number, space] : spaces_) {
    for (auto it = space.maps.begin(); it != space.maps.end();) {
      if (it->second.cap != cap) {
        ++it;
        continue;
      }
      PageEdit change;
      change.kind = PageEdit::Kind::unmap;
      change.address = it->first;
      change.size = it->second.size;
      edit(space, change, kAnyKernel);
      it = space.maps.erase(it);
    }
  }
  mapped_caps_.erase(cap);
}

CapTable::Result CapTable::vspace_create(const Op& op) {
  if (spaces_.size() >= kMaxVSpaces) {
    return error(Errc::full,
                 "the capability service has " + std::to_string(kMaxVSpaces) + " VSpaces already");
  }
  const std::uint32_t number = next_vspace_++;
  spaces_[number].kernels.insert(op.to);
  CapOutcome outcome;
  outcome.vspace = number;
  return outcome;
}

CapTable::Result CapTable::vspace_span(const Op& op) {
  auto space = space_of(op);
  if (!space) return std::move(space).error();
  if (!(*space)->kernels.insert(op.to).second) {
    return error(Errc::already_exists, "VSpace " + std::to_string(op.count) + " spans kernel " +
                                           std::to_string(op.to) + " already");
  }
  // The new kernel's page table gets every mapping; the others have them.
  for (const auto& [address, entry] : (*space)->maps) {
    const Object& object = objects_.at(caps_.at(entry.cap).object);
    PageEdit change;
    change.kind = PageEdit::Kind::map;
    change.rights = entry.rights;
    change.node = object.node;
    change.address = address;
    change.size = entry.size;
    change.offset = object.offset + entry.frame_offset;
    edit(**space, change, op.to);
  }
  return CapOutcome{};
}

CapTable::Result CapTable::map(const Op& op) {
  auto space = space_of(op);
  if (!space) return std::move(space).error();
  if (auto range = check_range(op, "map"); !range) return std::move(range).error();
  if (op.rights == CapRights::none || !has_rights(CapRights::read | CapRights::write, op.rights)) {
    return error(Errc::invalid_argument,
                 "map: rights " + rights_text(op.rights) + "; a mapping has read, write or both");
  }
  auto id = cap_of_type(op.kernel, op.slot, CapType::frame, "map");
  if (!id) return std::move(id).error();
  const Cap& cap = caps_.at(*id);
  if (!has_rights(cap.rights, op.rights)) {
    return error(Errc::permission_denied, "map: the Frame in slot " + std::to_string(op.slot) +
                                              " of kernel " + std::to_string(op.kernel) +
                                              " has rights " + rights_text(cap.rights) + "; " +
                                              rights_text(op.rights) + " asked for");
  }
  const Object& object = objects_.at(cap.object);
  if (op.bytes > object.size) {
    return error(Errc::invalid_argument, "map: " + std::to_string(op.bytes) + " bytes of a " +
                                             std::to_string(object.size) + "-byte Frame");
  }
  for (const auto& [number, other] : spaces_) {
    auto after = other.maps.lower_bound(op.offset + op.bytes);
    if (after == other.maps.begin()) continue;
    auto before = std::prev(after);
    if (before->first + before->second.size > op.offset) {
      return error(Errc::already_exists, "map: " + range_name(op.offset, op.bytes) +
                                             " overlaps the mapping " +
                                             range_name(before->first, before->second.size) +
                                             " of VSpace " + std::to_string(number));
    }
  }
  (*space)->maps.emplace(op.offset, MapEntry{op.bytes, op.rights, 0, *id});
  ++mapped_caps_[*id];
  PageEdit change;
  change.kind = PageEdit::Kind::map;
  change.rights = op.rights;
  change.node = object.node;
  change.address = op.offset;
  change.size = op.bytes;
  change.offset = object.offset;
  edit(**space, change, kAnyKernel);
  return CapOutcome{};
}

CapTable::Result CapTable::unmap(const Op& op) {
  auto space = space_of(op);
  if (!space) return std::move(space).error();
  if (auto range = check_range(op, "unmap"); !range) return std::move(range).error();
  Space& here = **space;
  const std::uint64_t end = op.offset + op.bytes;
  auto first = here.maps.upper_bound(op.offset);
  if (first != here.maps.begin() &&
      std::prev(first)->first + std::prev(first)->second.size > op.offset) {
    --first;
  }
  if (first == here.maps.end() || first->first >= end) {
    return error(Errc::not_found, "unmap: nothing of VSpace " + std::to_string(op.count) +
                                      " is mapped in " + range_name(op.offset, op.bytes));
  }
  split_at(here, op.offset);
  split_at(here, end);
  CapOutcome outcome;
  for (auto it = here.maps.lower_bound(op.offset); it != here.maps.end() && it->first < end;) {
    outcome.unmapped += it->second.size;
    if (--mapped_caps_[it->second.cap] == 0) mapped_caps_.erase(it->second.cap);
    it = here.maps.erase(it);
  }
  PageEdit change;
  change.kind = PageEdit::Kind::unmap;
  change.address = op.offset;
  change.size = op.bytes;
  edit(here, change, kAnyKernel);
  return outcome;
}

CapTable::Result CapTable::protect(const Op& op) {
  auto space = space_of(op);
  if (!space) return std::move(space).error();
  if (auto range = check_range(op, "protect"); !range) return std::move(range).error();
  if (op.rights == CapRights::none || !has_rights(CapRights::read | CapRights::write, op.rights)) {
    return error(Errc::invalid_argument, "protect: rights " + rights_text(op.rights) +
                                             "; a mapping has read, write or both");
  }
  Space& here = **space;
  const std::uint64_t end = op.offset + op.bytes;
  // Every page mapped, and every Frame capability allowing the rights, before anything changes.
  std::uint64_t covered = op.offset;
  auto it = here.maps.upper_bound(op.offset);
  if (it != here.maps.begin()) --it;
  for (; it != here.maps.end() && it->first < end; ++it) {
    if (it->first + it->second.size <= covered) continue;
    if (it->first > covered) break;
    const CapRights allowed = caps_.at(it->second.cap).rights;
    if (!has_rights(allowed, op.rights)) {
      return error(Errc::permission_denied,
                   "protect: the mapping " + range_name(it->first, it->second.size) +
                       " was made with a Frame capability of rights " + rights_text(allowed) +
                       "; " + rights_text(op.rights) + " asked for");
    }
    covered = it->first + it->second.size;
  }
  if (covered < end) {
    return error(Errc::not_found, "protect: 0x" + fmt_hex(covered) + " of VSpace " +
                                      std::to_string(op.count) + " is not mapped");
  }
  split_at(here, op.offset);
  split_at(here, end);
  for (auto at = here.maps.lower_bound(op.offset); at != here.maps.end() && at->first < end; ++at)
    at->second.rights = op.rights;
  PageEdit change;
  change.kind = PageEdit::Kind::protect;
  change.rights = op.rights;
  change.address = op.offset;
  change.size = op.bytes;
  edit(here, change, kAnyKernel);
  return CapOutcome{};
}

mk::Result<std::vector<Mapping>> CapTable::mappings(std::uint32_t vspace) const {
  auto found = spaces_.find(vspace);
  if (found == spaces_.end()) return error(Errc::not_found, "no VSpace " + std::to_string(vspace));
  std::vector<Mapping> out;
  for (const auto& [address, entry] : found->second.maps) {
    const Cap& cap = caps_.at(entry.cap);
    out.push_back(Mapping{static_cast<std::uintptr_t>(address), entry.size, entry.rights,
                          entry.frame_offset, cap.kernel, cap.slot});
  }
  return out;
}

mk::Result<std::vector<KernelId>> CapTable::spanned(std::uint32_t vspace) const {
  auto found = spaces_.find(vspace);
  if (found == spaces_.end()) return error(Errc::not_found, "no VSpace " + std::to_string(vspace));
  return std::vector<KernelId>(found->second.kernels.begin(), found->second.kernels.end());
}

mk::Result<void> CapTable::verify_spaces() const {
  const auto broken = [](const std::string& what) {
    return error(Errc::internal, "capability table: " + what);
  };
  std::map<std::uint64_t, std::size_t> counted;
  std::map<std::uint64_t, std::uint64_t> all;  // every mapping of every VSpace: address -> end
  for (const auto& [number, space] : spaces_) {
    if (number == 0 || number >= next_vspace_) {
      return broken("VSpace number " + std::to_string(number));
    }
    for (const auto& [address, entry] : space.maps) {
      if (entry.size == 0 || address % page_ != 0 || entry.size % page_ != 0 ||
          address < window_base_ || address - window_base_ > window_size_ ||
          entry.size > window_size_ - (address - window_base_)) {
        return broken("mapping " + range_name(address, entry.size) + " outside the range");
      }
      auto cap = caps_.find(entry.cap);
      if (cap == caps_.end()) return broken("a mapping of no capability");
      const Object& object = objects_.at(cap->second.object);
      if (object.type != CapType::frame || entry.frame_offset > object.size ||
          entry.size > object.size - entry.frame_offset ||
          !has_rights(cap->second.rights, entry.rights)) {
        return broken("mapping " + range_name(address, entry.size) + " beyond its Frame");
      }
      if (!all.emplace(address, address + entry.size).second) return broken("mappings overlap");
      ++counted[entry.cap];
    }
  }
  std::uint64_t end = 0;
  for (const auto& [address, last] : all) {
    if (address < end) return broken("mappings overlap at 0x" + fmt_hex(address));
    end = last;
  }
  if (counted != mapped_caps_) return broken("the count of mappings per capability");
  return {};
}

}  // namespace mk::services
