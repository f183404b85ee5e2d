// NameService: names to values over a Replicated<NameTable> with ordered broadcast.
#include "mk/naming.h"

#include <utility>

#include "mk/replicated.h"
#include "services/name_table.h"
#include "services/watch_registry.h"

namespace mk {

namespace detail {

/// What a NameService handle refers to; immutable once made.
struct NamingObject {
  Replicated<services::NameTable> table;
  std::uint64_t instance = 0;
};

}  // namespace detail

namespace {

using services::NameOp;
using services::NameStatus;
using services::NameTable;
using Object = std::shared_ptr<const detail::NamingObject>;

template <class T>
Task<Result<T>> failed(Error failure) {
  co_return std::move(failure);
}

std::string quoted(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out.append(1, '\'').append(name).append(1, '\'');
  return out;
}

/// Proposes `op` and turns the table's answer into the caller's Result.
Task<Result<void>> update(Object object, Kernel& k, NameOp op) {
  auto outcome = co_await object->table.propose(k, op);
  if (!outcome) co_return std::move(outcome).error();
  switch (outcome->status) {
    case NameStatus::ok:
      co_return Result<void>();
    case NameStatus::already_exists:
      co_return error(Errc::already_exists,
                      "name " + quoted(op.name_view()) + " is already registered");
    case NameStatus::not_found:
      co_return error(Errc::not_found, "name " + quoted(op.name_view()) + " is not registered");
    case NameStatus::invalid:
      break;
  }
  co_return error(Errc::internal, "name update for " + quoted(op.name_view()) +
                                      " was malformed when applied, though checked when made");
}

Result<std::string> find(const NameTable& table, std::string_view name) {
  if (const std::string* value = table.find(name)) return *value;
  return error(Errc::not_found, "name " + quoted(name) + " is not registered");
}

/// NameService::create's task: it captures nothing, so it also runs in a kernel process.
struct CreateNameService {
  Task<Result<NameService>> operator()(Kernel& k, NameServiceOptions options) const {
    return NameService::create_async(k, std::move(options));
  }
};

Task<Result<std::string>> read_name(Object object, Kernel& k, NameOp key) {
  auto found = co_await object->table.read(
      k, [&key](const NameTable& table) { return find(table, key.name_view()); });
  if (!found) co_return std::move(found).error();
  co_return std::move(*found);
}

}  // namespace

Result<NameService> NameService::create(System& system, NameServiceOptions options) {
  KernelId host = 0;
  const auto& members = options.replica.kernels;
  if (!members.empty() && members.front() < system.size()) host = members.front();
  auto made = system.run(host, CreateNameService{}, std::move(options));
  if (!made) return std::move(made).error();
  return std::move(*made);
}

void Codec<NameServiceOptions>::encode(const NameServiceOptions& options,
                                       std::vector<std::byte>& out) {
  Codec<ReplicaOptions>::encode(options.replica, out);
}

Result<NameServiceOptions> Codec<NameServiceOptions>::decode(std::span<const std::byte> bytes) {
  auto replica = Codec<ReplicaOptions>::decode(bytes);
  if (!replica) return std::move(replica).error();
  return NameServiceOptions{std::move(replica).value()};
}

void Codec<NameService>::encode(const NameService& service, std::vector<std::byte>& out) {
  Codec<std::uint64_t>::encode(service.object_->instance, out);
  Codec<Replicated<services::NameTable>>::encode(service.object_->table, out);
}

Result<NameService> Codec<NameService>::decode(std::span<const std::byte> bytes) {
  if (bytes.size() < sizeof(std::uint64_t)) {
    return error(Errc::parse_error, "NameService handle: too short");
  }
  auto instance = Codec<std::uint64_t>::decode(bytes.first(sizeof(std::uint64_t)));
  auto table = Codec<Replicated<services::NameTable>>::decode(bytes.subspan(sizeof(std::uint64_t)));
  if (!instance) return std::move(instance).error();
  if (!table) return std::move(table).error();
  return NameService(std::make_shared<detail::NamingObject>(
      detail::NamingObject{std::move(table).value(), *instance}));
}

Task<Result<NameService>> NameService::create_async(Kernel& k, NameServiceOptions options) {
  if (options.replica.protocol != Protocol::ordered) {
    co_return error(Errc::invalid_argument,
                    "options.replica.protocol: the name service needs ordered, not " +
                        std::string(to_string(options.replica.protocol)));
  }
  const std::uint64_t instance = k.extension<services::WatchRegistry>().next_instance();
  auto made = co_await Replicated<NameTable>::create_async(k, NameTable(instance),
                                                           std::move(options.replica));
  if (!made) co_return std::move(made).error();
  auto object =
      std::make_shared<detail::NamingObject>(detail::NamingObject{std::move(*made), instance});
  co_return NameService(std::move(object));
}

Task<Result<void>> NameService::register_name(Kernel& k, std::string_view name,
                                              std::string_view value) const {
  if (auto valid = validate_name(name); !valid) return failed<void>(std::move(valid).error());
  if (auto valid = validate_value(value); !valid) return failed<void>(std::move(valid).error());
  return update(object_, k, NameOp::make(NameOp::Kind::register_name, name, value));
}

Task<Result<void>> NameService::unregister(Kernel& k, std::string_view name) const {
  if (auto valid = validate_name(name); !valid) return failed<void>(std::move(valid).error());
  return update(object_, k, NameOp::make(NameOp::Kind::unregister, name));
}

Task<Result<std::string>> NameService::lookup(Kernel& k, std::string_view name) const {
  if (auto valid = validate_name(name); !valid) {
    return failed<std::string>(std::move(valid).error());
  }
  // The name is copied now: the returned task may run after the caller's string is gone.
  return read_name(object_, k, NameOp::make(NameOp::Kind::register_name, name));
}

Result<std::string> NameService::lookup_now(Kernel& k, std::string_view name) const {
  if (auto valid = validate_name(name); !valid) return std::move(valid).error();
  auto found =
      object_->table.local(k, [name](const NameTable& table) { return find(table, name); });
  if (!found) return std::move(found).error();
  return std::move(*found);
}

Result<NameWatch> NameService::watch(Kernel& k, std::string_view prefix,
                                     WatchOptions options) const {
  if (auto valid = validate_prefix(prefix); !valid) return std::move(valid).error();
  if (options.capacity == 0 || options.capacity > kMaxWatchCapacity) {
    return error(Errc::invalid_argument, "options.capacity: " + std::to_string(options.capacity) +
                                             " is not in 1.." + std::to_string(kMaxWatchCapacity));
  }
  auto start = object_->table.local(k, [](const NameTable& table) { return table.sequence(); });
  if (!start) return std::move(start).error();
  auto queue = std::make_shared<detail::WatchQueue>();
  queue->kernel = &k;
  queue->instance = object_->instance;
  queue->prefix = std::string(prefix);
  queue->capacity = options.capacity;
  queue->start_sequence = *start;
  k.extension<services::WatchRegistry>().add(queue);
  return NameWatch(std::move(queue));
}

Result<std::uint64_t> NameService::sequence(Kernel& k) const {
  return object_->table.local(k, [](const NameTable& table) { return table.sequence(); });
}

Task<Result<void>> NameService::join(Kernel& k, KernelId joiner) const {
  return object_->table.join(k, joiner);
}

Task<Result<void>> NameService::leave(Kernel& k, KernelId leaver) const {
  return object_->table.leave(k, leaver);
}

std::vector<KernelId> NameService::members(Kernel& k) const {
  return object_->table.members(k);
}

}  // namespace mk
