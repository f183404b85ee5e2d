// Codec, protocol names and the state machine concepts.
#include "mk/codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "mk/protocol.h"
#include "mk/replicated.h"
#include "mk/result.h"
#include "mk/state_machine.h"

namespace {

struct Pair {
  std::int32_t a;
  std::int64_t b;
};

TEST(Codec, TriviallyCopyableRoundTrips) {
  std::vector<std::byte> bytes;
  mk::Codec<Pair>::encode(Pair{3, -7}, bytes);
  ASSERT_EQ(bytes.size(), sizeof(Pair));
  auto back = mk::Codec<Pair>::decode(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->a, 3);
  EXPECT_EQ(back->b, -7);
}

TEST(Codec, WrongLengthIsParseError) {
  std::vector<std::byte> bytes(sizeof(Pair) - 1);
  auto back = mk::Codec<Pair>::decode(bytes);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.error().code, mk::Errc::parse_error);
}

TEST(Codec, VectorsOfBoolRoundTripAndRejectOtherBytes) {
  const std::vector<bool> flags{true, false, false, true, true};
  std::vector<std::byte> bytes;
  mk::Codec<std::vector<bool>>::encode(flags, bytes);
  EXPECT_EQ(bytes.size(), flags.size());
  auto back = mk::Codec<std::vector<bool>>::decode(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, flags);
  bytes[2] = std::byte{2};
  auto bad = mk::Codec<std::vector<bool>>::decode(bytes);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, mk::Errc::parse_error);
}

TEST(Codec, FieldsRoundTripAndRejectCutOrTrailingBytes) {
  std::vector<std::byte> out;
  const std::optional<std::string> maybe = "value";
  mk::encode_fields(out, std::string("key"), std::uint32_t{7}, maybe);
  auto fields = mk::decode_fields<std::string, std::uint32_t, std::optional<std::string>>(out);
  ASSERT_TRUE(fields.ok()) << fields.error().describe();
  EXPECT_EQ(*fields, std::make_tuple(std::string("key"), std::uint32_t{7}, maybe));

  const std::span<const std::byte> bytes(out);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    auto short_one =
        mk::decode_fields<std::string, std::uint32_t, std::optional<std::string>>(bytes.first(cut));
    EXPECT_FALSE(short_one.ok()) << "cut at " << cut;
  }
  out.push_back(std::byte{0});
  auto trailing = mk::decode_fields<std::string, std::uint32_t, std::optional<std::string>>(out);
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.error().code, mk::Errc::parse_error);
}

TEST(Result, ValueOrGivesTheValueOrTheFallback) {
  mk::Result<std::string> good = std::string("kept");
  mk::Result<std::string> bad = mk::error(mk::Errc::not_found, "nothing");
  EXPECT_EQ(good.value_or("fallback"), "kept");
  EXPECT_EQ(bad.value_or("fallback"), "fallback");
  EXPECT_EQ(std::move(good).value_or("fallback"), "kept");
}

TEST(Protocol, NamesRoundTrip) {
  for (mk::Protocol p : {mk::Protocol::one_phase, mk::Protocol::two_phase, mk::Protocol::ordered}) {
    auto parsed = mk::parse_protocol(mk::to_string(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  auto bad = mk::parse_protocol("paxos");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(bad.error().message.find("paxos"), std::string::npos);
}

}  // namespace
