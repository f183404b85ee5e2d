// The type-erased engine behind Replicated<SM> (src/replica). Not for direct use: the
// protocols work on bytes here so that they are compiled once, not once per state machine.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/proposal.h"
#include "mk/replica_options.h"
#include "mk/result.h"
#include "mk/task.h"

namespace mk::replica {
class Replica;
}

namespace mk::detail {

/// One replica's state machine, seen as bytes in and out.
class ErasedMachine {
 public:
  virtual ~ErasedMachine() = default;
  /// Decodes `op` and runs the machine's check (success when it has none). Like every method
  /// here, user code that throws gives apply_failed.
  virtual Result<void> check(std::span<const std::byte> op) const = 0;
  /// Decodes `op` and appends the keys it touches (two_phase only).
  virtual Result<void> keys(std::span<const std::byte> op,
                            std::vector<std::uint64_t>& out) const = 0;
  /// Decodes and applies `op`, running check first when `checked`. Its result goes to `sink`
  /// (a ProposalState of the machine's Result) when non-null. On error nothing was applied.
  virtual Result<void> apply(std::span<const std::byte> op, bool checked,
                             ProposalStateBase* sink) = 0;
  /// Appends the encoded state (Codec<SM>).
  virtual Result<void> snapshot(std::vector<std::byte>& out) const = 0;
  /// The SM itself.
  virtual const void* state() const noexcept = 0;
};

/// Makes a replica from encoded state (Codec<SM>::decode).
using MachineFactory = Result<std::unique_ptr<ErasedMachine>> (*)(std::span<const std::byte>);

/// What the engine knows of a state machine type.
struct MachineType {
  MachineFactory make = nullptr;  ///< Builds a replica from state bytes.
  bool has_keys = false;          ///< SM::keys exists (two_phase allowed).
};

/// Gives a state machine type the next number; called while the program starts (static
/// initialisation, through Replicated<SM>), so every kernel process forked from the program
/// numbers its types alike. Objects name their type by this number in messages.
std::uint32_t register_machine(MachineType type);
/// The type numbered `id`, or nullptr for a number nothing was given (a bad message).
const MachineType* find_machine(std::uint32_t id) noexcept;

/// Names a replicated object within its System: the creating kernel's id in the high half.
using ObjectId = std::uint64_t;

/// What never changes about an object; shared, immutable, by every kernel of the System.
struct ObjectInfo {
  ObjectId id = 0;                 ///< Its name, unique within its System.
  std::uint64_t system_id = 0;     ///< Kernel::system_id of the System it belongs to.
  std::uint32_t machine_type = 0;  ///< register_machine's number of its SM.
  ReplicaOptions options;          ///< As validated; kernels sorted, never empty.
  MachineFactory make = nullptr;   ///< Builds a replica from state bytes.
  bool has_keys = false;           ///< SM::keys exists (two_phase allowed).
  /// By KernelId, for the kernels the System had at creation: the replica installed on that
  /// kernel, so that reads find it without a lookup. Each entry is stored once, by its own
  /// kernel; entries are only ever read by the kernel that owns them, so they do not bounce.
  std::unique_ptr<std::atomic<replica::Replica*>[]> installed;
  std::size_t installed_size = 0;  ///< Entries in `installed`.
};

/// A handle's reference to its object.
using ObjectRef = std::shared_ptr<const ObjectInfo>;

/// What create_object needs.
struct ObjectSpec {
  ReplicaOptions options;          ///< Unvalidated.
  std::uint32_t machine_type = 0;  ///< register_machine's number of the SM.
  std::vector<std::byte> state;    ///< Codec<SM> of the initial state.
};

/// Appends what a handle says of its object (Codec<Replicated<SM>>): its id, its type, its
/// options.
void encode_handle(const ObjectInfo& object, std::vector<std::byte>& out);
/// The object a handle's bytes name, if it is of `machine_type`. In a kernel (a task of a
/// kernel process decoding its arguments) it is that kernel's own description of the object,
/// not_found when the kernel has not installed it; outside the kernels (the program, decoding
/// a task's value) a description of its own, for options() and for passing on. parse_error
/// for bytes that name no object of that type.
Result<ObjectRef> decode_handle(std::span<const std::byte> bytes, std::uint32_t machine_type);

/// Validates, then installs the object on every kernel of the System (a replica on members)
/// and returns once all have it. From a task on `kernel`.
Task<Result<ObjectRef>> create_object(Kernel& kernel, ObjectSpec spec);

/// The largest encoded operation a proposal carries.
std::size_t max_op_size() noexcept;

/// Starts agreement on `op` (encoded) from `kernel`; completes `state` later, or at once on
/// bad input.
void propose(Kernel& kernel, const ObjectInfo& object, std::vector<std::byte> op,
             std::shared_ptr<ProposalStateBase> state);

/// `kernel`'s replica's state; invalid_argument when it is not a member.
Result<const void*> local_state(Kernel& kernel, const ObjectInfo& object);

/// A read waiting for its replica to catch up.
struct ReadWaiter {
  std::coroutine_handle<> handle;  ///< Resumed when done.
  std::optional<Error> error;      ///< Set on failure.
  const void* state = nullptr;     ///< Set on success.
  std::uint64_t target = 0;        ///< What the replica must have applied, fixed at the start.
};

/// Starts a linearizable read; true when it completed at once (state or error set), else
/// wait_read must follow.
bool read_now(Kernel& kernel, const ObjectInfo& object, ReadWaiter& waiter);
/// Suspends a read that read_now could not complete; `waiter.handle` resumes when done.
void wait_read(Kernel& kernel, const ObjectInfo& object, ReadWaiter& waiter);

/// Adds (`join`) or removes kernel `target`; from a task on any kernel.
Task<Result<void>> change_membership(Kernel& kernel, ObjectRef object, bool join, KernelId target);

/// Members as `kernel`'s replica knows them.
std::vector<KernelId> members(Kernel& kernel, const ObjectInfo& object);
/// Updates applied by `kernel`'s replica.
std::uint64_t applied_count(Kernel& kernel, const ObjectInfo& object);
/// The OpIds `kernel`'s replica applied, in order (record_history).
std::vector<OpId> history(Kernel& kernel, const ObjectInfo& object);

}  // namespace mk::detail
