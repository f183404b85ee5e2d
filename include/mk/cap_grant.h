// mk::CapGrant: a capability passed to another kernel inside a message (docs/capabilities.md,
// "Transfer").
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mk/codec.h"
#include "mk/kernel_id.h"
#include "mk/result.h"

namespace mk {

/// What CapabilityService::transfer gives the sender to put in a message, and what the
/// receiving kernel hands to CapabilityService::accept. It is a claim, not a capability: the
/// receiving kernel checks it against the replicated capability table, which holds the pending
/// transfer it names, and refuses bytes that merely look like one (wrong service, wrong
/// receiver, unknown or already accepted transfer, wrong secret).
struct CapGrant {
  std::uint64_t service = 0;   ///< The CapabilityService it belongs to.
  std::uint64_t transfer = 0;  ///< The pending transfer's number in that service.
  KernelId from = 0;           ///< The sending kernel.
  KernelId to = 0;             ///< The only kernel that may accept it.
  std::uint64_t secret = 0;    ///< Random, chosen by the sender; a guessed number does not match.

  /// Equal when every field is.
  friend bool operator==(const CapGrant&, const CapGrant&) = default;
};

/// A CapGrant travels as a version byte and its five fields, fixed-size and little-endian.
template <>
struct Codec<CapGrant> {
  /// Bytes encode() appends.
  static constexpr std::size_t kSize = 1 + 8 + 8 + 4 + 4 + 8;
  /// Appends the grant.
  static void encode(const CapGrant& grant, std::vector<std::byte>& out);
  /// The grant; parse_error naming the defect for any other length or version.
  static Result<CapGrant> decode(std::span<const std::byte> bytes);
};

}  // namespace mk
