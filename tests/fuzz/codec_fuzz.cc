// What crosses into and out of kernel processes as encoded values: System::run's arguments and
// values (mk::Codec of strings, vectors, optionals, Results), ReplicaOptions, and the
// descriptions and handles of replicated objects. Every decoder must reject malformed bytes
// with an error and never read past them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mk/codec.h"
#include "mk/replica_engine.h"
#include "mk/replica_options.h"
#include "replica/objects.h"

namespace {

/// A state machine type numbered as a program's first one would be, so that descriptions and
/// handles naming type 0 get past the type check to the rest of their bytes.
const std::uint32_t kSomeMachine = mk::detail::register_machine(mk::detail::MachineType{});

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto bytes = std::as_bytes(std::span(data + 1, size - 1));
  switch (data[0] % 7) {
    case 0:
      (void)mk::detail::decode_all<std::string, std::vector<std::uint32_t>, std::uint64_t>(bytes);
      break;
    case 1:
      (void)mk::Codec<std::vector<std::string>>::decode(bytes);
      break;
    case 2:
      (void)mk::Codec<mk::Result<std::optional<std::string>>>::decode(bytes);
      break;
    case 3:
      (void)mk::Codec<mk::ReplicaOptions>::decode(bytes);
      break;
    case 4:
      (void)mk::replica::decode_description(42, bytes);
      break;
    case 5:
      (void)mk::detail::decode_handle(bytes, kSomeMachine);
      break;
    case 6:
      (void)mk::Codec<std::vector<bool>>::decode(bytes);
      break;
  }
  return 0;
}
