// mk::CapabilityService: typed, unforgeable references to real memory and endpoints, with
// rights, kept in a capability table replicated on every member kernel (docs/capabilities.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mk/cap_grant.h"
#include "mk/capability.h"
#include "mk/capability_memory.h"
#include "mk/codec.h"
#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/memory_request.h"
#include "mk/message_codec.h"
#include "mk/replica_options.h"
#include "mk/result.h"
#include "mk/system.h"
#include "mk/task.h"

namespace mk {

namespace detail {
struct CapabilityObject;
}  // namespace detail

class VSpace;

/// How a CapabilityService is kept.
struct CapabilityOptions {
  /// Members, sequencer, route and timeout of the replicated table. The protocol must be
  /// Protocol::ordered (the default): docs/capabilities.md, "Consistency", says why.
  ReplicaOptions replica;
  /// Slots of every member kernel's root CNode, 1 to kMaxCNodeSlots.
  std::uint32_t cspace_slots = 1024;
};

/// A capability service: every member kernel has a CSpace (its root CNode, plus the CNodes it
/// attaches) whose slots hold capabilities, and a replica of the table that records every
/// capability, its place in the derivation tree and the memory it covers. Updates (allocate,
/// retype, copy, mint, transfer, accept, remove, revoke, attach, make_endpoint, reclaim) are
/// agreed by ordered broadcast; identify, read, write and send check the local replica only,
/// linearizably (docs/capabilities.md has each operation's steps and guarantees).
///
/// Every method is called from a task on a member kernel `k` (the kernel it runs on), and a
/// slot always names a slot of k's own CSpace. Errors common to all: invalid_argument (k is
/// not a member; a slot outside k's CSpace; a capability of the wrong type; an argument out of
/// range), not_found (an empty slot: never filled, removed, or revoked), permission_denied
/// (a right the operation needs is missing), and for updates the agreement's timed_out
/// (outcome unknown) and shutting_down. A small copyable handle, like NameService.
class CapabilityService {
 public:
  /// From outside the kernels (blocks, like System::run): a service with an empty CSpace on
  /// every member kernel and all of `memory` free. Errors: invalid_argument naming the bad
  /// option, not_found when the kernels cannot reach `memory` (see CapabilityMemory), or
  /// System::run's.
  static Result<CapabilityService> create(System& system, const CapabilityMemory& memory,
                                          CapabilityOptions options = {});
  /// Same, from a task on any kernel of the system (needed under the simulator).
  static Task<Result<CapabilityService>> create_async(Kernel& k, const CapabilityMemory& memory,
                                                      CapabilityOptions options = {});

  /// A RAM capability with all rights for `bytes` (rounded up to pages) of node `node`'s
  /// memory, zeroed, in a free slot of k's CSpace. Errors: not_found (no pool for the node),
  /// full (no free block that large, or no free slot), invalid_argument (0 bytes).
  Task<Result<CapSlot>> allocate(Kernel& k, std::size_t bytes, int node) const;
  /// allocate() on the node `k.skb().memory_node(request)` picks; also its not_found.
  Task<Result<CapSlot>> allocate(Kernel& k, std::size_t bytes, const MemoryRequest& request) const;

  /// Makes `count` objects of `type` (Frame, CNode or RAM), each `object_bytes` (a page
  /// multiple) long, from the bytes [offset, offset + count * object_bytes) of the RAM
  /// capability in `ram` (offset a page multiple); zeroes their memory and puts a capability
  /// with the RAM capability's rights for each in free slots of k's CSpace, children of `ram`
  /// in the derivation tree. Errors: permission_denied (`ram` lacks
  /// write), conflict (the range overlaps an object already retyped from the same RAM that
  /// is still alive, through any copy), full (not enough free slots), invalid_argument (a
  /// range past the RAM's end, a bad size, count 0 or above kMaxRetypeCount, an Endpoint
  /// type, a CNode size that is not a multiple of kCNodeSlotBytes or above kMaxCNodeSlots).
  Task<Result<std::vector<CapSlot>>> retype(Kernel& k, CapSlot ram, CapType type,
                                            std::size_t offset, std::size_t object_bytes,
                                            std::size_t count) const;
  /// A copy of `slot` with the same rights in a free slot of k's CSpace, its child in the
  /// derivation tree. Errors: full (no free slot).
  Task<Result<CapSlot>> copy(Kernel& k, CapSlot slot) const;
  /// copy() with the rights `rights`, which must be a subset of the source's
  /// (permission_denied otherwise).
  Task<Result<CapSlot>> mint(Kernel& k, CapSlot slot, CapRights rights) const;
  /// Starts passing a copy of `slot` with `rights` (a subset of its rights) to kernel `to`:
  /// the copy waits, as a child of `slot`, until `to` accepts the returned grant, which the
  /// caller sends in a message. Errors: permission_denied (`slot` lacks grant, or `rights`
  /// exceed it), invalid_argument (`to` is k or not a member), full (`to` has
  /// kMaxPendingGrants transfers waiting).
  Task<Result<CapGrant>> transfer(Kernel& k, CapSlot slot, KernelId to,
                                  CapRights rights = CapRights::all) const;
  /// Puts the capability `grant` carries into a free slot of k's CSpace. Errors:
  /// invalid_argument (a grant of another service or for another kernel), not_found (no such
  /// pending transfer: forged, accepted already, or its source was revoked or removed first),
  /// full (no free slot; the grant stays pending).
  Task<Result<CapSlot>> accept(Kernel& k, const CapGrant& grant) const;
  /// Empties `slot`. Its children become children of its parent, so a revoke of an ancestor
  /// still reaches them. When it was the object's last capability the object goes: memory
  /// returns to its RAM object, and a RAM object allocated from a pool whose last capability
  /// and last retyped object are gone returns to the pool; a CNode's slots are emptied the
  /// same way.
  Task<Result<void>> remove(Kernel& k, CapSlot slot) const;
  /// Removes every descendant of `slot` in the derivation tree (copies, mints, transfers
  /// accepted or pending, retyped objects and theirs) on every kernel, in one agreed step;
  /// `slot` itself stays. Returns how many capabilities were removed.
  Task<Result<std::size_t>> revoke(Kernel& k, CapSlot slot) const;
  /// Adds the slots of the CNode in `cnode` to k's CSpace (they are numbered after every slot
  /// the CSpace had); returns the first. The slots go, with what they hold, when the CNode
  /// object does. Errors: permission_denied (no write), already_exists (attached already).
  Task<Result<CapSlot>> attach(Kernel& k, CapSlot cnode) const;
  /// An Endpoint capability with all rights for sending `type` to kernel k, in a free slot of
  /// k's CSpace. Errors: full, invalid_argument (a type mk reserves).
  Task<Result<CapSlot>> make_endpoint(Kernel& k, MessageType type) const;

