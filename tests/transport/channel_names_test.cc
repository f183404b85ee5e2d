#include <gtest/gtest.h>

#include "mk/channel.h"

namespace mk {
namespace {

TEST(ChannelNames, KindsRoundTripThroughTheirNames) {
  for (ChannelKind kind : {ChannelKind::urpc, ChannelKind::lockfree, ChannelKind::local}) {
    auto parsed = parse_channel_kind(to_string(kind));
    ASSERT_TRUE(parsed.ok()) << to_string(kind);
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(to_string(ChannelKind::urpc), "urpc");
  EXPECT_EQ(to_string(ChannelKind::lockfree), "lockfree");
  EXPECT_EQ(to_string(ChannelKind::local), "local");
}

TEST(ChannelNames, UnknownKindIsAnErrorNamingIt) {
  for (const char* name : {"", "URPC", "udp", "urpc "}) {
    auto parsed = parse_channel_kind(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.error().code, Errc::invalid_argument);
    EXPECT_NE(parsed.error().message.find(std::string("'") + name + "'"), std::string::npos)
        << parsed.error().message;
  }
}

TEST(ChannelNames, SendStatusNames) {
  EXPECT_EQ(to_string(SendStatus::ok), "ok");
  EXPECT_EQ(to_string(SendStatus::full), "full");
  EXPECT_EQ(to_string(SendStatus::too_large), "too_large");
  EXPECT_EQ(to_string(SendStatus::closed), "closed");
}

}  // namespace
}  // namespace mk
