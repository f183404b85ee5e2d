// The control plane of process isolation: datagrams between the host (the program that booted
// the System) and its kernel processes, and between kernels' monitors, over Unix sockets. It
// carries what channels cannot: file descriptors (a channel's memfd), and everything exchanged
// before a channel exists (binding, run requests from the host, stop, membership notices).
// Every datagram is untrusted input: decode_control checks it whole before anyone reads it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mk/kernel_id.h"
#include "mk/result.h"

namespace mk::runtime {

/// The sender id of the host in ControlHeader::from.
inline constexpr std::uint32_t kHostSender = 0xFFFF'FFFFu;

/// The largest body a control datagram carries: System::run's encoded arguments, its value,
/// an error's text. Larger ones are refused with too_large before anything is sent.
inline constexpr std::size_t kMaxControlBody = 64 * 1024;

/// What a control datagram asks or tells.
enum class ControlKind : std::uint16_t {
  // host -> kernel
  start = 1,     ///< Body: a StartEntry per kernel so far; run setup, then serve.
  run,           ///< a: task number (mk/remote.h); b: request (0: no answer); body: arguments.
  stop,          ///< Stop as at shutdown, then exit.
  peer_offline,  ///< a: a kernel taken offline (remove_kernel); b: request to acknowledge.
  kernel_added,  ///< a: its id; b: request; c: its pid; body: core, node; fds: eventfd, socket.
  stats,         ///< b: request; answered with stats_reply.
  // kernel -> host
  started,      ///< Setup ran; status: its error, if any (text in the body).
  run_done,     ///< b: request; status 0: body is the value, else the error and its text.
  ack,          ///< b: the request acknowledged (peer_offline, kernel_added).
  stats_reply,  ///< b: request; body: KernelStats.
  // kernel -> kernel (monitors)
  bind_request,  ///< Make a channel from the sender to you.
  bind_reply,    ///< fds: the channel's memfd; a: its slots; c: its line size.
  bind_failure,  ///< status: why not; body: its text.
};

/// One kernel in the body of a `start` datagram: what the host knows of it.
struct StartEntry {
  enum State : std::int32_t { running = 0, offline = 1, failed = 2 };
  std::int32_t pid = 0;
  std::int32_t state = running;
};

/// The fixed front of every control datagram.
struct ControlHeader {
  std::uint32_t magic = 0;
  ControlKind kind{};
  std::uint8_t status = 0;  ///< 0, or 1 + the Errc of a failure.
  std::uint8_t fds = 0;     ///< File descriptors attached (SCM_RIGHTS).
  std::uint32_t from = 0;   ///< Sending kernel, or kHostSender.
  std::uint32_t body = 0;   ///< Bytes after the header.
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::uint64_t c = 0;
};

/// The value ControlHeader::magic must hold.
inline constexpr std::uint32_t kControlMagic = 0x6d6b6331;  // "mkc1"

/// At most this many file descriptors ride on one datagram.
inline constexpr std::size_t kMaxControlFds = 2;

/// One control datagram, decoded. Owns its file descriptors until taken (closed otherwise).
struct ControlMessage {
  ControlHeader header;
  std::vector<std::byte> body;
  std::vector<int> fds;
  pid_t sender_pid = 0;  ///< From the socket's credentials: who really sent it.

  ControlMessage() = default;
  ControlMessage(ControlMessage&& other) noexcept;
  ControlMessage& operator=(ControlMessage&& other) noexcept;
  ControlMessage(const ControlMessage&) = delete;
  ControlMessage& operator=(const ControlMessage&) = delete;
  ~ControlMessage();

  /// The failure the status byte and body carry; nullopt for status 0.
  std::optional<Error> failure() const;
  /// Takes file descriptor `index` (the caller closes it); -1 when absent.
  int take_fd(std::size_t index) noexcept;
};

/// A datagram to send: header fields, body, and descriptors lent for the send.
struct ControlOut {
  ControlHeader header;
  std::vector<std::byte> body;
  std::vector<int> fds;  ///< Not owned: duplicated into the datagram by the send.
};

/// Builds a datagram of `kind` from `from`.
ControlOut control_out(ControlKind kind, std::uint32_t from);
/// Sets the status byte and body of `out` from `failure`, its text cut to fit.
void set_failure(ControlOut& out, const Error& failure);

/// Checks `bytes` (a received datagram) and `fd_count` descriptors against the format: size,
/// magic, kind, body length, descriptor count for the kind. parse_error naming what is wrong.
Result<ControlHeader> decode_control(std::span<const std::byte> bytes, std::size_t fd_count);

/// A Unix datagram socket pair: `reader` receives (with the senders' credentials), and any
/// process holding `writer` sends to it.
struct ControlSocket {
  int reader = -1;
  int writer = -1;
};
/// Makes one; io_error if the operating system refuses.
Result<ControlSocket> make_control_socket();

/// A kernel process's way to other kernels' monitors and to the host (Fabric::control).
class ControlPort {
 public:
  virtual ~ControlPort() = default;
  /// Sends `out` to kernel `to` (or kHostSender), or queues it until the receiver has room;
  /// dropped when the receiver is gone (its death is reported on its own).
  virtual void send(std::uint32_t to, ControlOut out) = 0;
};

/// What a send did.
enum class ControlSend { sent, would_block, gone };
/// Sends `out` on `writer` without blocking: would_block when the reader's queue is full (try
/// again later), gone when the reader has closed (its process died). too_large for a body over
/// kMaxControlBody is checked by the callers that make bodies.
ControlSend send_control(int writer, const ControlOut& out) noexcept;

/// Receives one datagram from `reader` without blocking: nullopt when none is waiting (or on
/// an error that leaves nothing to read). A datagram that fails decode_control is dropped, its
/// descriptors closed, and counted in `rejected`.
std::optional<ControlMessage> receive_control(int reader, std::uint64_t& rejected);

}  // namespace mk::runtime