  /// What the capability in `slot` is: linearizable and local (no message is sent).
  Task<Result<CapInfo>> identify(Kernel& k, CapSlot slot) const;
  /// Copies `out.size()` bytes at `offset` of the Frame in `slot` into `out`. Errors:
  /// permission_denied (no read), invalid_argument (not a Frame, bytes past its end).
  Task<Result<void>> read(Kernel& k, CapSlot slot, std::size_t offset,
                          std::span<std::byte> out) const;
  /// Copies `in` to `offset` of the Frame in `slot`. Errors as read, needing write.
  Task<Result<void>> write(Kernel& k, CapSlot slot, std::size_t offset,
                           std::span<const std::byte> in) const;
  /// The kernel the Endpoint in `slot` sends to, when it may send message type `type`.
  /// Errors: permission_denied (no write), invalid_argument (not an Endpoint, or one for
  /// another message type).
  Task<Result<KernelId>> endpoint_target(Kernel& k, CapSlot slot, MessageType type) const;
  /// `co_await caps.send(k, slot, message)`: sends `message` to the kernel of the Endpoint in
  /// `slot`, which must be for M::kType. Errors: endpoint_target's, then Kernel::send's.
  template <Message M>
  Task<Result<void>> send(Kernel& k, CapSlot slot, M message) const {
    auto target = co_await endpoint_target(k, slot, M::kType);
    if (!target) co_return std::move(target).error();
    co_return co_await k.send(*target, message);
  }

  /// Removes every capability in the CSpace of kernel `gone`, which is no longer a member (it
  /// failed, or left), and the transfers waiting for it, releasing their objects and memory
  /// as remove does; its CSpace goes. Returns how many capabilities were removed. Errors:
  /// invalid_argument (`gone` is k or still a member).
  Task<Result<std::size_t>> reclaim(Kernel& k, KernelId gone) const;

  /// Capabilities in k's CSpace now, as its replica has them.
  Result<std::size_t> used_slots(Kernel& k) const;
  /// Free bytes and blocks of node `node`'s pool, as k's replica has them now. not_found
  /// without a pool for the node.
  Result<NodeMemory::Usage> memory_usage(Kernel& k, int node) const;
  /// Adds kernel `joiner` (from a task on any kernel), with an empty CSpace. Errors as
  /// Replicated::join.
  Task<Result<void>> join(Kernel& k, KernelId joiner) const;
  /// Removes kernel `leaver` once what it started has finished. Its CSpace's capabilities
  /// stay in the table until reclaim, or an ancestor's revoke, removes them.
  Task<Result<void>> leave(Kernel& k, KernelId leaver) const;
  /// The members as `k`'s replica knows them, in increasing order.
  std::vector<KernelId> members(Kernel& k) const;

 private:
  friend struct Codec<CapabilityService>;
  friend class VSpace;
  friend struct Codec<VSpace>;
  explicit CapabilityService(std::shared_ptr<const detail::CapabilityObject> object) noexcept
      : object_(std::move(object)) {}

  std::shared_ptr<const detail::CapabilityObject> object_;
};

/// CapabilityOptions in messages (create in a kernel process).
template <>
struct Codec<CapabilityOptions> {
  /// Appends the options.
  static void encode(const CapabilityOptions& options, std::vector<std::byte>& out);
  /// The options; parse_error for bytes that are not some.
  static Result<CapabilityOptions> decode(std::span<const std::byte> bytes);
};

/// A CapabilityService handle in messages: passed to a task of a kernel process, where it
/// names that kernel's replica of the table.
template <>
struct Codec<CapabilityService> {
  /// Appends what names the service.
  static void encode(const CapabilityService& service, std::vector<std::byte>& out);
  /// The service; parse_error for bytes that name none, not_found in a kernel that has not
  /// installed it or cannot reach its memory.
  static Result<CapabilityService> decode(std::span<const std::byte> bytes);
};

}  // namespace mk
