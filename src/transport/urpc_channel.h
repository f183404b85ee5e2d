// The urpc channel: a ring of cache-line slots on the receiver's NUMA node.
#pragma once

#include <cstddef>
#include <memory>

#include "mk/channel.h"
#include "mk/result.h"
#include "mk/slot_format.h"
#include "mk/urpc.h"

namespace mk::transport {

/// Both ends of a urpc channel of `geometry`, its ring on NUMA node `node` (-1: the caller's).
Result<UrpcChannel> make_urpc_channel(const SlotGeometry& geometry, int node);

/// Bytes of a shared urpc ring of `geometry` with `aux_lines` lines in front for the layer
/// above.
std::size_t shared_urpc_bytes(const SlotGeometry& geometry, std::size_t aux_lines);

/// Where the slots of such a ring start: after the aux lines and the control words, which are
/// `geometry.separation` apart (docs/transport.md, "Flow control").
std::size_t shared_urpc_slots_offset(const SlotGeometry& geometry, std::size_t aux_lines);

/// The receiving end of a urpc channel whose ring is a memfd that the sending process maps too.
struct SharedUrpcReceiver {
  std::unique_ptr<ChannelReceiver> receiver;  ///< Keep in this process.
  int fd = -1;  ///< The memfd, for attach_urpc_sender there; valid while `receiver` lives.
  /// The zeroed lines in front of the ring, shared with the sender, for the layer above; they
  /// stay mapped while this pointer or the receiver lives.
  std::shared_ptr<std::byte> aux;
};

/// Makes a shared urpc ring on NUMA node `node` (-1: the caller's) and its receiving end.
Result<SharedUrpcReceiver> make_shared_urpc_receiver(const SlotGeometry& geometry, int node,
                                                     std::size_t aux_lines);

/// The sending end of a shared urpc ring, and its aux lines.
struct SharedUrpcSender {
  std::unique_ptr<ChannelSender> sender;  ///< Keep in this process.
  std::shared_ptr<std::byte> aux;         ///< As SharedUrpcReceiver::aux.
};

/// Maps the ring whose memfd `fd` came from the receiving process, after checking it is one of
/// `geometry` and `aux_lines` (invalid_argument otherwise), and makes its sending end. Does not
/// take `fd`.
Result<SharedUrpcSender> attach_urpc_sender(const SlotGeometry& geometry, int fd,
                                            std::size_t aux_lines);

}  // namespace mk::transport
