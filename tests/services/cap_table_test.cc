// CapTable alone: its invariants under random updates, its bytes for a joining kernel, and its
// refusal of bytes that are not a table.
#include "services/cap_table.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace cap_table_test {

using mk::CapRights;
using mk::CapType;
using mk::Errc;
using mk::services::CapOp;
using mk::services::CapTable;

constexpr std::uint64_t kPage = 4096;

/// Where VSpace mappings may lie: no CapabilityMemory (0) is given, so no page table changes.
constexpr std::uint64_t kWindow = std::uint64_t{1} << 40;

CapTable table() {
  return CapTable(7, 16, {{0, 32 * kPage}, {1, 8 * kPage}}, kPage, 0, kWindow, 12 * kPage);
}

/// A random update of kernel 0..2 on a small table: slots 0..17 (some outside the CSpace),
/// every kind, sizes that sometimes fit.
CapOp random_op(std::mt19937_64& random, std::uint64_t transfers_seen) {
  CapOp op;
  op.kind = static_cast<CapOp::Kind>(1 + random() % 16);
  op.kernel = static_cast<mk::KernelId>(random() % 3);
  op.slot = static_cast<mk::CapSlot>(random() % 18);
  op.to = static_cast<mk::KernelId>(random() % 3);
  op.rights = static_cast<CapRights>(random() % 8);
  op.type = static_cast<CapType>(1 + random() % 3);
  op.node = static_cast<int>(random() % 3);
  op.bytes = (1 + random() % 4) * kPage;
  op.offset = (random() % 4) * kPage;
  op.count = static_cast<std::uint32_t>(1 + random() % 3);
  op.message_type = static_cast<std::uint16_t>(random() % 8);
  op.transfer = transfers_seen == 0 ? 1 : 1 + random() % (transfers_seen + 2);
  op.secret = random() % 2;
  if (op.kind >= CapOp::Kind::vspace_create) {
    // Two VSpaces over a 12-page range, mostly aligned, sometimes reaching past its end.
    op.count = static_cast<std::uint32_t>(1 + random() % 2);
    op.offset = kWindow + (random() % 12) * kPage + (random() % 16 == 0 ? 1 : 0);
    op.bytes = (1 + random() % 3) * kPage;
    op.rights = static_cast<CapRights>(random() % 4);
  }
  return op;
}

TEST(CapTable, RandomUpdatesKeepEveryInvariantAndFreeMemoryOnce) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 random(seed);
    CapTable t = table();
    std::uint64_t transfers = 0;
    std::uint64_t freed_regions = 0;
    CapOp last_transfer;
    for (int step = 0; step < 300; ++step) {
      CapOp op = random_op(random, transfers);
      if (op.kind == CapOp::Kind::accept && transfers > 0 && random() % 2 == 0) {
        // Half the accepts present the latest grant, by its receiver: most of them succeed.
        op.kernel = last_transfer.to;
        op.to = last_transfer.kernel;
        op.transfer = transfers;
        op.secret = last_transfer.secret;
      }
      const CapTable before = t;
      auto outcome = t.apply(op);
      if (!outcome) {
        ASSERT_TRUE(t == before) << "seed " << seed << " step " << step
                                 << ": a failed update changed the table: "
                                 << outcome.error().describe();
        continue;
      }
      if (op.kind == CapOp::Kind::transfer) {
        transfers = outcome->transfer;
        last_transfer = op;
      }
      freed_regions += outcome->freed.size();
      auto valid = t.verify();
      ASSERT_TRUE(valid.ok()) << "seed " << seed << " step " << step << ": "
                              << valid.error().describe();
    }
    EXPECT_EQ(t.frees(), freed_regions);
    // Removing everything returns every byte, each region once.
    for (const auto& [kernel, slot] : t.occupied()) {
      CapOp remove;
      remove.kind = CapOp::Kind::remove;
      remove.kernel = kernel;
      remove.slot = slot;
      (void)t.apply(remove);  // may be gone already, with a CNode that held it
    }
    ASSERT_TRUE(t.verify().ok());
    EXPECT_TRUE(t.occupied().empty());
    // Pending transfers still hold their objects; a table with none left is all free.
    auto usage = t.usage(0);
    ASSERT_TRUE(usage.ok());
    if (usage->allocated_regions == 0) {
      EXPECT_EQ(usage->free_bytes, 32 * kPage);
    }
  }
}

