// mk::NameService: a replicated name table with local lookups and watches.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mk/codec.h"
#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/name_rules.h"
#include "mk/replica_options.h"
#include "mk/result.h"
#include "mk/system.h"
#include "mk/task.h"

namespace mk {

namespace detail {
struct WatchQueue;
struct NamingObject;
}  // namespace detail

/// One change of a name, as a watch reports it.
struct NameEvent {
  /// What happened to the name.
  enum class Kind : std::uint8_t { registered, unregistered };

  /// Registered or unregistered.
  Kind kind = Kind::registered;
  /// The name that changed.
  std::string name;
  /// registered: the new value; unregistered: the value the name had.
  std::string value;
  /// The change's number: the service's changes are numbered 1, 2, 3... in their agreed order,
  /// the same numbers on every kernel.
  std::uint64_t sequence = 0;

  /// Equal when every field is.
  friend bool operator==(const NameEvent&, const NameEvent&) = default;
};

/// How a NameService is kept.
struct NameServiceOptions {
  /// Members, sequencer, route and timeout of the replicated table. The protocol must be
  /// Protocol::ordered (the default): every update is checked against the table in one total
  /// order, which is what makes "register fails if taken" well defined everywhere.
  ReplicaOptions replica;
};

/// How a watch queues changes.
struct WatchOptions {
  /// Changes a watch holds before its watcher must take some; 1 to kMaxWatchCapacity.
  std::size_t capacity = 1024;
};

/// The largest WatchOptions::capacity.
inline constexpr std::size_t kMaxWatchCapacity = std::size_t{1} << 20;

/// A task's subscription to the changes of names with a prefix, on one kernel. It reports every
/// change applied on its kernel's replica after the watch was made, in the order applied (the
/// agreed order), each once. If the watcher falls behind by more than the capacity, the watch
/// ends: next() gives the events queued before, then `full` naming the first change it could
/// not queue and how many were missed (never a silent drop). Move-only; use and destroy it on
/// the kernel that made it.
class NameWatch {
 public:
  /// `co_await watch.next()` -> Result<NameEvent>.
  class NextAwaiter {
   public:
    /// Checks the use (kernel, single waiter) at once; a misuse is reported by await_resume.
    explicit NextAwaiter(std::shared_ptr<detail::WatchQueue> queue) noexcept;
    NextAwaiter(const NextAwaiter&) = delete;
    NextAwaiter& operator=(const NextAwaiter&) = delete;
    /// Forgets the waiting task, if it is destroyed while waiting (at shutdown).
    ~NextAwaiter();
    /// True when a change or the overflow error is queued, or on misuse.
    bool await_ready() const noexcept;
    /// Waits for the next change applied on the watch's kernel.
    bool await_suspend(std::coroutine_handle<> handle) noexcept;
    /// The oldest queued change, or the error.
    Result<NameEvent> await_resume();

   private:
    std::shared_ptr<detail::WatchQueue> queue_;
    std::coroutine_handle<> handle_;
    const char* misuse_ = nullptr;
  };

  /// Takes over `other`'s watch; `other` then reports invalid_argument.
  NameWatch(NameWatch&&) noexcept = default;
  /// Stops this watch and takes over `other`'s; `other` then reports invalid_argument.
  NameWatch& operator=(NameWatch&&) noexcept = default;
  NameWatch(const NameWatch&) = delete;
  NameWatch& operator=(const NameWatch&) = delete;
  /// Stops the queueing of changes for this watch.
  ~NameWatch();

  /// The next change, waiting for one if none is queued. Errors: full (the watch overflowed,
  /// see the class comment; every later next() gives it too), invalid_argument (awaited on
  /// another kernel, by two tasks at once, or on a moved-from watch).
  NextAwaiter next() const noexcept { return NextAwaiter(queue_); }
  /// Changes queued and not yet taken.
  std::size_t queued() const noexcept;
  /// The number of the last change the kernel's replica had applied when the watch was made:
  /// the watch reports the changes numbered after it. A lookup_now made in the same turn as
  /// the watch (without a co_await in between) sees the table as of this number.
  std::uint64_t start_sequence() const noexcept;
  /// The prefix watched ("" is every name).
  const std::string& prefix() const noexcept;

 private:
  friend class NameService;
  explicit NameWatch(std::shared_ptr<detail::WatchQueue> queue) noexcept;

