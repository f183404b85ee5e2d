// The capability service's replicated state machine: every capability, its CSpace slot, its
// place in the derivation tree, the objects they refer to and the pools' free memory, changed
// only by ordered updates (docs/capabilities.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "mk/cap_grant.h"
#include "mk/capability.h"
#include "mk/codec.h"
#include "mk/node_memory.h"
#include "mk/result.h"
#include "mk/vspace.h"

namespace mk::services {

/// One update of the table, as it travels: trivially copyable, fixed-size. `kernel` is the
/// proposer, whose CSpace `slot` belongs to; the other fields are the kind's arguments.
struct CapOp {
  /// What the update does.
  enum class Kind : std::uint8_t {
    allocate = 1,  ///< node, bytes: a RAM capability from node's pool.
    retype,        ///< slot (RAM), type, offset, bytes (each object), count.
    copy,          ///< slot.
    mint,          ///< slot, rights.
    transfer,      ///< slot, to, rights, secret: a pending transfer to `to`.
    accept,  ///< transfer, secret, to (the sender): the pending transfer into kernel's CSpace.
    remove,  ///< slot.
    revoke,  ///< slot.
    attach,  ///< slot (CNode).
    make_endpoint,  ///< message_type.
    reclaim,        ///< to: every capability of that kernel's CSpace, which goes.
    vspace_create,  ///< to: the first kernel the new VSpace spans.
    vspace_span,    ///< count (the VSpace), to: one more kernel it spans.
    map,            ///< count (the VSpace), slot (a Frame), offset (address), bytes, rights.
    unmap,          ///< count (the VSpace), offset (address), bytes.
    protect,        ///< count (the VSpace), offset (address), bytes, rights.
  };

  Kind kind = Kind::copy;
  CapType type = CapType::ram;
  CapRights rights = CapRights::none;
  std::uint8_t reserved = 0;
  KernelId kernel = 0;
  CapSlot slot = 0;
  KernelId to = 0;
  std::int32_t node = 0;
  std::uint16_t message_type = 0;
  std::uint16_t reserved2 = 0;
  std::uint32_t count = 0;
  std::uint32_t reserved3 = 0;  // no padding: every byte that travels is a field
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::uint64_t transfer = 0;
  std::uint64_t secret = 0;
};

static_assert(std::is_trivially_copyable_v<CapOp> && sizeof(CapOp) == 64,
              "a capability update fits one cache line");

/// What applying an update returns to its proposer on success.
struct CapOutcome {
  std::vector<CapSlot>
      slots;  ///< New slots (allocate, retype, copy, mint, accept, attach's first).
  std::uint64_t transfer = 0;  ///< transfer: the pending transfer's number.
  std::size_t removed = 0;     ///< remove, revoke: capabilities removed.
  /// Memory that became free, in the order freed: each a Region whose `pool` is the node.
  std::vector<NodeMemory::Region> freed;
  std::uint32_t vspace = 0;    ///< vspace_create: the new VSpace's number.
  std::uint64_t unmapped = 0;  ///< unmap: bytes unmapped.
};

/// Rights as letters ("rw", "rwg"), "none" for none: for error messages.
std::string rights_text(CapRights rights);

/// One change a replica's apply makes to its kernel's page table (page_table_edits.h).
struct PageEdit {
  /// What the change is.
  enum class Kind : std::uint8_t { map, unmap, protect };
  Kind kind = Kind::map;
  CapRights rights = CapRights::none;  ///< map, protect.
  int node = 0;                        ///< map: the Frame's pool.
  std::uint64_t address = 0;
  std::uint64_t size = 0;
  std::uint64_t offset = 0;  ///< map: the bytes' offset in the pool.
};

/// A memory object's bytes in its pool.
struct CapMemory {
  int node = 0;              ///< The pool's node.
  std::uint64_t offset = 0;  ///< Offset in the pool.
  std::uint64_t size = 0;    ///< Length.
};

/// The table. Every operation's semantics and errors are CapabilityService's
/// (mk/capability_service.h); apply returns the error as its result, the same on every
/// replica, and an update that fails changes nothing.
class CapTable {
 public:
  using Op = CapOp;
  using Result = mk::Result<CapOutcome>;

  /// A table with no capability, pools of the given (node, bytes) all free, root CNodes of
  /// `cspace_slots`, memory managed in `page`-byte units. `memory` is the CapabilityMemory
  /// whose bytes the proposer's replica zeroes when allocate or retype hands them out; 0 for
  /// a table without real memory (zeroes nothing).
  /// Mappings may use the addresses [window_base, window_base + window_size) (none when 0).
  CapTable(std::uint64_t instance, std::uint32_t cspace_slots,
           std::vector<std::pair<int, std::uint64_t>> pools, std::uint64_t page,
           std::uint64_t memory = 0, std::uint64_t window_base = 0, std::uint64_t window_size = 0);