TEST(CapTable, MappingsSplitNarrowAndGoWithTheirCapability) {
  CapTable t = table();
  const auto apply = [&t](CapOp op) {
    auto outcome = t.apply(op);
    EXPECT_TRUE(outcome.ok()) << outcome.error().describe();
    return outcome ? *outcome : mk::services::CapOutcome{};
  };
  CapOp op;
  op.kind = CapOp::Kind::allocate;
  op.bytes = 4 * kPage;
  const auto ram = apply(op).slots.at(0);
  op = CapOp{};
  op.kind = CapOp::Kind::retype;
  op.slot = ram;
  op.type = CapType::frame;
  op.bytes = 4 * kPage;
  op.count = 1;
  const auto frame = apply(op).slots.at(0);
  op = CapOp{};
  op.kind = CapOp::Kind::copy;
  op.slot = frame;
  const auto copy = apply(op).slots.at(0);
  op = CapOp{};
  op.kind = CapOp::Kind::vspace_create;
  op.to = 0;
  const std::uint32_t vspace = apply(op).vspace;
  ASSERT_EQ(vspace, 1u);
  op = CapOp{};
  op.kind = CapOp::Kind::map;
  op.count = vspace;
  op.slot = copy;
  op.offset = kWindow + kPage;
  op.bytes = 4 * kPage;
  op.rights = CapRights::read | CapRights::write;
  apply(op);
  const std::uint64_t revision = t.revision();
  // Overlapping, even by one page: refused, nothing changes.
  op.offset = kWindow + 4 * kPage;
  EXPECT_EQ(t.apply(op).error().code, Errc::already_exists);
  EXPECT_EQ(t.revision(), revision);
  // Unmap the middle two pages: two mappings remain, the second starting 3 pages into the Frame.
  op = CapOp{};
  op.kind = CapOp::Kind::unmap;
  op.count = vspace;
  op.offset = kWindow + 2 * kPage;
  op.bytes = 2 * kPage;
  EXPECT_EQ(apply(op).unmapped, 2 * kPage);
  auto maps = t.mappings(vspace);
  ASSERT_TRUE(maps.ok());
  ASSERT_EQ(maps->size(), 2u);
  EXPECT_EQ((*maps)[0].address, kWindow + kPage);
  EXPECT_EQ((*maps)[0].size, kPage);
  EXPECT_EQ((*maps)[1].address, kWindow + 4 * kPage);
  EXPECT_EQ((*maps)[1].frame_offset, 3 * kPage);
  // protect needs every page mapped.
  op = CapOp{};
  op.kind = CapOp::Kind::protect;
  op.count = vspace;
  op.offset = kWindow + kPage;
  op.bytes = 4 * kPage;
  op.rights = CapRights::read;
  EXPECT_EQ(t.apply(op).error().code, Errc::not_found);
  op.bytes = kPage;
  apply(op);
  EXPECT_EQ(t.mappings(vspace)->front().rights, CapRights::read);
  ASSERT_TRUE(t.verify().ok());
  // The bytes carry the mappings.
  std::vector<std::byte> bytes;
  t.encode(bytes);
  auto decoded = CapTable::decode(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_TRUE(*decoded == t);
  // Revoking the Frame removes the copy, and with it both mappings.
  op = CapOp{};
  op.kind = CapOp::Kind::revoke;
  op.slot = frame;
  EXPECT_EQ(apply(op).removed, 1u);
  EXPECT_TRUE(t.mappings(vspace)->empty());
  EXPECT_TRUE(t.verify().ok());
}

TEST(CapTable, BytesRoundTripAndRebuildTheDerivedState) {
  std::mt19937_64 random(42);
  CapTable t = table();
  for (int step = 0; step < 400; ++step)
    (void)t.apply(random_op(random, 4));
  ASSERT_TRUE(t.verify().ok());
  std::vector<std::byte> bytes;
  t.encode(bytes);
  auto back = CapTable::decode(bytes);
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_TRUE(*back == t);
  EXPECT_EQ(back->occupied(), t.occupied());
}

TEST(CapTable, DecodeRefusesEveryTruncationAndCorruption) {
  std::mt19937_64 random(3);
  CapTable t = table();
  for (int step = 0; step < 200; ++step)
    (void)t.apply(random_op(random, 4));
  std::vector<std::byte> bytes;
  t.encode(bytes);
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    auto cut = CapTable::decode(std::span(bytes).first(length));
    ASSERT_FALSE(cut.ok()) << "truncated at " << length;
    EXPECT_EQ(cut.error().code, Errc::parse_error);
  }
  std::size_t accepted = 0;
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    std::vector<std::byte> bad = bytes;
    bad[at] ^= std::byte{0x41};
    auto decoded = CapTable::decode(bad);
    if (decoded) {
      // A flipped byte may still describe a consistent table (a secret, a free offset that
      // stays consistent): then it must be one, whatever it says.
      EXPECT_TRUE(decoded->verify().ok());
      ++accepted;
    } else {
      EXPECT_EQ(decoded.error().code, Errc::parse_error);
    }
  }
  EXPECT_LT(accepted, bytes.size() / 2) << "most corruptions must be caught";
}

