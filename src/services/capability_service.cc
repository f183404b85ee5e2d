// CapabilityService: capability operations over a Replicated<CapTable> with ordered broadcast.
#include "mk/capability_service.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <utility>

#include "mk/replicated.h"
#include "mk/skb.h"
#include "services/cap_table.h"
#include "services/capability_object.h"

namespace mk {

namespace {

using services::CapOp;
using services::CapOutcome;
using services::CapTable;
using Object = std::shared_ptr<const detail::CapabilityObject>;

/// A kernel's source of service numbers and transfer secrets.
class CapKernelState {
 public:
  explicit CapKernelState(Kernel& kernel) : kernel_(kernel), random_(std::random_device{}()) {}

  /// A number no other service made in this System has: the kernel's id and a count.
  std::uint64_t next_instance() noexcept {
    return (static_cast<std::uint64_t>(kernel_.id()) << 32) | ++made_;
  }
  /// 64 unpredictable bits (seeded from the OS on the kernel's first use, after any fork).
  std::uint64_t secret() { return random_(); }

 private:
  Kernel& kernel_;
  std::mt19937_64 random_;
  std::uint64_t made_ = 0;
};

/// An update of `kind` whose only argument is a slot of the proposer's CSpace.
CapOp on_slot(CapOp::Kind kind, CapSlot slot) {
  CapOp op;
  op.kind = kind;
  op.slot = slot;
  return op;
}

}  // namespace

namespace services {

Task<Result<CapOutcome>> update_table(std::shared_ptr<const detail::CapabilityObject> object,
                                      Kernel& k, CapOp op, Completion completion) {
  op.kernel = k.id();
  auto outcome = co_await object->table.propose(k, op, completion);
  if (!outcome) co_return std::move(outcome).error();
  co_return std::move(*outcome);
}

}  // namespace services

namespace {

template <class T>
Task<Result<T>> failed(Error failure) {
  co_return std::move(failure);
}

/// Proposes `op` from kernel k; the table's answer, or the agreement's error.
Task<Result<CapOutcome>> update(Object object, Kernel& k, CapOp op) {
  return services::update_table(std::move(object), k, op, Completion::local);
}

/// The first new slot. Memory handed out (allocate, retype) completes `everywhere`: the
/// proposer's replica zeroes the bytes when it applies the update, and it must have done so
/// before anyone can write them (docs/capabilities.md, "Zeroing").
Task<Result<CapSlot>> first_slot(Object object, Kernel& k, CapOp op,
                                 Completion completion = Completion::local) {
  auto outcome = co_await services::update_table(std::move(object), k, op, completion);
  if (!outcome) co_return std::move(outcome).error();
  co_return outcome->slots.front();
}

Task<Result<std::vector<CapSlot>>> all_slots(Object object, Kernel& k, CapOp op) {
  auto outcome = co_await services::update_table(std::move(object), k, op, Completion::everywhere);
  if (!outcome) co_return std::move(outcome).error();
  co_return std::move(outcome->slots);
}

/// Removals complete once every replica applied them: a mapping of what they remove is gone
/// from every page table by then (docs/vspace.md).
Task<Result<std::size_t>> removed(Object object, Kernel& k, CapOp op) {
  auto outcome = co_await services::update_table(std::move(object), k, op, Completion::everywhere);
  if (!outcome) co_return std::move(outcome).error();
  co_return outcome->removed;
}

Task<Result<CapGrant>> granted(Object object, Kernel& k, CapOp op) {
  auto outcome = co_await update(object, k, op);
  if (!outcome) co_return std::move(outcome).error();
  co_return CapGrant{object->instance, outcome->transfer, k.id(), op.to, op.secret};
}

/// CapabilityService::create's task: it captures nothing, so it also runs in a kernel process.
struct CreateCapabilityService {
  Task<Result<CapabilityService>> operator()(Kernel& k, std::uint64_t memory,
                                             CapabilityOptions options) const {
    auto found = CapabilityMemory::find(memory);
    if (!found) co_return std::move(found).error();
    co_return co_await CapabilityService::create_async(k, *found, std::move(options));
  }
};

/// The bytes [offset, offset + length) of the Frame in `slot`, when it has `needed`: checked
/// on k's replica after it has applied every update k knew of (linearizable).
Task<Result<std::span<std::byte>>> frame_bytes(Object object, Kernel& k, CapSlot slot,
                                               CapRights needed, std::size_t offset,
                                               std::size_t length) {
  const KernelId self = k.id();
  auto memory = co_await object->table.read(
      k, [self, slot, needed](const CapTable& table) { return table.frame(self, slot, needed); });
  if (!memory) co_return std::move(memory).error();
  if (!*memory) co_return std::move(*memory).error();
  const services::CapMemory& frame = **memory;
  if (offset > frame.size || length > frame.size - offset) {
    co_return error(Errc::invalid_argument,
                    "bytes [" + std::to_string(offset) + ", " + std::to_string(offset + length) +
                        ") are past the end of the " + std::to_string(frame.size) +
                        "-byte Frame in slot " + std::to_string(slot));
  }
  std::span<std::byte> pool = object->memory.bytes(frame.node);
  if (frame.offset > pool.size() || frame.size > pool.size() - frame.offset) {
    co_return error(Errc::internal, "a Frame outside its node's pool");
  }
  co_return pool.subspan(frame.offset + offset, length);
}

Task<Result<void>> read_frame(Object object, Kernel& k, CapSlot slot, std::size_t offset,
                              std::span<std::byte> out) {
  auto bytes =
      co_await frame_bytes(std::move(object), k, slot, CapRights::read, offset, out.size());
  if (!bytes) co_return std::move(bytes).error();
  if (!out.empty()) std::memcpy(out.data(), bytes->data(), out.size());
  co_return Result<void>();
}

Task<Result<void>> write_frame(Object object, Kernel& k, CapSlot slot, std::size_t offset,
                               std::span<const std::byte> in) {
  auto bytes =
      co_await frame_bytes(std::move(object), k, slot, CapRights::write, offset, in.size());
  if (!bytes) co_return std::move(bytes).error();
  if (!in.empty()) std::memcpy(bytes->data(), in.data(), in.size());
  co_return Result<void>();
}

Task<Result<CapInfo>> identify_slot(Object object, Kernel& k, CapSlot slot) {
  const KernelId self = k.id();
  auto info = co_await object->table.read(
      k, [self, slot](const CapTable& table) { return table.identify(self, slot); });
  if (!info) co_return std::move(info).error();
  co_return std::move(*info);
}

Task<Result<KernelId>> target_of(Object object, Kernel& k, CapSlot slot, MessageType type) {
  const KernelId self = k.id();
  auto target = co_await object->table.read(
      k, [self, slot, type](const CapTable& table) { return table.endpoint(self, slot, type); });
  if (!target) co_return std::move(target).error();
  co_return std::move(*target);
}

}  // namespace

Result<CapabilityService> CapabilityService::create(System& system, const CapabilityMemory& memory,
                                                    CapabilityOptions options) {
  KernelId host = 0;
  const auto& members = options.replica.kernels;
  if (!members.empty() && members.front() < system.size()) host = members.front();
  auto made = system.run(host, CreateCapabilityService{}, memory.id(), std::move(options));
  if (!made) return std::move(made).error();
  return std::move(*made);
}

Task<Result<CapabilityService>> CapabilityService::create_async(Kernel& k,
                                                                const CapabilityMemory& memory,
                                                                CapabilityOptions options) {
  if (options.replica.protocol != Protocol::ordered) {
    co_return error(Errc::invalid_argument,
                    "options.replica.protocol: the capability service needs ordered, not " +
                        std::string(to_string(options.replica.protocol)));
  }
  if (options.cspace_slots == 0 || options.cspace_slots > kMaxCNodeSlots) {
    co_return error(Errc::invalid_argument,
                    "options.cspace_slots: " + std::to_string(options.cspace_slots) +
                        " is not in 1.." + std::to_string(kMaxCNodeSlots));
  }
  std::vector<std::pair<int, std::uint64_t>> pools;
  for (int node : memory.nodes())
    pools.emplace_back(node, memory.pool(node)->size());
  const std::uint64_t instance = k.extension<CapKernelState>().next_instance();
  const std::span<std::byte> window = memory.address_range();
  CapTable table(instance, options.cspace_slots, std::move(pools), NodeMemory::page_size(),
                 memory.id(), reinterpret_cast<std::uintptr_t>(window.data()), window.size());
  auto made =
      co_await Replicated<CapTable>::create_async(k, std::move(table), std::move(options.replica));
  if (!made) co_return std::move(made).error();
  co_return CapabilityService(std::make_shared<detail::CapabilityObject>(
      detail::CapabilityObject{std::move(*made), instance, memory}));
}

Task<Result<CapSlot>> CapabilityService::allocate(Kernel& k, std::size_t bytes, int node) const {
  if (bytes == 0) return failed<CapSlot>(error(Errc::invalid_argument, "allocate of 0 bytes"));
  CapOp op;
  op.kind = CapOp::Kind::allocate;
  op.node = node;
  op.bytes = bytes;
  return first_slot(object_, k, op, Completion::everywhere);
}

Task<Result<CapSlot>> CapabilityService::allocate(Kernel& k, std::size_t bytes,
                                                  const MemoryRequest& request) const {
  auto node = k.skb().memory_node(request);
  if (!node) return failed<CapSlot>(std::move(node).error());
  return allocate(k, bytes, *node);
}

Task<Result<std::vector<CapSlot>>> CapabilityService::retype(Kernel& k, CapSlot ram, CapType type,
                                                             std::size_t offset,
                                                             std::size_t object_bytes,
                                                             std::size_t count) const {
  if (count == 0 || count > kMaxRetypeCount) {
    return failed<std::vector<CapSlot>>(error(
        Errc::invalid_argument,
        "retype count " + std::to_string(count) + ", not 1 to " + std::to_string(kMaxRetypeCount)));
  }
  CapOp op;
  op.kind = CapOp::Kind::retype;
  op.slot = ram;
  op.type = type;
  op.offset = offset;
  op.bytes = object_bytes;
  op.count = static_cast<std::uint32_t>(count);
  return all_slots(object_, k, op);
}

Task<Result<CapSlot>> CapabilityService::copy(Kernel& k, CapSlot slot) const {
  const CapOp op = on_slot(CapOp::Kind::copy, slot);
  return first_slot(object_, k, op);
}

Task<Result<CapSlot>> CapabilityService::mint(Kernel& k, CapSlot slot, CapRights rights) const {
  CapOp op = on_slot(CapOp::Kind::mint, slot);
  op.rights = rights;
  return first_slot(object_, k, op);
}

Task<Result<CapGrant>> CapabilityService::transfer(Kernel& k, CapSlot slot, KernelId to,
                                                   CapRights rights) const {
  if (to == k.id()) {
    return failed<CapGrant>(
        error(Errc::invalid_argument, "transfer from kernel " + std::to_string(to) + " to itself"));
  }
  const auto members = object_->table.members(k);
  if (std::find(members.begin(), members.end(), to) == members.end()) {
    return failed<CapGrant>(
        error(Errc::invalid_argument, "transfer to kernel " + std::to_string(to) +
                                          ", which is not a member of the capability service"));
  }
  CapOp op;
  op.kind = CapOp::Kind::transfer;
  op.slot = slot;
  op.to = to;
  op.rights = rights;
  op.secret = k.extension<CapKernelState>().secret();
  return granted(object_, k, op);
}

Task<Result<CapSlot>> CapabilityService::accept(Kernel& k, const CapGrant& grant) const {
  if (grant.service != object_->instance) {
    return failed<CapSlot>(
        error(Errc::invalid_argument, "a grant of capability service " +
                                          std::to_string(grant.service) + ", not of this one (" +
                                          std::to_string(object_->instance) + ")"));
  }
  if (grant.to != k.id()) {
    return failed<CapSlot>(
        error(Errc::invalid_argument, "a grant for kernel " + std::to_string(grant.to) +
                                          ", accepted on kernel " + std::to_string(k.id())));
  }
  CapOp op;
  op.kind = CapOp::Kind::accept;
  op.transfer = grant.transfer;
  op.secret = grant.secret;
  op.to = grant.from;
  return first_slot(object_, k, op);
}

Task<Result<void>> CapabilityService::remove(Kernel& k, CapSlot slot) const {
  const CapOp op = on_slot(CapOp::Kind::remove, slot);
  auto gone = co_await removed(object_, k, op);
  if (!gone) co_return std::move(gone).error();
  co_return Result<void>();
}

Task<Result<std::size_t>> CapabilityService::revoke(Kernel& k, CapSlot slot) const {
  const CapOp op = on_slot(CapOp::Kind::revoke, slot);
  return removed(object_, k, op);
}

Task<Result<CapSlot>> CapabilityService::attach(Kernel& k, CapSlot cnode) const {
  const CapOp op = on_slot(CapOp::Kind::attach, cnode);
  return first_slot(object_, k, op);
}

Task<Result<CapSlot>> CapabilityService::make_endpoint(Kernel& k, MessageType type) const {
  if (type >= kFirstReservedMessageType) {
    return failed<CapSlot>(error(Errc::invalid_argument,
                                 "message type " + std::to_string(type) + " is reserved by mk"));
  }
  CapOp op;
  op.kind = CapOp::Kind::make_endpoint;
  op.message_type = type;
  return first_slot(object_, k, op);
}

Task<Result<std::size_t>> CapabilityService::reclaim(Kernel& k, KernelId gone) const {
  const auto members = object_->table.members(k);
  if (gone == k.id() || std::find(members.begin(), members.end(), gone) != members.end()) {
    return failed<std::size_t>(
        error(Errc::invalid_argument, "reclaim of kernel " + std::to_string(gone) +
                                          "'s CSpace: it is a member of the capability service"));
  }
  CapOp op;
  op.kind = CapOp::Kind::reclaim;
  op.to = gone;
  return removed(object_, k, op);
}

Task<Result<CapInfo>> CapabilityService::identify(Kernel& k, CapSlot slot) const {
  return identify_slot(object_, k, slot);
}

Task<Result<void>> CapabilityService::read(Kernel& k, CapSlot slot, std::size_t offset,
                                           std::span<std::byte> out) const {
  return read_frame(object_, k, slot, offset, out);
}

Task<Result<void>> CapabilityService::write(Kernel& k, CapSlot slot, std::size_t offset,
                                            std::span<const std::byte> in) const {
  return write_frame(object_, k, slot, offset, in);
}

Task<Result<KernelId>> CapabilityService::endpoint_target(Kernel& k, CapSlot slot,
                                                          MessageType type) const {
  return target_of(object_, k, slot, type);
}

Result<std::size_t> CapabilityService::used_slots(Kernel& k) const {
  const KernelId self = k.id();
  return object_->table.local(k, [self](const CapTable& table) { return table.used_slots(self); });
}

Result<NodeMemory::Usage> CapabilityService::memory_usage(Kernel& k, int node) const {
  auto usage = object_->table.local(k, [node](const CapTable& table) { return table.usage(node); });
  if (!usage) return std::move(usage).error();
  return std::move(*usage);
}

Task<Result<void>> CapabilityService::join(Kernel& k, KernelId joiner) const {
  return object_->table.join(k, joiner);
}

Task<Result<void>> CapabilityService::leave(Kernel& k, KernelId leaver) const {
  return object_->table.leave(k, leaver);
}

std::vector<KernelId> CapabilityService::members(Kernel& k) const {
  return object_->table.members(k);
}

void Codec<CapabilityOptions>::encode(const CapabilityOptions& options,
                                      std::vector<std::byte>& out) {
  Codec<std::uint32_t>::encode(options.cspace_slots, out);
  Codec<ReplicaOptions>::encode(options.replica, out);
}

Result<CapabilityOptions> Codec<CapabilityOptions>::decode(std::span<const std::byte> bytes) {
  if (bytes.size() < sizeof(std::uint32_t)) {
    return error(Errc::parse_error, "CapabilityOptions: too short");
  }
  auto slots = Codec<std::uint32_t>::decode(bytes.first(sizeof(std::uint32_t)));
  auto replica = Codec<ReplicaOptions>::decode(bytes.subspan(sizeof(std::uint32_t)));
  if (!slots) return std::move(slots).error();
  if (!replica) return std::move(replica).error();
  return CapabilityOptions{std::move(*replica), *slots};
}

void Codec<CapabilityService>::encode(const CapabilityService& service,
                                      std::vector<std::byte>& out) {
  Codec<std::uint64_t>::encode(service.object_->instance, out);
  Codec<std::uint64_t>::encode(service.object_->memory.id(), out);
  Codec<Replicated<CapTable>>::encode(service.object_->table, out);
}

Result<CapabilityService> Codec<CapabilityService>::decode(std::span<const std::byte> bytes) {
  constexpr std::size_t kWord = sizeof(std::uint64_t);
  if (bytes.size() < 2 * kWord) {
    return error(Errc::parse_error, "CapabilityService handle: too short");
  }
  auto instance = Codec<std::uint64_t>::decode(bytes.first(kWord));
  auto memory_id = Codec<std::uint64_t>::decode(bytes.subspan(kWord, kWord));
  auto table = Codec<Replicated<CapTable>>::decode(bytes.subspan(2 * kWord));
  if (!instance) return std::move(instance).error();
  if (!memory_id) return std::move(memory_id).error();
  if (!table) return std::move(table).error();
  auto memory = CapabilityMemory::find(*memory_id);
  if (!memory) return std::move(memory).error();
  return CapabilityService(std::make_shared<detail::CapabilityObject>(
      detail::CapabilityObject{std::move(*table), *instance, std::move(*memory)}));
}

}  // namespace mk
