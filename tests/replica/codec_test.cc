// Codec, protocol names and the state machine concepts.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "mk/protocol.h"
#include "mk/replicated.h"
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
