#include "runtime/control.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace mk::runtime {

namespace {

/// The descriptors a datagram of `kind` carries.
std::size_t fds_for(ControlKind kind) {
  switch (kind) {
    case ControlKind::kernel_added:
      return 2;
    case ControlKind::bind_reply:
      return 1;
    default:
      return 0;
  }
}

bool known_kind(ControlKind kind) {
  return static_cast<std::uint16_t>(kind) >= static_cast<std::uint16_t>(ControlKind::start) &&
         static_cast<std::uint16_t>(kind) <= static_cast<std::uint16_t>(ControlKind::bind_failure);
}

Error bad(const std::string& why) {
  return error(Errc::parse_error, "control message: " + why);
}

void close_all(std::span<const int> fds) {
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace

ControlMessage::ControlMessage(ControlMessage&& other) noexcept
    : header(other.header),
      body(std::move(other.body)),
      fds(std::exchange(other.fds, {})),
      sender_pid(other.sender_pid) {}

ControlMessage& ControlMessage::operator=(ControlMessage&& other) noexcept {
  if (this != &other) {
    close_all(fds);
    header = other.header;
    body = std::move(other.body);
    fds = std::exchange(other.fds, {});
    sender_pid = other.sender_pid;
  }
  return *this;
}

ControlMessage::~ControlMessage() {
  close_all(fds);
}

std::optional<Error> ControlMessage::failure() const {
  if (header.status == 0) return std::nullopt;
  std::string text(reinterpret_cast<const char*>(body.data()), body.size());
  if (header.status - 1 > static_cast<int>(kLastErrc)) {
    return error(Errc::parse_error,
                 "control message with status " + std::to_string(header.status) + ": " + text);
  }
  return error(static_cast<Errc>(header.status - 1), std::move(text));
}

int ControlMessage::take_fd(std::size_t index) noexcept {
  if (index >= fds.size()) return -1;
  return std::exchange(fds[index], -1);
}

ControlOut control_out(ControlKind kind, std::uint32_t from) {
  ControlOut out;
  out.header.magic = kControlMagic;
  out.header.kind = kind;
  out.header.from = from;
  return out;
}

void set_failure(ControlOut& out, const Error& failure) {
  out.header.status = static_cast<std::uint8_t>(1 + static_cast<int>(failure.code));
  const std::size_t size = std::min(failure.message.size(), kMaxControlBody);
  const auto* text = reinterpret_cast<const std::byte*>(failure.message.data());
  out.body.assign(text, text + size);
}

Result<ControlHeader> decode_control(std::span<const std::byte> bytes, std::size_t fd_count) {
  if (bytes.size() < sizeof(ControlHeader)) {
    return bad(std::to_string(bytes.size()) + " bytes, shorter than its header");
  }
  ControlHeader header;
  std::memcpy(&header, bytes.data(), sizeof header);
  if (header.magic != kControlMagic) return bad("wrong magic number");
  if (!known_kind(header.kind)) {
    return bad("unknown kind " + std::to_string(static_cast<unsigned>(header.kind)));
  }
  if (header.body != bytes.size() - sizeof header || header.body > kMaxControlBody) {
    return bad("body of " + std::to_string(header.body) + " bytes in a datagram of " +
               std::to_string(bytes.size()));
  }
  if (header.status > 1 + static_cast<int>(kLastErrc)) {
    return bad("status " + std::to_string(header.status));
  }
  if (header.fds != fds_for(header.kind) || fd_count != header.fds) {
    return bad(std::to_string(fd_count) + " descriptors attached, " +
               std::to_string(fds_for(header.kind)) + " expected");
  }
  return header;
}

Result<ControlSocket> make_control_socket() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return error(Errc::io_error, std::string("socketpair: ") + std::strerror(errno));
  }
  const int on = 1;
  // The reader learns who really sent each datagram, whatever its header claims.
  if (::setsockopt(pair[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
    Error failure = error(Errc::io_error, std::string("SO_PASSCRED: ") + std::strerror(errno));
    ::close(pair[0]);
    ::close(pair[1]);
    return failure;
  }
  return ControlSocket{pair[0], pair[1]};
}

ControlSend send_control(int writer, const ControlOut& out) noexcept {
  ControlHeader header = out.header;
  header.body = static_cast<std::uint32_t>(out.body.size());
  header.fds = static_cast<std::uint8_t>(out.fds.size());
  iovec parts[2] = {{&header, sizeof header},
                    {const_cast<std::byte*>(out.body.data()), out.body.size()}};
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = out.body.empty() ? 1 : 2;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxControlFds)] = {};
  if (!out.fds.empty()) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * out.fds.size());
    cmsghdr* rights = CMSG_FIRSTHDR(&message);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int) * out.fds.size());
    std::memcpy(CMSG_DATA(rights), out.fds.data(), sizeof(int) * out.fds.size());
  }
  while (true) {
    if (::sendmsg(writer, &message, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return ControlSend::sent;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      return ControlSend::would_block;
    }
    return ControlSend::gone;
  }
}

std::optional<ControlMessage> receive_control(int reader, std::uint64_t& rejected) {
  // One per thread: a kernel process has one thread, and in the program one thread at a time
  // reads the control socket.
  thread_local std::vector<std::byte> buffer(sizeof(ControlHeader) + kMaxControlBody + 1);
  while (true) {
    iovec part{buffer.data(), buffer.size()};
    alignas(cmsghdr) char
        control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * (kMaxControlFds + 1))] = {};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(reader, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (got < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    ControlMessage decoded;
    bool credentials = false;
    for (cmsghdr* part_header = CMSG_FIRSTHDR(&message); part_header != nullptr;
         part_header = CMSG_NXTHDR(&message, part_header)) {
      if (part_header->cmsg_level != SOL_SOCKET) continue;
      if (part_header->cmsg_type == SCM_RIGHTS) {
        const std::size_t count = (part_header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int fd = -1;
          std::memcpy(&fd, CMSG_DATA(part_header) + i * sizeof(int), sizeof fd);
          decoded.fds.push_back(fd);
        }
      } else if (part_header->cmsg_type == SCM_CREDENTIALS) {
        ucred who{};
        std::memcpy(&who, CMSG_DATA(part_header), sizeof who);
        decoded.sender_pid = who.pid;
        credentials = true;
      }
    }
    const bool cut = (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    auto header =
        decode_control(std::span(buffer.data(), static_cast<std::size_t>(got)), decoded.fds.size());
    if (cut || !credentials || !header) {
      ++rejected;  // Its descriptors close with `decoded`.
      continue;
    }
    decoded.header = *header;
    decoded.body.assign(buffer.begin() + sizeof(ControlHeader), buffer.begin() + got);
    return decoded;
  }
}

}  // namespace mk::runtime
