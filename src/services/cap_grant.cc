// CapGrant's bytes: fixed size, little-endian, so a kernel process decodes what another wrote.
#include "mk/cap_grant.h"

#include <string>

namespace mk {

namespace {

constexpr std::uint8_t kGrantVersion = 1;

template <class T>
void put_le(std::vector<std::byte>& out, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<std::byte>(static_cast<std::uint64_t>(value) >> (8 * i)));
  }
}

template <class T>
T get_le(std::span<const std::byte> bytes, std::size_t& at) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    value |= std::to_integer<std::uint64_t>(bytes[at + i]) << (8 * i);
  }
  at += sizeof(T);
  return static_cast<T>(value);
}

}  // namespace

void Codec<CapGrant>::encode(const CapGrant& grant, std::vector<std::byte>& out) {
  out.push_back(static_cast<std::byte>(kGrantVersion));
  put_le(out, grant.service);
  put_le(out, grant.transfer);
  put_le(out, grant.from);
  put_le(out, grant.to);
  put_le(out, grant.secret);
}

Result<CapGrant> Codec<CapGrant>::decode(std::span<const std::byte> bytes) {
  if (bytes.size() != kSize) {
    return error(Errc::parse_error, "capability grant of " + std::to_string(bytes.size()) +
                                        " bytes; a grant has " + std::to_string(kSize));
  }
  if (std::to_integer<std::uint8_t>(bytes[0]) != kGrantVersion) {
    return error(Errc::parse_error,
                 "capability grant of version " + std::to_string(std::to_integer<int>(bytes[0])) +
                     "; this build reads version " + std::to_string(kGrantVersion));
  }
  std::size_t at = 1;
  CapGrant grant;
  grant.service = get_le<std::uint64_t>(bytes, at);
  grant.transfer = get_le<std::uint64_t>(bytes, at);
  grant.from = get_le<KernelId>(bytes, at);
  grant.to = get_le<KernelId>(bytes, at);
  grant.secret = get_le<std::uint64_t>(bytes, at);
  if (grant.service == 0 || grant.transfer == 0) {
    return error(Errc::parse_error, "capability grant naming service or transfer 0");
  }
  return grant;
}

}  // namespace mk
