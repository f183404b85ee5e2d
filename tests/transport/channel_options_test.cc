#include "transport/channel_options.h"

#include <gtest/gtest.h>
#include <numa.h>

#include <string>

#include "mk/channel.h"
#include "mk/slot_format.h"
#include "skb/host_line_size.h"

namespace mk {
namespace {

constexpr ChannelKind kAllKinds[] = {ChannelKind::urpc, ChannelKind::lockfree, ChannelKind::local};

void expect_rejected(const ChannelOptions& options, const std::string& field) {
  for (ChannelKind kind : kAllKinds) {
    auto channel = make_channel(kind, options);
    ASSERT_FALSE(channel.ok()) << to_string(kind) << " accepted bad " << field;
    EXPECT_EQ(channel.error().code, Errc::invalid_argument);
    EXPECT_NE(channel.error().message.find(field), std::string::npos) << channel.error().message;
  }
}

TEST(ChannelOptions, SlotsMustBeAPowerOfTwo) {
  expect_rejected({.slots = 100}, "ChannelOptions::slots");
  expect_rejected({.slots = 0}, "ChannelOptions::slots");
}

TEST(ChannelOptions, SlotsMustHoldAMaximalMessage) {
  const std::size_t fewest = transport::min_slots(detail::host_line_size());
  expect_rejected({.slots = fewest / 2}, "ChannelOptions::slots");
  for (ChannelKind kind : kAllKinds) {
    EXPECT_TRUE(make_channel(kind, {.slots = fewest}).ok()) << to_string(kind);
  }
}

TEST(ChannelOptions, AbsurdlyLargeRingIsRefused) {
  expect_rejected({.slots = transport::kMaxSlots * 2}, "ChannelOptions::slots");
  expect_rejected({.slots = std::size_t{1} << 62}, "ChannelOptions::slots");
}

TEST(ChannelOptions, LineSizeMustBeAPlausiblePowerOfTwo) {
  expect_rejected({.line_size = 48}, "ChannelOptions::line_size");
  expect_rejected({.line_size = 16}, "ChannelOptions::line_size");
  expect_rejected({.line_size = 4096}, "ChannelOptions::line_size");
}

TEST(ChannelOptions, EveryAcceptedLineSizeMakesEveryKind) {
  for (std::size_t line = transport::kMinLineSize; line <= transport::kMaxLineSize; line *= 2) {
    for (ChannelKind kind : kAllKinds) {
      auto channel = make_channel(kind, {.slots = 256, .line_size = line});
      EXPECT_TRUE(channel.ok()) << to_string(kind) << " line " << line << ": "
                                << (channel.ok() ? "" : channel.error().describe());
    }
  }
}

TEST(ChannelOptions, NegativeNumaNodeIsRefused) {
  expect_rejected({.receiver_numa_node = -2}, "ChannelOptions::receiver_numa_node");
}

TEST(ChannelOptions, NumaNodeThatDoesNotExistIsRefused) {
  if (numa_available() < 0) GTEST_SKIP() << "no NUMA support here: nodes are ignored";
  expect_rejected({.receiver_numa_node = numa_max_node() + 1},
                  "ChannelOptions::receiver_numa_node");
}

TEST(ChannelOptions, ExistingNumaNodeIsAccepted) {
  EXPECT_TRUE(make_channel(ChannelKind::urpc, {.receiver_numa_node = 0}).ok());
  EXPECT_TRUE(make_channel(ChannelKind::urpc, {.receiver_numa_node = -1}).ok());
}

TEST(ChannelOptions, DetectedLineSizeIsAPlausiblePowerOfTwo) {
  const std::size_t line = detail::host_line_size();
  EXPECT_GE(line, transport::kMinLineSize);
  EXPECT_LE(line, transport::kMaxLineSize);
  EXPECT_EQ(line & (line - 1), 0u);
}

TEST(SlotGeometry, SlotsForMatchesDivisionAtEveryLineSizeAndLength) {
  for (std::size_t line = transport::kMinLineSize; line <= transport::kMaxLineSize; line *= 2) {
    auto geometry = transport::make_geometry({.slots = 1024, .line_size = line});
    ASSERT_TRUE(geometry.ok()) << geometry.error().describe();
    EXPECT_EQ(geometry->payload, line - transport::kHeaderSize);
    for (std::size_t length = 0; length <= kMaxPayload; ++length) {
      const std::size_t expected =
          length == 0 ? 1 : (length + geometry->payload - 1) / geometry->payload;
      ASSERT_EQ(geometry->slots_for(length), expected) << "line " << line << " length " << length;
    }
  }
}

TEST(SlotGeometry, EpochOfAPositionDiffersFromTheLapBefore) {
  const std::uint64_t slots = 128;
  auto geometry = transport::make_geometry({.slots = slots});
  ASSERT_TRUE(geometry.ok());
  // Zeroed memory (epoch 0) never matches during the first 2^28 laps, when it can still be there.
  EXPECT_NE(geometry->epoch_bits(0), 0u);
  EXPECT_NE(geometry->epoch_bits(slots - 1), 0u);
  const std::uint64_t wrap = slots << 28;  // where the 28-bit epoch wraps around
  for (std::uint64_t position :
       {slots, slots + 5, wrap - 1, wrap, wrap + 1, std::uint64_t{1} << 50}) {
    EXPECT_NE(geometry->epoch_bits(position), geometry->epoch_bits(position - slots)) << position;
    EXPECT_EQ(geometry->epoch_bits(position), geometry->epoch_bits(position | (slots - 1)))
        << position;
  }
}

TEST(SlotHeader, FieldsRoundTrip) {
  const std::uint64_t header = transport::encode_header(0xBEEF, kMaxPayload, 37, 0);
  EXPECT_EQ(transport::header_type(header), 0xBEEF);
  EXPECT_EQ(transport::header_length(header), kMaxPayload);
  EXPECT_EQ(transport::header_slots(header), 37u);
}

}  // namespace
}  // namespace mk