  /// invalid_argument for an update whose fields are out of range for its kind (bytes from
  /// another kernel are checked, not trusted).
  mk::Result<void> check(const Op& op) const;
  /// Applies `op`, or returns its error and changes nothing.
  Result apply(const Op& op);

  /// identify: what the capability in `kernel`'s `slot` is.
  mk::Result<CapInfo> identify(KernelId kernel, CapSlot slot) const;
  /// The bytes of the Frame in `kernel`'s `slot` when it has `needed`.
  mk::Result<CapMemory> frame(KernelId kernel, CapSlot slot, CapRights needed) const;
  /// The kernel the Endpoint in `kernel`'s `slot` sends to, if it may send `type`.
  mk::Result<KernelId> endpoint(KernelId kernel, CapSlot slot, MessageType type) const;
  /// Capabilities in `kernel`'s CSpace.
  std::size_t used_slots(KernelId kernel) const;
  /// Free memory of node's pool; not_found for a node without one.
  mk::Result<NodeMemory::Usage> usage(int node) const;
  /// Every capability's (kernel, slot), pending transfers excluded: for tests.
  std::vector<std::pair<KernelId, CapSlot>> occupied() const;
  /// Checks every invariant (refs, tree, slots, no overlapping live retypes, pools exactly
  /// partitioned into free blocks and live allocations); internal naming the first broken one.
  mk::Result<void> verify() const;
  /// The mappings of VSpace `vspace`, by address; not_found for no such VSpace.
  mk::Result<std::vector<Mapping>> mappings(std::uint32_t vspace) const;
  /// The kernels VSpace `vspace` spans; not_found for no such VSpace.
  mk::Result<std::vector<KernelId>> spanned(std::uint32_t vspace) const;
  /// Successful updates applied so far: the same number on every replica after the same
  /// updates.
  std::uint64_t revision() const noexcept { return revision_; }
  /// Regions returned to pools so far.
  std::uint64_t frees() const noexcept { return frees_; }
  /// The service this table belongs to.
  std::uint64_t instance() const noexcept { return instance_; }

  /// Appends the table's bytes (for a joining kernel).
  void encode(std::vector<std::byte>& out) const;
  /// A table from encode's bytes, every field and reference checked; parse_error naming what
  /// is wrong.
  static mk::Result<CapTable> decode(std::span<const std::byte> bytes);

  /// Equal when they hold the same capabilities, objects, CSpaces and pools.
  friend bool operator==(const CapTable& a, const CapTable& b);

 private:
  struct Object {
    CapType type = CapType::ram;
    int node = -1;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
    std::uint64_t parent = 0;  // the object it was retyped from; 0: allocated from the pool
    std::uint32_t slots = 0;
    KernelId endpoint_kernel = 0;
    MessageType endpoint_type = 0;
    // Derived (rebuilt on decode):
    std::uint32_t refs = 0;            // capabilities referring to it, pending ones included
    std::set<std::uint64_t> children;  // live objects retyped from it
    bool attached = false;             // a CNode whose slots are in a CSpace
    KernelId attached_kernel = 0;
    friend bool operator==(const Object&, const Object&) = default;
  };
  struct Cap {
    std::uint64_t object = 0;
    CapRights rights = CapRights::none;
    std::uint64_t parent = 0;  // the capability it was derived from; 0: a root
    KernelId kernel = 0;
    CapSlot slot = 0;
    std::uint64_t transfer = 0;  // nonzero: pending, not in a slot
    // Derived:
    std::set<std::uint64_t> children;
    friend bool operator==(const Cap&, const Cap&) = default;
  };
  struct Segment {
    std::uint64_t cnode = 0;  // 0: the root CNode
    CapSlot base = 0;
    std::vector<std::uint64_t> caps;  // capability per slot, 0 when empty
    friend bool operator==(const Segment&, const Segment&) = default;
  };
  struct CSpace {
    std::vector<Segment> segments;
    CapSlot next_base = 0;
    std::size_t used = 0;
    friend bool operator==(const CSpace&, const CSpace&) = default;
  };
  struct Pending {
    std::uint64_t cap = 0;
    KernelId from = 0;
    KernelId to = 0;
    std::uint64_t secret = 0;
    friend bool operator==(const Pending&, const Pending&) = default;
  };
  struct Pool {
    std::uint64_t size = 0;
    std::map<std::uint64_t, std::uint64_t> free;  // offset -> size, never adjacent
    friend bool operator==(const Pool&, const Pool&) = default;
  };
  struct MapEntry {
    std::uint64_t size = 0;
    CapRights rights = CapRights::none;
    std::uint64_t frame_offset = 0;
    std::uint64_t cap = 0;  // the Frame capability it was made with; it goes with it
    friend bool operator==(const MapEntry&, const MapEntry&) = default;
  };
  struct Space {
    std::set<KernelId> kernels;
    std::map<std::uint64_t, MapEntry> maps;  // by address
    friend bool operator==(const Space&, const Space&) = default;
  };

