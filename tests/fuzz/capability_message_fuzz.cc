// What the capability service takes from other kernels: a grant inside a user's message, the
// table a joining kernel receives, and the updates every replica applies. The first byte picks
// which; the rest is the input. A grant or table that decodes must encode back to the same
// thing and be consistent; an update sequence must keep every invariant of the table, and an
// update that fails must change nothing. Updates include VSpace map, unmap and protect.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "mk/cap_grant.h"
#include "services/cap_table.h"

namespace {

/// Where the updates' VSpace addresses may lie.
constexpr std::uint64_t kWindowBase = std::uint64_t{1} << 32;

void grant(std::span<const std::byte> bytes) {
  auto decoded = mk::Codec<mk::CapGrant>::decode(bytes);
  if (!decoded) return;
  std::vector<std::byte> again;
  mk::Codec<mk::CapGrant>::encode(*decoded, again);
  if (again.size() != bytes.size() || std::memcmp(again.data(), bytes.data(), bytes.size()) != 0) {
    __builtin_trap();
  }
}

void table(std::span<const std::byte> bytes) {
  auto decoded = mk::services::CapTable::decode(bytes);
  if (!decoded) return;
  if (!decoded->verify().ok()) __builtin_trap();
  std::vector<std::byte> again;
  decoded->encode(again);
  auto twice = mk::services::CapTable::decode(again);
  if (!twice || !(*twice == *decoded)) __builtin_trap();
}

void updates(std::span<const std::byte> bytes) {
  // No CapabilityMemory (0): updates change the table only, never this process's page table.
  mk::services::CapTable state(1, 8, {{0, 16 * 4096}, {1, 4 * 4096}}, 4096, 0, kWindowBase,
                               16 * 4096);
  using Op = mk::services::CapOp;
  for (std::size_t at = 0; at + sizeof(Op) <= bytes.size(); at += sizeof(Op)) {
    Op op;
    std::memcpy(&op, bytes.data() + at, sizeof(Op));
    const mk::services::CapTable before = state;
    auto outcome = state.apply(op);
    if (!outcome && !(state == before)) __builtin_trap();
    if (!state.verify().ok()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto bytes = std::as_bytes(std::span(data + 1, size - 1));
  switch (data[0] % 3) {
    case 0:
      grant(bytes);
      break;
    case 1:
      table(bytes);
      break;
    default:
      updates(bytes);
      break;
  }
  return 0;
}
