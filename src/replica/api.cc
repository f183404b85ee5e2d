// The engine's entry points behind Replicated<SM> (mk/replica_engine.h).
#include <algorithm>
#include <memory>
#include <set>

#include "mk/replica_engine.h"
#include "replica/host.h"
#include "replica/objects.h"
#include "replica/options.h"
#include "replica/replica.h"
#include "replica/wire.h"

namespace mk::detail {

namespace {

using replica::ReplicaHost;

/// invalid_argument unless the caller runs on `kernel`.
std::optional<Error> wrong_thread(Kernel& kernel, const char* what) {
  if (Kernel::current() == &kernel) return std::nullopt;
  return error(Errc::invalid_argument, std::string(what) + " on kernel " +
                                           std::to_string(kernel.id()) +
                                           " from a thread that is not running it");
}

/// The replica of `object` on `kernel` when the caller runs on `kernel`, from the object's
/// table: no lookup, the read path's way in. nullptr sends the caller to `find`.
replica::Replica* installed_here(Kernel& kernel, const ObjectInfo& object) noexcept {
  if (Kernel::current() != &kernel || kernel.id() >= object.installed_size) return nullptr;
  // Acquire pairs with ReplicaHost::install's release: with a kernel of another System that
  // shares this id, the entry is another thread's replica, and its kernel must read correctly
  // for the check below to turn it away.
  replica::Replica* found = object.installed[kernel.id()].load(std::memory_order_acquire);
  if (found == nullptr || &found->kernel() != &kernel) return nullptr;
  return found;
}

/// The replica of `object` on `kernel`, or why there is none.
Result<replica::Replica*> find(Kernel& kernel, const ObjectInfo& object, const char* what) {
  if (replica::Replica* found = installed_here(kernel, object)) return found;
  if (auto failure = wrong_thread(kernel, what)) return std::move(*failure);
  replica::Replica* found = ReplicaHost::of(kernel).find(object.id);
  // Ids are unique within a System only: a handle of another System must not reach an object
  // of this one that happens to share its id.
  if (found == nullptr || &found->object() != &object) {
    return error(Errc::invalid_argument,
                 std::string(what) + ": replicated object " + std::to_string(object.id) +
                     " is not installed on kernel " + std::to_string(kernel.id()) +
                     " (a handle of another System?)");
  }
  return found;
}

}  // namespace

Task<Result<ObjectRef>> create_object(Kernel& kernel, ObjectSpec spec) {
  if (auto failure = wrong_thread(kernel, "Replicated::create_async")) co_return *failure;
  // One view of the kernels throughout: those added meanwhile (System::add_kernel) join it
  // later; offline ones are left out.
  const std::size_t kernels = kernel.system_size();
  std::vector<bool> online(kernels);
  for (KernelId id = 0; id < kernels; ++id)
    online[id] = kernel.is_online(id);
  std::set<KernelId> reachable;
  for (KernelId id = 0; id < kernels; ++id) {
    if (online[id]) reachable.insert(id);
  }
  const MachineType* type = find_machine(spec.machine_type);
  if (type == nullptr) {
    co_return error(Errc::internal, "Replicated::create: state machine type " +
                                        std::to_string(spec.machine_type) + " is not registered");
  }
  auto options = replica::validate(std::move(spec.options), online, type->has_keys);
  if (!options) co_return std::move(options).error();
  ReplicaHost& host = ReplicaHost::of(kernel);
  auto object = std::make_shared<ObjectInfo>();
  object->id = host.next_object_id();
  object->system_id = kernel.system_id();
  object->machine_type = spec.machine_type;
  object->installed_size = kernels;
  object->installed = std::make_unique<std::atomic<replica::Replica*>[]>(object->installed_size);
  object->options = std::move(*options);
  object->make = type->make;
  object->has_keys = type->has_keys;
  ObjectRef shared = replica::adopt_object(kernel.system_id(), std::move(object));

  // Every online kernel learns the object (members get a replica), so that any of them can later
  // join it or ask for a change; the creator returns once all have.
  auto latch = std::make_shared<ProposalState<bool>>(kernel);
  host.creating[shared->id] = replica::CreateWait{
      latch, reachable,
      host.add_deadline(kernel.now() + shared->options.timeout,
                        replica::Deadline{shared->id, replica::Deadline::Kind::create, 0})};
  for (KernelId target = 0; target < kernels; ++target) {
    if (online[target]) host.send_install(target, *shared, spec.state);
  }
  auto installed = co_await Proposal<bool>(latch);
  if (!installed) co_return std::move(installed).error();
  co_return shared;
}

std::size_t max_op_size() noexcept {
  return replica::kMaxOp;
}

void propose(Kernel& kernel, const ObjectInfo& object, std::vector<std::byte> op,
             std::shared_ptr<ProposalStateBase> state) {
  auto found = find(kernel, object, "Replicated::propose");
  if (!found) {
    state->fail(std::move(found).error());
    return;
  }
  (*found)->propose(std::move(op), std::move(state));
}

Result<const void*> local_state(Kernel& kernel, const ObjectInfo& object) {
  replica::Replica* here = installed_here(kernel, object);
  if (here != nullptr && here->member()) return here->machine()->state();
  auto found = find(kernel, object, "Replicated::local");
  if (!found) return std::move(found).error();
  if (!(*found)->member()) return std::move(*(*found)->not_member("Replicated::local"));
  return (*found)->machine()->state();
}

bool read_now(Kernel& kernel, const ObjectInfo& object, ReadWaiter& waiter) {
  if (replica::Replica* here = installed_here(kernel, object)) return here->read_now(waiter);
  auto found = find(kernel, object, "Replicated::read");
  if (!found) {
    waiter.error = std::move(found).error();
    return true;
  }
  return (*found)->read_now(waiter);
}

void wait_read(Kernel& kernel, const ObjectInfo& object, ReadWaiter& waiter) {
  // read_now found the replica on this kernel a moment ago, in the same task step.
  ReplicaHost::of(kernel).find(object.id)->wait_read(waiter);
}

Task<Result<void>> change_membership(Kernel& kernel, ObjectRef object, bool join, KernelId target) {
  auto found = find(kernel, *object, join ? "Replicated::join" : "Replicated::leave");
  if (!found) co_return std::move(found).error();
  if (target >= kernel.system_size()) {
    co_return error(Errc::invalid_argument, std::string(join ? "join" : "leave") + ": no kernel " +
                                                std::to_string(target) + " (the system has " +
                                                std::to_string(kernel.system_size()) + ")");
  }
  if (join && kernel.has_failed(target)) {
    co_return error(Errc::closed, "join: kernel " + std::to_string(target) + " failed");
  }
  if (join && !kernel.is_online(target)) {
    co_return error(Errc::invalid_argument,
                    "join: kernel " + std::to_string(target) + " is offline");
  }
  if (join && target >= object->installed_size) {
    // Added to the System after the object was made: it has never heard of the object.
    auto described = co_await ReplicaHost::of(kernel).describe_to(object, target);
    if (!described) co_return std::move(described).error();
  }
  auto latch = std::make_shared<ProposalState<bool>>(kernel);
  (*found)->request_change(join, target, latch);
  auto done = co_await Proposal<bool>(latch);
  if (!done) co_return std::move(done).error();
  co_return Result<void>();
}

std::vector<KernelId> members(Kernel& kernel, const ObjectInfo& object) {
  auto found = find(kernel, object, "Replicated::members");
  if (!found) return {};
  return (*found)->members();
}

std::uint64_t applied_count(Kernel& kernel, const ObjectInfo& object) {
  auto found = find(kernel, object, "Replicated::applied");
  return found ? (*found)->applied() : 0;
}

std::vector<OpId> history(Kernel& kernel, const ObjectInfo& object) {
  auto found = find(kernel, object, "Replicated::history");
  if (!found) return {};
  return (*found)->history();
}

}  // namespace mk::detail
