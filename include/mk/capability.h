// mk capabilities: what a capability is (its type and rights) and what identify reports
// (docs/capabilities.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mk/channel.h"
#include "mk/kernel_id.h"

namespace mk {

/// The kind of object a capability refers to.
enum class CapType : std::uint8_t {
  ram = 1,    ///< Untyped memory of one NUMA node; retype makes the other memory types of it.
  frame = 2,  ///< Memory whose bytes can be read, written and mapped.
  cnode = 3,  ///< A table of slots: attached to a kernel's CSpace, it adds room for capabilities.
  endpoint = 4,  ///< The right to send one message type to one kernel.
};

/// The type's name as docs/capabilities.md writes it ("RAM", "Frame", "CNode", "Endpoint");
/// "unknown" for a value that is none of them.
std::string_view to_string(CapType type) noexcept;

/// What a capability's holder may do with it: a set of bits. Every operation checks them and
/// fails with permission_denied when one it needs is missing (docs/capabilities.md has the
/// table). A copy made by mint or transfer has at most its source's rights.
enum class CapRights : std::uint8_t {
  none = 0,   ///< No right: identify, copy, mint, revoke and remove still work.
  read = 1,   ///< Read a Frame's bytes.
  write = 2,  ///< Write a Frame's bytes; retype RAM; attach a CNode; send on an Endpoint.
  grant = 4,  ///< Pass the capability to another kernel (transfer).
  all = 7,    ///< read | write | grant.
};

/// The union of two sets of rights.
constexpr CapRights operator|(CapRights a, CapRights b) noexcept {
  return static_cast<CapRights>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
/// The intersection of two sets of rights.
constexpr CapRights operator&(CapRights a, CapRights b) noexcept {
  return static_cast<CapRights>(static_cast<std::uint8_t>(a) & static_cast<std::uint8_t>(b));
}
/// True when `held` has every right in `wanted`.
constexpr bool has_rights(CapRights held, CapRights wanted) noexcept {
  return (held & wanted) == wanted;
}

/// A slot of one kernel's CSpace: the only way user code names a capability. A slot number
/// means nothing on another kernel, and a slot emptied by delete or revoke may later hold
/// another capability, as a file descriptor may.
using CapSlot = std::uint32_t;

/// The most slots of one CNode (a root CNode or one made by retype).
inline constexpr std::uint32_t kMaxCNodeSlots = 1u << 16;
/// The most objects one retype makes.
inline constexpr std::uint32_t kMaxRetypeCount = 256;
/// Bytes of memory a CNode needs per slot (retype's object size is slots times this).
inline constexpr std::size_t kCNodeSlotBytes = 64;

/// The most transfers waiting for one kernel's accept.
inline constexpr std::size_t kMaxPendingGrants = 1024;

/// What identify reports about a capability.
struct CapInfo {
  CapType type = CapType::ram;         ///< Its type.
  CapRights rights = CapRights::none;  ///< Its rights.
  std::uint64_t object = 0;            ///< The object it refers to; copies share it.
  std::uint64_t size = 0;              ///< Bytes of memory (RAM, Frame, CNode); 0 for Endpoint.
  /// Where the memory starts in its node's pool and in that pool's memfd
  /// (CapabilityMemory::pool(node)->fd()), for another process's mmap; 0 for Endpoint.
  std::uint64_t offset = 0;
  int node = -1;                  ///< NUMA node of the memory (OS index); -1 for Endpoint.
  std::uint32_t slots = 0;        ///< CNode: slots it holds; 0 otherwise.
  KernelId endpoint_kernel = 0;   ///< Endpoint: the kernel it sends to.
  MessageType endpoint_type = 0;  ///< Endpoint: the message type it may send.

  /// Equal when every field is.
  friend bool operator==(const CapInfo&, const CapInfo&) = default;
};

}  // namespace mk
