// The replica layer's messages: one message type, a fixed header naming the object and the
// protocol step, then step-specific bytes. Everything is read with memcpy and length checks,
// since the bytes come from another kernel.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mk/channel.h"
#include "mk/kernel_id.h"
#include "mk/message_codec.h"
#include "mk/replica_engine.h"
#include "mk/result.h"

namespace mk::replica {

/// The one message type of the layer, the first of the range mk reserves (mk/channel.h).
inline constexpr MessageType kReplicaMessage = kFirstReservedMessageType;

/// What a message is for.
enum class Step : std::uint8_t {
  wave_down = 1,   ///< A wave travelling down its tree.
  wave_up,         ///< A subtree's vote travelling up.
  submit,          ///< ordered: a proposer's operation to the sequencer.
  created,         ///< A kernel installed a new object (to its creator).
  change_request,  ///< A join or leave, to the membership coordinator.
  change_reply,    ///< Its outcome, to the requester.
  state_chunk,     ///< Part of a state snapshot, to a joining kernel.
  state_done,      ///< The snapshot's last part and its metadata.
  state_ack,       ///< The joiner installed the snapshot.
  repair,          ///< A decision re-sent straight to a member, past a stuck tree.
  bulk,            ///< Part of a view change's report or install record (flag: Blob).
  view_notice,     ///< A view change's leader asks a member of its epoch for its report.
  stable,          ///< one_phase, two_phase: the proposer's operations up to b are everywhere.
  install_part,    ///< Part of a new object's initial state, at offset b, to a kernel.
  install,         ///< A new object's description (state of a bytes sent before): install it.
  describe,        ///< An object's description, to a kernel added since: learn it (wait a).
  described,       ///< The kernel told of an object learnt it (wait a), to the requester.
};

/// What a bulk transfer carries.
enum class Blob : std::uint8_t {
  report = 1,  ///< A replica's state, to a view change's leader.
  record = 2,  ///< An install record.
};

/// Change requests: Header::flag bits.
inline constexpr std::uint8_t kChangeJoin = 1;
/// A request sent again after a view change: a change already made counts as done.
inline constexpr std::uint8_t kChangeRetry = 2;

/// What a wave does at each node.
enum class WaveKind : std::uint8_t {
  one_phase_apply = 1,  ///< Apply the operation.
  prepare,              ///< two_phase: check and reserve the operation's keys.
  commit,               ///< two_phase: apply and release.
  abort,                ///< two_phase: release.
  sequence,             ///< ordered: stash operations under sequence numbers, commit a prefix.
  commit_up_to,         ///< ordered: commit a prefix.
  freeze,               ///< membership: stop starting proposals; ack once idle.
  install,              ///< membership: new member list, next epoch, unfreeze.
  confirm,              ///< After a view change: every member has installed it.
};

/// In front of every message of the layer.
struct Header {
  detail::ObjectId object = 0;
  std::uint64_t a = 0;  ///< Wave number, proposal number or change number, by step.
  std::uint64_t b = 0;  ///< Step-specific (proposal number, committed prefix, offset).
  std::uint32_t epoch = 0;
  KernelId root = 0;    ///< A wave's root; the sender of other steps.
  KernelId origin = 0;  ///< The proposer or requester.
  Step step = Step::wave_down;
  WaveKind wave = WaveKind::one_phase_apply;
  std::uint8_t status = 0;  ///< 0, or 1 + Errc of a failure (whose text is the payload).
  std::uint8_t flag = 0;    ///< Step-specific (change kind, blob kind).
};

/// One operation in a sequence wave, followed by `size` bytes.
struct EntryHeader {
  KernelId origin = 0;
  std::uint32_t size = 0;
  std::uint64_t number = 0;
};

/// In front of a sequence wave's entries: the first number and how many follow.
struct SequenceHeader {
  std::uint64_t first = 0;
  std::uint32_t count = 0;
  std::uint32_t reserved = 0;
};

/// Most bytes an encoded Header takes: step and wave bytes, six varints (three of up to 64
/// bits, three of up to 32), then the status and flag bytes when they are not zero.
inline constexpr std::size_t kMaxHeaderSize = 2 + 3 * 10 + 3 * 5 + 2;

/// The most payload after the header.
inline constexpr std::size_t kMaxBody = kMaxMessageBody - kMaxHeaderSize;
/// The largest operation: alone in a sequence wave, it must fit one message.
inline constexpr std::size_t kMaxOp = kMaxBody - sizeof(SequenceHeader) - sizeof(EntryHeader);

/// Appends the bytes of a trivially copyable value.
template <class T>
void put(std::vector<std::byte>& out, const T& value) {
  const auto* bytes = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

/// Reads a trivially copyable value at `at`, advancing it; empty when too short.
template <class T>
std::optional<T> get(std::span<const std::byte> bytes, std::size_t& at) {
  if (bytes.size() < at || bytes.size() - at < sizeof(T)) return std::nullopt;
  T value;
  std::memcpy(&value, bytes.data() + at, sizeof(T));
  at += sizeof(T);
  return value;
}

/// Encodes `header` into `out` (kMaxHeaderSize bytes at least); returns the bytes used.
/// Numbers travel as varints, so the header of a wave or an answer takes about a dozen bytes
/// and a small operation's wave fits one channel slot with it (docs/replica.md, "Wire").
std::size_t encode_header(const Header& header, std::span<std::byte, kMaxHeaderSize> out) noexcept;

/// Decodes a header at `at`, advancing it; empty when the bytes end early or a number does not
/// fit its field. Step and wave are not checked here: the layer's dispatch refuses unknown ones.
std::optional<Header> decode_header(std::span<const std::byte> bytes, std::size_t& at) noexcept;

/// A message: header and body.
inline std::vector<std::byte> message(const Header& header, std::span<const std::byte> body = {}) {
  std::array<std::byte, kMaxHeaderSize> head;
  const std::size_t size = encode_header(header, head);
  // One allocation of the exact size: a message is built for every step of every wave.
  std::vector<std::byte> out(size + body.size());
  std::copy_n(head.begin(), size, out.begin());
  std::copy(body.begin(), body.end(), out.begin() + static_cast<std::ptrdiff_t>(size));
  return out;
}

/// The status byte of an error.
inline std::uint8_t status_of(const Error& failure) {
  return static_cast<std::uint8_t>(1 + static_cast<int>(failure.code));
}

/// The error a status byte and text stand for; parse_error for an unknown status.
inline Error error_of(std::uint8_t status, std::span<const std::byte> text) {
  std::string message(reinterpret_cast<const char*>(text.data()), text.size());
  if (status == 0 || status - 1 > static_cast<int>(kLastErrc)) {
    return error(Errc::parse_error, "replica message with status " + std::to_string(status));
  }
  return error(static_cast<Errc>(status - 1), std::move(message));
}

/// The text of an error as message bytes, cut to fit.
inline std::span<const std::byte> text_of(const Error& failure) {
  const std::size_t size = std::min(failure.message.size(), kMaxBody);
  return std::as_bytes(std::span(failure.message.data(), size));
}

}  // namespace mk::replica
