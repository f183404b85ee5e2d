// Names of the agreement protocols.
#include "mk/protocol.h"

#include <string>

namespace mk {

std::string_view to_string(Protocol protocol) noexcept {
  switch (protocol) {
    case Protocol::one_phase:
      return "one_phase";
    case Protocol::two_phase:
      return "two_phase";
    case Protocol::ordered:
      return "ordered";
  }
  return "unknown";
}

Result<Protocol> parse_protocol(std::string_view name) {
  for (Protocol protocol : {Protocol::one_phase, Protocol::two_phase, Protocol::ordered}) {
    if (name == to_string(protocol)) return protocol;
  }
  return error(Errc::invalid_argument, "unknown protocol '" + std::string(name) +
                                           "' (expected one_phase, two_phase or ordered)");
}

}  // namespace mk
