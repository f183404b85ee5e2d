#include "replica/objects.h"

#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "mk/codec.h"
#include "mk/kernel.h"

namespace mk::replica {

namespace {

/// Written while the program starts (register_machine); read-only afterwards.
struct MachineTable {
  std::mutex mutex;
  std::vector<detail::MachineType> types;
};

MachineTable& machines() {
  static MachineTable table;
  return table;
}

/// The descriptions of the objects alive in this process.
struct ObjectTable {
  std::mutex mutex;
  std::map<std::pair<std::uint64_t, detail::ObjectId>, std::weak_ptr<const detail::ObjectInfo>>
      objects;
};

ObjectTable& objects() {
  static ObjectTable table;
  return table;
}

/// The most kernels a description may say the System had: far above any machine, far below
/// what would make its table a denial of service.
constexpr std::uint32_t kMaxKernels = 1u << 16;

struct DescriptionFront {
  std::uint64_t system_id;
  std::uint32_t machine_type;
  std::uint32_t installed_size;
};

}  // namespace

detail::ObjectRef find_object(std::uint64_t system, detail::ObjectId id) {
  ObjectTable& table = objects();
  std::lock_guard lock(table.mutex);
  auto it = table.objects.find({system, id});
  if (it == table.objects.end()) return nullptr;
  return it->second.lock();
}

detail::ObjectRef adopt_object(std::uint64_t system, detail::ObjectRef made) {
  ObjectTable& table = objects();
  std::lock_guard lock(table.mutex);
  auto& slot = table.objects[{system, made->id}];
  if (auto existing = slot.lock()) return existing;
  slot = made;
  // Forget the descriptions nobody holds any more, now and then, so the table follows the
  // objects alive rather than all that ever were.
  if (table.objects.size() % 64 == 0) {
    std::erase_if(table.objects, [](const auto& entry) { return entry.second.expired(); });
  }
  return made;
}

void encode_description(const detail::ObjectInfo& object, std::vector<std::byte>& out) {
  Codec<DescriptionFront>::encode(
      DescriptionFront{object.system_id, object.machine_type,
                       static_cast<std::uint32_t>(object.installed_size)},
      out);
  Codec<ReplicaOptions>::encode(object.options, out);
}

Result<detail::ObjectRef> decode_description(detail::ObjectId id,
                                             std::span<const std::byte> bytes) {
  if (bytes.size() < sizeof(DescriptionFront)) {
    return error(Errc::parse_error, "object description: too short");
  }
  auto front = Codec<DescriptionFront>::decode(bytes.first(sizeof(DescriptionFront)));
  auto options = Codec<ReplicaOptions>::decode(bytes.subspan(sizeof(DescriptionFront)));
  if (!front || !options) return error(Errc::parse_error, "object description: malformed");
  const detail::MachineType* type = detail::find_machine(front->machine_type);
  if (type == nullptr) {
    return error(Errc::parse_error, "object description: no state machine type numbered " +
                                        std::to_string(front->machine_type));
  }
  if (front->installed_size > kMaxKernels || options->kernels.empty()) {
    return error(Errc::parse_error, "object description: implausible kernels");
  }
  auto object = std::make_shared<detail::ObjectInfo>();
  object->id = id;
  object->system_id = front->system_id;
  object->machine_type = front->machine_type;
  object->options = std::move(options).value();
  object->make = type->make;
  object->has_keys = type->has_keys;
  object->installed_size = front->installed_size;
  object->installed = std::make_unique<std::atomic<replica::Replica*>[]>(object->installed_size);
  return detail::ObjectRef(std::move(object));
}

}  // namespace mk::replica

namespace mk::detail {

std::uint32_t register_machine(MachineType type) {
  auto& table = replica::machines();
  std::lock_guard lock(table.mutex);
  table.types.push_back(type);
  return static_cast<std::uint32_t>(table.types.size() - 1);
}

const MachineType* find_machine(std::uint32_t id) noexcept {
  auto& table = replica::machines();
  std::lock_guard lock(table.mutex);
  return id < table.types.size() ? &table.types[id] : nullptr;
}

void encode_handle(const ObjectInfo& object, std::vector<std::byte>& out) {
  Codec<ObjectId>::encode(object.id, out);
  replica::encode_description(object, out);
}

Result<ObjectRef> decode_handle(std::span<const std::byte> bytes, std::uint32_t machine_type) {
  if (bytes.size() < sizeof(ObjectId)) {
    return error(Errc::parse_error, "replicated object handle: too short");
  }
  ObjectId id = 0;
  std::memcpy(&id, bytes.data(), sizeof id);
  auto described = replica::decode_description(id, bytes.subspan(sizeof id));
  if (!described) return std::move(described).error();
  if ((*described)->machine_type != machine_type) {
    return error(Errc::parse_error, "replicated object " + std::to_string(id) +
                                        ": a handle of another state machine type");
  }
  Kernel* kernel = Kernel::current();
  if (kernel == nullptr) return std::move(described).value();
  // Ids are unique within a System only: a handle of another System must not reach an object
  // of this one that happens to share its id.
  if ((*described)->system_id != kernel->system_id()) {
    return error(Errc::invalid_argument, "replicated object " + std::to_string(id) +
                                             ": a handle of another System, used on kernel " +
                                             std::to_string(kernel->id()));
  }
  ObjectRef known = replica::find_object(kernel->system_id(), id);
  if (!known) {
    return error(Errc::not_found, "replicated object " + std::to_string(id) +
                                      " is not installed on kernel " +
                                      std::to_string(kernel->id()));
  }
  return known;
}

}  // namespace mk::detail
