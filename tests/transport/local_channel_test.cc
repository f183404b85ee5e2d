// The local kind: both ends on one thread, including a handler that sends on the channel
// it is being called from.
#include <gtest/gtest.h>

#include <vector>

#include "channel_test_support.h"
#include "mk/channel.h"
#include "skb/host_line_size.h"
#include "test_scale.h"
#include "transport/channel_options.h"

namespace mk {
namespace {

using test::fill_pattern;
using test::matches_pattern;

TEST(LocalChannel, ManyLapsOfMixedSizesArriveInOrderIntact) {
  auto ends = make_channel(ChannelKind::local, {.slots = 128});
  ASSERT_TRUE(ends.ok()) << ends.error().describe();
  auto& tx = *ends->sender;
  auto& rx = *ends->receiver;
  const std::uint64_t count = test::scaled(200'000);
  auto length_of = [](std::uint64_t s) -> std::size_t { return (s * 37) % (kMaxPayload + 1); };
  std::uint64_t sent = 0, received = 0, corrupt = 0;
  std::vector<std::byte> payload;
  while (received < count) {
    while (sent < count) {
      payload.resize(length_of(sent));
      fill_pattern(payload, sent);
      if (tx.try_send(static_cast<MessageType>(sent), payload) != SendStatus::ok) break;
      ++sent;
    }
    const std::size_t got = rx.poll(
        [&](const MessageView& message) {
          if (message.type != static_cast<MessageType>(received) ||
              !matches_pattern(message.payload, received, length_of(received))) {
            ++corrupt;
          }
          ++received;
        },
        7);
    ASSERT_GT(got, 0u) << "a full local ring yielded nothing at message " << received;
  }
  EXPECT_EQ(corrupt, 0u);
  EXPECT_FALSE(rx.has_message());
}

TEST(LocalChannel, HandlerMaySendOnItsOwnChannelWithoutOverwritingWhatItReads) {
  const std::size_t slots = transport::min_slots(detail::host_line_size());
  auto ends = make_channel(ChannelKind::local, {.slots = slots});
  ASSERT_TRUE(ends.ok());
  auto& tx = *ends->sender;
  auto& rx = *ends->receiver;
  std::vector<std::byte> payload(20);
  fill_pattern(payload, 0);
  ASSERT_EQ(tx.try_send(0, payload), SendStatus::ok);

  std::size_t sent_inside = 0;
  bool intact_after_sends = false;
  rx.poll(
      [&](const MessageView& message) {
        std::vector<std::byte> other(20);
        fill_pattern(other, 1);
        while (tx.try_send(1, other) == SendStatus::ok)
          ++sent_inside;
        intact_after_sends = matches_pattern(message.payload, 0, 20);
      },
      1);
  EXPECT_TRUE(intact_after_sends) << "a send from the handler overwrote the message it reads";
  EXPECT_EQ(sent_inside, slots - 1) << "the slot being read is not yet free";
  EXPECT_EQ(tx.try_send(1, payload), SendStatus::ok) << "freed once the handler returned";
}

}  // namespace
}  // namespace mk