TEST(CapTable, CheckRefusesMalformedUpdates) {
  const CapTable t = table();
  CapOp op;
  op.kind = static_cast<CapOp::Kind>(0);
  EXPECT_EQ(t.check(op).error().code, Errc::invalid_argument);
  op.kind = static_cast<CapOp::Kind>(17);
  EXPECT_EQ(t.check(op).error().code, Errc::invalid_argument);
  op.kind = CapOp::Kind::mint;
  op.rights = static_cast<CapRights>(8);
  EXPECT_EQ(t.check(op).error().code, Errc::invalid_argument);
  op = CapOp{};
  op.kind = CapOp::Kind::retype;
  op.type = CapType::frame;
  op.count = 1;
  op.bytes = kPage + 1;
  EXPECT_EQ(t.check(op).error().code, Errc::invalid_argument);
  op.bytes = kPage;
  op.count = mk::kMaxRetypeCount + 1;
  EXPECT_EQ(t.check(op).error().code, Errc::invalid_argument);
  op.count = 1;
  op.type = CapType::cnode;
  op.bytes = (std::uint64_t{mk::kMaxCNodeSlots} + 64) * mk::kCNodeSlotBytes;
  EXPECT_EQ(t.check(op).error().code, Errc::invalid_argument);
  op = CapOp{};
  op.kind = CapOp::Kind::make_endpoint;
  op.message_type = mk::kFirstReservedMessageType;
  EXPECT_EQ(t.check(op).error().code, Errc::invalid_argument);
  op = CapOp{};
  op.kind = CapOp::Kind::reclaim;
  op.kernel = op.to = 2;
  EXPECT_EQ(t.check(op).error().code, Errc::invalid_argument);
  op = CapOp{};
  op.kind = CapOp::Kind::allocate;
  op.bytes = 0;
  EXPECT_EQ(t.check(op).error().code, Errc::invalid_argument);
}

TEST(CapTable, FailedUpdatesLeaveNoTrace) {
  CapTable t = table();
  CapOp allocate;
  allocate.kind = CapOp::Kind::allocate;
  allocate.node = 1;
  allocate.bytes = 9 * kPage;  // more than node 1 has
  auto too_big = t.apply(allocate);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, Errc::full);
  EXPECT_NE(too_big.error().message.find("largest block"), std::string::npos);
  EXPECT_EQ(t.usage(1)->free_bytes, 8 * kPage);
  EXPECT_TRUE(t == table());
}

}  // namespace cap_table_test
