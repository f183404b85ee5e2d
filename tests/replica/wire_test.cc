// The replica header's encoding: round trips at the fields' limits, refuses what a peer could
// send wrong, and keeps small operations inside one channel slot.
#include "replica/wire.h"

#include <gtest/gtest.h>

#include <limits>

#include "mk/channel.h"
#include "mk/message_codec.h"

namespace mk::replica {
namespace {

Header extreme() {
  Header header;
  header.object = std::numeric_limits<std::uint64_t>::max();
  header.a = std::numeric_limits<std::uint64_t>::max();
  header.b = std::uint64_t{1} << 63;
  header.epoch = std::numeric_limits<std::uint32_t>::max();
  header.root = std::numeric_limits<KernelId>::max();
  header.origin = std::numeric_limits<KernelId>::max() - 1;
  header.step = Step::bulk;
  header.wave = WaveKind::confirm;
  header.status = 255;
  header.flag = 2;
  return header;
}

void expect_same(const Header& x, const Header& y) {
  EXPECT_EQ(x.object, y.object);
  EXPECT_EQ(x.a, y.a);
  EXPECT_EQ(x.b, y.b);
  EXPECT_EQ(x.epoch, y.epoch);
  EXPECT_EQ(x.root, y.root);
  EXPECT_EQ(x.origin, y.origin);
  EXPECT_EQ(x.step, y.step);
  EXPECT_EQ(x.wave, y.wave);
  EXPECT_EQ(x.status, y.status);
  EXPECT_EQ(x.flag, y.flag);
}

TEST(ReplicaWire, TheLargestHeaderRoundTripsInTheBoundItPromises) {
  const std::vector<std::byte> bytes = message(extreme());
  EXPECT_EQ(bytes.size(), kMaxHeaderSize);
  std::size_t at = 0;
  auto decoded = decode_header(bytes, at);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(at, bytes.size());
  expect_same(*decoded, extreme());
}

TEST(ReplicaWire, TheBodyFollowsTheHeader) {
  Header header;
  header.a = 300;
  const std::byte body[] = {std::byte{7}, std::byte{8}};
  const std::vector<std::byte> bytes = message(header, body);
  std::size_t at = 0;
  ASSERT_TRUE(decode_header(bytes, at));
  ASSERT_EQ(bytes.size() - at, 2u);
  EXPECT_EQ(bytes[at], std::byte{7});
  EXPECT_EQ(bytes[at + 1], std::byte{8});
}

TEST(ReplicaWire, EveryCutShortHeaderIsRefusedAndConsumesNothing) {
  const std::vector<std::byte> bytes = message(extreme());
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    std::size_t at = 0;
    EXPECT_FALSE(decode_header(std::span(bytes).first(length), at)) << length << " bytes";
    EXPECT_EQ(at, 0u);
  }
}

TEST(ReplicaWire, ANumberTooLargeForItsFieldIsRefused) {
  Header header;
  std::vector<std::byte> bytes = message(header);
  // The epoch is the fourth varint, after step, wave and three one-byte zeros: make it 2^32.
  const std::byte too_large[] = {std::byte{0x80}, std::byte{0x80}, std::byte{0x80}, std::byte{0x80},
                                 std::byte{0x10}};
  bytes.erase(bytes.begin() + 5);
  bytes.insert(bytes.begin() + 5, std::begin(too_large), std::end(too_large));
  std::size_t at = 0;
  EXPECT_FALSE(decode_header(bytes, at));
  // One less fits: 2^32 - 1.
  bytes[9] = std::byte{0x0f};
  bytes[5] = bytes[6] = bytes[7] = bytes[8] = std::byte{0xff};
  auto decoded = decode_header(bytes, at);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->epoch, std::numeric_limits<std::uint32_t>::max());
}

TEST(ReplicaWire, AStatusSaidPresentButZeroIsRefused) {
  Header header;
  header.status = 1;
  std::vector<std::byte> bytes = message(header);
  bytes.back() = std::byte{0};
  std::size_t at = 0;
  EXPECT_FALSE(decode_header(bytes, at));
}

TEST(ReplicaWire, ASmallOperationsWaveAndItsAnswerFitOneSlotOfA64ByteLine) {
  auto slot = single_slot_payload(ChannelOptions{256, -1, 64});
  ASSERT_TRUE(slot);
  const std::size_t room = *slot - kEnvelopeSize;
  // A long-running system: a million waves and proposals, many kernels, several epochs.
  Header wave;
  wave.object = 40;
  wave.a = 1'000'000;
  wave.b = 1'000'000;
  wave.epoch = 100;
  wave.root = 200;
  wave.origin = 200;
  std::vector<std::byte> body(sizeof(std::uint64_t) + 16);  // stable prefix, then the operation
  EXPECT_LE(message(wave, body).size(), room);
  Header answer = wave;
  answer.step = Step::wave_up;
  EXPECT_LE(message(answer).size(), room);
}

}  // namespace
}  // namespace mk::replica
