// The naming state machine on its own: updates, checks of foreign bytes, and its encoding.
#include "services/name_table.h"

#include <gtest/gtest.h>

#include <cstring>

namespace {

using mk::services::NameOp;
using mk::services::NameStatus;
using mk::services::NameTable;

TEST(NameTable, AppliesUpdatesAndNumbersTheChanges) {
  NameTable table(7);
  EXPECT_EQ(table.apply(NameOp::make(NameOp::Kind::register_name, "a", "1")).sequence, 1u);
  auto taken = table.apply(NameOp::make(NameOp::Kind::register_name, "a", "2"));
  EXPECT_EQ(taken.status, NameStatus::already_exists);
  EXPECT_EQ(taken.sequence, 0u);
  auto missing = table.apply(NameOp::make(NameOp::Kind::unregister, "b"));
  EXPECT_EQ(missing.status, NameStatus::not_found);
  EXPECT_EQ(table.apply(NameOp::make(NameOp::Kind::unregister, "a")).sequence, 2u);
  EXPECT_EQ(table.find("a"), nullptr);
  EXPECT_EQ(table.sequence(), 2u);
}

TEST(NameTable, CheckRejectsMalformedUpdates) {
  NameTable table(1);
  NameOp op = NameOp::make(NameOp::Kind::register_name, "ok", "v");
  EXPECT_TRUE(table.check(op).ok());
  NameOp bad_kind = op;
  std::memset(&bad_kind.kind, 9, 1);
  NameOp long_name = op;
  long_name.name_length = 200;
  NameOp long_value = op;
  long_value.value_length = 65;
  NameOp empty = op;
  empty.name_length = 0;
  NameOp bad_char = op;
  bad_char.name[1] = ' ';
  for (const NameOp& bad : {bad_kind, long_name, long_value, empty, bad_char}) {
    auto checked = table.check(bad);
    ASSERT_FALSE(checked.ok());
    EXPECT_EQ(checked.error().code, mk::Errc::invalid_argument);
    EXPECT_EQ(table.apply(bad).status, NameStatus::invalid);
  }
  EXPECT_EQ(table.sequence(), 0u);
  EXPECT_EQ(table.size(), 0u);
}

TEST(NameTable, EncodingRoundTripsAndRejectsBadBytes) {
  NameTable table(42);
  ASSERT_EQ(
      table.apply(NameOp::make(NameOp::Kind::register_name, "x/y", std::string("\0b", 2))).status,
      NameStatus::ok);
  ASSERT_EQ(table.apply(NameOp::make(NameOp::Kind::register_name, "z", "")).status, NameStatus::ok);
  std::vector<std::byte> bytes;
  mk::Codec<NameTable>::encode(table, bytes);
  auto copy = mk::Codec<NameTable>::decode(bytes);
  ASSERT_TRUE(copy.ok()) << copy.error().describe();
  EXPECT_EQ(copy->instance(), 42u);
  EXPECT_EQ(copy->sequence(), 2u);
  ASSERT_NE(copy->find("x/y"), nullptr);
  EXPECT_EQ(*copy->find("x/y"), std::string("\0b", 2));
  EXPECT_EQ(*copy->find("z"), "");

  // Every truncation is an error, never a crash.
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    auto bad = NameTable::decode(std::span(bytes).first(cut));
    ASSERT_FALSE(bad.ok()) << cut;
    EXPECT_EQ(bad.error().code, mk::Errc::parse_error);
  }
  auto trailing = bytes;
  trailing.push_back(std::byte{0});
  EXPECT_FALSE(NameTable::decode(trailing).ok());
  auto bad_name = bytes;
  bad_name[25] = std::byte{' '};  // first name's first byte: after 24 header bytes and a length
  auto rejected = NameTable::decode(bad_name);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.error().message.find("entry 0"), std::string::npos);
  auto huge_count = bytes;
  huge_count[23] = std::byte{0x7f};
  EXPECT_FALSE(NameTable::decode(huge_count).ok());
}

}  // namespace