  CSpace& cspace(KernelId kernel);
  const CSpace* find_cspace(KernelId kernel) const;
  mk::Result<std::uint64_t> cap_in(KernelId kernel, CapSlot slot) const;
  mk::Result<std::uint64_t> cap_of_type(KernelId kernel, CapSlot slot, CapType type,
                                        const char* operation) const;
  std::uint64_t* slot_ref(KernelId kernel, CapSlot slot);
  std::size_t free_slots(KernelId kernel) const;
  std::vector<CapSlot> take_free_slots(KernelId kernel, std::size_t count);
  std::uint64_t add_cap(std::uint64_t object, CapRights rights, std::uint64_t parent,
                        KernelId kernel, CapSlot slot, std::uint64_t transfer);
  std::uint64_t add_object(Object object);
  void drop_cap(std::uint64_t cap, CapOutcome& outcome);
  void drop_object(std::uint64_t object, CapOutcome& outcome);
  void free_memory(int node, std::uint64_t offset, std::uint64_t size, CapOutcome& outcome);
  mk::Result<std::uint64_t> take_memory(int node, std::uint64_t bytes);
  void zero(const Op& op, int node, std::uint64_t offset, std::uint64_t size) const;
  mk::Result<void> rebuild();
  mk::Result<void> trees_are_acyclic() const;

  Result apply_kind(const Op& op);
  Result allocate(const Op& op);
  Result retype(const Op& op);
  Result copy(const Op& op);
  Result transfer(const Op& op);
  Result accept(const Op& op);
  Result remove(const Op& op);
  Result revoke(const Op& op);
  Result attach(const Op& op);
  Result make_endpoint(const Op& op);
  Result reclaim(const Op& op);
  // VSpaces (cap_table_vspace.cc).
  mk::Result<void> check_range(const Op& op, const char* operation) const;
  mk::Result<Space*> space_of(const Op& op);
  /// The mapping covering `address` is cut in two there (nothing when none covers it inside).
  void split_at(Space& space, std::uint64_t address);
  /// Queues `edit` for this replica's page table, when its kernel is `only` (or, with
  /// only == kAnyKernel, any kernel `space` spans).
  void edit(const Space& space, const PageEdit& edit, KernelId only);
  /// Removes every mapping made with capability `cap` (it is going).
  void unmap_cap(std::uint64_t cap);
  mk::Result<void> verify_spaces() const;
  Result vspace_create(const Op& op);
  Result vspace_span(const Op& op);
  Result map(const Op& op);
  Result unmap(const Op& op);
  Result protect(const Op& op);

  std::uint64_t instance_ = 0;
  std::uint32_t cspace_slots_ = 0;
  std::uint64_t page_ = 0;
  std::uint64_t memory_ = 0;
  std::uint64_t next_id_ = 1;  // objects, capabilities and transfers share one numbering
  std::uint64_t frees_ = 0;
  std::map<int, Pool> pools_;
  std::map<std::uint64_t, Object> objects_;
  std::map<std::uint64_t, Cap> caps_;
  std::map<KernelId, CSpace> cspaces_;
  std::map<std::uint64_t, Pending> pending_;
  std::map<KernelId, std::size_t> pending_for_;  // derived
  std::uint64_t window_base_ = 0;
  std::uint64_t window_size_ = 0;
  std::uint64_t revision_ = 0;
  std::uint32_t next_vspace_ = 1;
  std::map<std::uint32_t, Space> spaces_;
  std::map<std::uint64_t, std::size_t> mapped_caps_;  // derived: capability -> its mappings
  std::vector<PageEdit> edits_;                       // the apply under way's; not state
};

}  // namespace mk::services

namespace mk {

/// The table travels as CapTable::encode's bytes.
template <>
struct Codec<services::CapTable> {
  static void encode(const services::CapTable& table, std::vector<std::byte>& out) {
    table.encode(out);
  }
  static Result<services::CapTable> decode(std::span<const std::byte> bytes) {
    return services::CapTable::decode(bytes);
  }
};

}  // namespace mk
