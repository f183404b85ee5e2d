#include "mk/channel.h"

#include <array>
#include <cstring>
#include <string>

#include "transport/channel_options.h"
#include "transport/local_channel.h"
#include "transport/lockfree_channel.h"
#include "transport/urpc_channel.h"

namespace mk {

SendStatus ChannelSender::try_send_parts(MessageType type, std::span<const std::byte> head,
                                         std::span<const std::byte> body) {
  const std::size_t length = head.size() + body.size();
  if (length > kMaxPayload) return SendStatus::too_large;
  std::array<std::byte, kMaxPayload> joined;
  if (!head.empty()) std::memcpy(joined.data(), head.data(), head.size());
  if (!body.empty()) std::memcpy(joined.data() + head.size(), body.data(), body.size());
  return try_send(type, std::span<const std::byte>(joined.data(), length));
}

std::size_t ChannelSender::try_send_batch(std::span<const OutgoingMessage> messages) {
  std::size_t sent = 0;
  for (const auto& message : messages) {
    if (try_send(message.type, message.payload) != SendStatus::ok) break;
    ++sent;
  }
  return sent;
}

std::string_view to_string(SendStatus status) noexcept {
  switch (status) {
    case SendStatus::ok:
      return "ok";
    case SendStatus::full:
      return "full";
    case SendStatus::too_large:
      return "too_large";
    case SendStatus::closed:
      return "closed";
  }
  return "unknown";
}

Result<std::size_t> single_slot_payload(const ChannelOptions& options) {
  auto geometry = transport::make_geometry(options);
  if (!geometry) return std::move(geometry).error();
  return geometry->payload;
}

Result<ChannelEnds> make_channel(ChannelKind kind, const ChannelOptions& options) {
  auto geometry = transport::make_geometry(options);
  if (!geometry) return std::move(geometry).error();
  switch (kind) {
    case ChannelKind::urpc: {
      auto ends = transport::make_urpc_channel(*geometry, options.receiver_numa_node);
      if (!ends) return std::move(ends).error();
      return ChannelEnds{std::move(ends->sender), std::move(ends->receiver)};
    }
    case ChannelKind::lockfree:
      return transport::make_lockfree_channel(*geometry);
    case ChannelKind::local:
      return transport::make_local_channel(*geometry);
  }
  return error(Errc::invalid_argument, "channel kind " + std::to_string(static_cast<int>(kind)) +
                                           " is none of urpc, lockfree or local");
}

}  // namespace mk