  std::shared_ptr<detail::WatchQueue> queue_;
};

/// A replicated name service: a table name -> value with a replica on every member kernel,
/// updated by ordered broadcast (mk::Replicated with Protocol::ordered) and read locally.
/// Names are 1 to kMaxNameLength bytes of [A-Za-z0-9._/-], values 0 to kMaxValueSize bytes
/// (mk/name_rules.h). Every operation is linearizable (docs/naming.md says why). A NameService
/// is a small copyable handle, safe to copy into tasks on any kernel; every method except
/// create is called from a task on a member kernel `k` (the kernel it runs on).
class NameService {
 public:
  /// From outside the kernels (blocks, like System::run): makes the service with an empty table
  /// on every member kernel. Errors: invalid_argument naming the bad option (a protocol other
  /// than ordered, or a ReplicaOptions field), or System::run's.
  static Result<NameService> create(System& system, NameServiceOptions options = {});
  /// Same, from a task on any kernel of the system (needed under the simulator).
  static Task<Result<NameService>> create_async(Kernel& k, NameServiceOptions options = {});

  /// `co_await ns.register_name(k, name, value)` -> Result<void>: binds `name` to `value` unless
  /// it is taken. Errors: already_exists (taken), invalid_argument (a bad name, see
  /// validate_name; or k is not a member), too_large (value), and the agreement's errors
  /// (timed_out: the outcome is unknown, it may still be applied; shutting_down). Arguments
  /// are checked and copied before this returns.
  Task<Result<void>> register_name(Kernel& k, std::string_view name, std::string_view value) const;
  /// `co_await ns.unregister(k, name)` -> Result<void>: removes `name`. Errors: not_found (not
  /// registered), invalid_argument, and the agreement's errors as for register_name.
  Task<Result<void>> unregister(Kernel& k, std::string_view name) const;
  /// `co_await ns.lookup(k, name)` -> Result<std::string>, the value: linearizable, and local
  /// (no message is sent). It may wait for updates this kernel has already been told of to be
  /// applied here. Errors: not_found, invalid_argument, timed_out.
  Task<Result<std::string>> lookup(Kernel& k, std::string_view name) const;
  /// The value as `k`'s replica has it now, without waiting: may miss updates agreed but not
  /// yet applied here (not linearizable). Errors: not_found, invalid_argument.
  Result<std::string> lookup_now(Kernel& k, std::string_view name) const;
  /// Starts watching the names that begin with `prefix` ("" for all) on kernel k: see
  /// NameWatch. Errors: invalid_argument (a bad prefix, capacity, or k not a member).
  Result<NameWatch> watch(Kernel& k, std::string_view prefix, WatchOptions options = {}) const;

  /// Number of changes `k`'s replica has applied; invalid_argument when k is not a member.
  Result<std::uint64_t> sequence(Kernel& k) const;
  /// Adds kernel `joiner` (from a task on any kernel): it gets a copy of the table, then serves
  /// lookups. Errors as Replicated::join.
  Task<Result<void>> join(Kernel& k, KernelId joiner) const;
  /// Removes kernel `leaver` once what it started has finished. Its watches then report
  /// nothing more.
  Task<Result<void>> leave(Kernel& k, KernelId leaver) const;
  /// The members as `k`'s replica knows them, in increasing order.
  std::vector<KernelId> members(Kernel& k) const;

 private:
  friend struct Codec<NameService>;
  explicit NameService(std::shared_ptr<const detail::NamingObject> object) noexcept
      : object_(std::move(object)) {}

  std::shared_ptr<const detail::NamingObject> object_;
};

/// NameServiceOptions in messages (NameService::create in a kernel process).
template <>
struct Codec<NameServiceOptions> {
  /// Appends the options.
  static void encode(const NameServiceOptions& options, std::vector<std::byte>& out);
  /// The options; parse_error for bytes that are not some.
  static Result<NameServiceOptions> decode(std::span<const std::byte> bytes);
};

/// A NameService handle in messages: passed to a task of a kernel process (System::run), where
/// it names that kernel's replica of the table, and returned by NameService::create.
template <>
struct Codec<NameService> {
  /// Appends what names the service.
  static void encode(const NameService& service, std::vector<std::byte>& out);
  /// The service; parse_error for bytes that name none, not_found in a kernel that has not
  /// installed it.
  static Result<NameService> decode(std::span<const std::byte> bytes);
};

}  // namespace mk
