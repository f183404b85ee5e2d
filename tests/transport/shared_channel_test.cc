// urpc rings in a memfd, as kernel processes use them: each end maps the ring on its own, a
// ring that is not what the sender asked for is refused, and a peer that writes garbage into
// the shared memory stops its channel with an error instead of crashing or misleading the
// other end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <numeric>
#include <vector>

#include "mk/channel.h"
#include "mk/slot_format.h"
#include "mk/urpc.h"
#include "transport/channel_options.h"
#include "transport/urpc_channel.h"

namespace {

using mk::transport::SlotGeometry;

constexpr std::size_t kAuxLines = 2;

SlotGeometry geometry(std::size_t slots = 64) {
  auto made = mk::transport::make_geometry(mk::ChannelOptions{slots, -1, 64});
  EXPECT_TRUE(made.ok());
  return *made;
}

struct SharedPair {
  mk::transport::SharedUrpcReceiver receiving;
  mk::transport::SharedUrpcSender sending;
};

SharedPair make_pair(const SlotGeometry& g) {
  auto receiving = mk::transport::make_shared_urpc_receiver(g, -1, kAuxLines);
  EXPECT_TRUE(receiving.ok());
  auto sending = mk::transport::attach_urpc_sender(g, receiving->fd, kAuxLines);
  EXPECT_TRUE(sending.ok()) << (sending.ok() ? "" : sending.error().describe());
  return SharedPair{std::move(*receiving), std::move(*sending)};
}

/// The sender's view of slot `position`: its header word, as the ring lays it out.
std::uint64_t* header_at(const SharedPair& pair, const SlotGeometry& g, std::uint64_t position) {
  std::byte* slots = pair.sending.aux.get() + mk::transport::shared_urpc_slots_offset(g, kAuxLines);
  return reinterpret_cast<std::uint64_t*>(slots + g.offset_of(position) + g.payload);
}

std::vector<std::byte> bytes_of(std::size_t size, unsigned seed) {
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i)
    out[i] = static_cast<std::byte>((i * 31 + seed) & 0xFF);
  return out;
}

TEST(SharedChannel, EveryMessageSizeCrossesBetweenTwoMappings) {
  const SlotGeometry g = geometry(256);
  SharedPair pair = make_pair(g);
  // The two ends map the memfd at two addresses, as two processes would.
  EXPECT_NE(static_cast<void*>(pair.sending.aux.get()),
            static_cast<void*>(pair.receiving.aux.get()));
  std::size_t received = 0;
  for (std::size_t size = 0; size <= mk::kMaxPayload; size += 37) {
    const auto payload = bytes_of(size, static_cast<unsigned>(size));
    ASSERT_EQ(pair.sending.sender->try_send(7, payload), mk::SendStatus::ok) << size;
    const std::size_t got = pair.receiving.receiver->poll(
        [&](const mk::MessageView& message) {
          EXPECT_EQ(message.type, 7);
          EXPECT_TRUE(std::equal(message.payload.begin(), message.payload.end(), payload.begin(),
                                 payload.end()));
          ++received;
        },
        16);
    ASSERT_EQ(got, 1u) << size;
  }
  EXPECT_EQ(received, mk::kMaxPayload / 37 + 1);
  EXPECT_EQ(pair.receiving.receiver->fault(), nullptr);
  // The aux lines are shared too: what one end writes the other reads.
  pair.receiving.aux.get()[5] = std::byte{42};
  EXPECT_EQ(pair.sending.aux.get()[5], std::byte{42});
}

TEST(SharedChannel, ARingOfAnotherShapeIsRefused) {
  const SlotGeometry g = geometry(64);
  auto receiving = mk::transport::make_shared_urpc_receiver(g, -1, kAuxLines);
  ASSERT_TRUE(receiving.ok());
  auto wrong = mk::transport::attach_urpc_sender(geometry(128), receiving->fd, kAuxLines);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, mk::Errc::invalid_argument);
}

TEST(SharedChannel, AMemfdThatCanShrinkIsRefused) {
  const SlotGeometry g = geometry(64);
  const int fd = ::memfd_create("not-sealed", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(mk::transport::shared_urpc_bytes(g, kAuxLines))), 0);
  auto refused = mk::transport::attach_urpc_sender(g, fd, kAuxLines);
  ::close(fd);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("sealed"), std::string::npos);
}

TEST(SharedChannel, ACorruptHeaderStopsTheChannelWithAnErrorAndNothingIsCopied) {
  struct Case {
    const char* what;
    std::size_t length;
    std::size_t slots;
  };
  const Case cases[] = {
      {"a one-slot message longer than a slot", 57, 1},
      {"a length past kMaxPayload", mk::kMaxPayload + 1, 38},
      {"too few slots for its length", 200, 2},
      {"too many slots for its length", 100, 9},
      {"a continuation marker where a message starts", 10, 0},
      {"a slot count past the ring", 60, 255},
  };
  for (const Case& bad : cases) {
    const SlotGeometry g = geometry(64);
    SharedPair pair = make_pair(g);
    // One good message first, filling its slot: it is delivered; the corrupt one after it is
    // not.
    ASSERT_EQ(pair.sending.sender->try_send(3, bytes_of(g.payload, 1)), mk::SendStatus::ok);
    std::atomic_ref<std::uint64_t>(*header_at(pair, g, 1))
        .store(mk::transport::encode_header(4, bad.length, bad.slots, g.epoch_bits(1)),
               std::memory_order_release);
    std::vector<mk::MessageType> seen;
    const std::size_t got = pair.receiving.receiver->poll(
        [&](const mk::MessageView& message) { seen.push_back(message.type); }, 16);
    EXPECT_EQ(got, 1u) << bad.what;
    EXPECT_EQ(seen, std::vector<mk::MessageType>{3}) << bad.what;
    const mk::Error* fault = pair.receiving.receiver->fault();
    ASSERT_NE(fault, nullptr) << bad.what;
    EXPECT_EQ(fault->code, mk::Errc::parse_error) << bad.what;
    EXPECT_NE(fault->message.find("corrupt header"), std::string::npos) << bad.what;
    // For good: nothing more is delivered, and it does not look busy.
    EXPECT_FALSE(pair.receiving.receiver->has_message()) << bad.what;
    EXPECT_EQ(pair.receiving.receiver->poll([](const mk::MessageView&) {}, 16), 0u) << bad.what;
  }
}

/// A pair whose slot 0 holds an 8-byte message of type 3 and a packed one of type 4 and
/// `second` bytes, and a poll that records the types it is given.
struct PackedPair {
  explicit PackedPair(std::size_t second) : g(geometry(64)), pair(make_pair(g)) {
    EXPECT_EQ(pair.sending.sender->try_send(3, bytes_of(8, 1)), mk::SendStatus::ok);
    EXPECT_EQ(pair.sending.sender->try_send(4, bytes_of(second, 2)), mk::SendStatus::ok);
  }
  std::size_t poll() {
    return pair.receiving.receiver->poll(
        [&](const mk::MessageView& message) { seen.push_back(message.type); }, 16);
  }
  /// Rewrites slot 0's count of packed messages, keeping the rest of its header.
  void claim_packed(std::size_t packed) {
    auto header = std::atomic_ref<std::uint64_t>(*header_at(pair, g, 0));
    header.store(mk::transport::with_packed(header.load(std::memory_order_relaxed), packed),
                 std::memory_order_release);
  }
  void expect_stopped(const char* what) {
    const mk::Error* fault = pair.receiving.receiver->fault();
    ASSERT_NE(fault, nullptr) << what;
    EXPECT_EQ(fault->code, mk::Errc::parse_error) << what;
    EXPECT_NE(fault->message.find("corrupt header"), std::string::npos) << what;
    EXPECT_FALSE(pair.receiving.receiver->has_message()) << what;
    EXPECT_EQ(poll(), 0u) << what;
    EXPECT_EQ(seen, (std::vector<mk::MessageType>{3, 4})) << what;
  }

  SlotGeometry g;
  SharedPair pair;
  std::vector<mk::MessageType> seen;
};

TEST(SharedChannel, APackedMessageOverrunningItsSlotStopsTheChannel) {
  PackedPair packed(8);  // The second message ends at byte 20.
  ASSERT_EQ(packed.poll(), 2u);
  std::byte* slot =
      reinterpret_cast<std::byte*>(header_at(packed.pair, packed.g, 0)) - packed.g.payload;
  const std::uint16_t sub_header[2] = {5, 40};  // 20 + 4 + 40 bytes: past the slot's 56.
  std::memcpy(slot + 20, sub_header, sizeof sub_header);
  packed.claim_packed(2);
  EXPECT_EQ(packed.poll(), 0u);
  packed.expect_stopped("overrun");
}

TEST(SharedChannel, APackedMessageWithNoRoomForItsSubHeaderStopsTheChannel) {
  // The second message ends at byte 53: the next sub-header would start at 56, in the header
  // word, so the sender closed the slot. A header that claims one more is corrupt.
  PackedPair packed(41);
  packed.claim_packed(2);
  EXPECT_EQ(packed.poll(), 2u);
  packed.expect_stopped("no room for the sub-header");
}

TEST(SharedChannel, ARunClaimingMoreMessagesThanItsSlotHoldsStopsTheChannel) {
  const SlotGeometry g = geometry(64);
  SharedPair pair = make_pair(g);
  // Two 8-byte messages of one type make slot 0 a run; its 56 bytes hold seven of them.
  for (unsigned i = 0; i < 2; ++i)
    ASSERT_EQ(pair.sending.sender->try_send(3, bytes_of(8, i)), mk::SendStatus::ok);
  auto header = std::atomic_ref<std::uint64_t>(*header_at(pair, g, 0));
  ASSERT_NE(header.load(std::memory_order_relaxed) & mk::transport::kRunBit, 0u);
  header.store(mk::transport::with_packed(header.load(std::memory_order_relaxed), 7),
               std::memory_order_release);
  std::size_t seen = 0;
  // The seven that fit are delivered; the eighth would end at byte 64, past the payload.
  EXPECT_EQ(pair.receiving.receiver->poll([&](const mk::MessageView&) { ++seen; }, 16), 7u);
  EXPECT_EQ(seen, 7u);
  const mk::Error* fault = pair.receiving.receiver->fault();
  ASSERT_NE(fault, nullptr);
  EXPECT_EQ(fault->code, mk::Errc::parse_error);
  EXPECT_NE(fault->message.find("overruns the slot"), std::string::npos) << fault->message;
  EXPECT_FALSE(pair.receiving.receiver->has_message());
}

TEST(SharedChannel, ACountOfPackedMessagesThatGoesBackStopsTheChannel) {
  PackedPair packed(8);
  ASSERT_EQ(packed.poll(), 2u);
  packed.claim_packed(0);
  EXPECT_EQ(packed.poll(), 0u);
  packed.expect_stopped("count went back");
}

TEST(SharedChannel, AReceiverThatLiesAboutItsPositionClosesTheChannel) {
  const SlotGeometry g = geometry(64);
  SharedPair pair = make_pair(g);
  // Fill the ring, so the sender must read the receiver's published position.
  std::size_t sent = 0;
  while (pair.sending.sender->try_send(1, bytes_of(g.payload, 0)) == mk::SendStatus::ok)
    ++sent;
  EXPECT_EQ(sent, g.slots);
  // The receiver's line: it claims to have read past what was ever written.
  auto* published =
      reinterpret_cast<std::uint64_t*>(pair.receiving.aux.get() + kAuxLines * g.line_size);
  std::atomic_ref<std::uint64_t>(*published).store(g.slots * 5, std::memory_order_release);
  EXPECT_EQ(pair.sending.sender->try_send(1, bytes_of(8, 0)), mk::SendStatus::closed);
  EXPECT_EQ(pair.sending.sender->try_send(1, bytes_of(8, 0)), mk::SendStatus::closed);
}

TEST(SharedChannel, ARequestForAnAnswerThatIsNotAloneInOneSlotStopsTheChannel) {
  using mk::transport::kAnswerBit;
  using mk::transport::kOpenBit;
  struct Case {
    const char* what;
    std::size_t length;
    std::size_t slots;
    std::uint64_t bits;
  };
  const Case cases[] = {
      {"a request of two slots", 100, 2, kAnswerBit},
      {"a request in an open slot", 8, 1, kAnswerBit | kOpenBit},
      {"a request with packed messages", 8, 1, kAnswerBit | (std::uint64_t{1} << 36)},
  };
  for (const Case& bad : cases) {
    const SlotGeometry g = geometry(64);
    SharedPair pair = make_pair(g);
    std::atomic_ref<std::uint64_t>(*header_at(pair, g, 0))
        .store(mk::transport::encode_header(4, bad.length, bad.slots, g.epoch_bits(0)) | bad.bits,
               std::memory_order_release);
    bool delivered = false;
    EXPECT_EQ(pair.receiving.receiver->poll([&](const mk::MessageView&) { delivered = true; }, 16),
              0u)
        << bad.what;
    EXPECT_FALSE(delivered) << bad.what;
    const mk::Error* fault = pair.receiving.receiver->fault();
    ASSERT_NE(fault, nullptr) << bad.what;
    EXPECT_EQ(fault->code, mk::Errc::parse_error) << bad.what;
    EXPECT_NE(fault->message.find("corrupt header"), std::string::npos) << bad.what;
  }
}

// The receiver may write anything into a request's line: the sender takes only an answer or a
// refusal of this request's lap that fits the slot, and calls anything else broken.
TEST(SharedChannel, AnAnswerThatIsNeitherAnAnswerNorARefusalIsBroken) {
  using mk::transport::kAnswerBit;
  using mk::transport::kAnsweredSlots;
  using mk::transport::kDeclinedSlots;
  const SlotGeometry g = geometry(64);
  struct Case {
    const char* what;
    std::uint64_t header;
    mk::UrpcSender::AnswerState expected;
  };
  const Case cases[] = {
      {"an answer",
       mk::transport::encode_header(9, 16, kAnsweredSlots, g.epoch_bits(0)) | kAnswerBit,
       mk::UrpcSender::AnswerState::answered},
      {"a refusal",
       mk::transport::encode_header(0, 0, kDeclinedSlots, g.epoch_bits(0)) | kAnswerBit,
       mk::UrpcSender::AnswerState::declined},
      {"an answer longer than the slot",
       mk::transport::encode_header(9, g.payload + 1, kAnsweredSlots, g.epoch_bits(0)) | kAnswerBit,
       mk::UrpcSender::AnswerState::broken},
      {"an answer of another lap",
       mk::transport::encode_header(9, 16, kAnsweredSlots, g.epoch_bits(g.slots)) | kAnswerBit,
       mk::UrpcSender::AnswerState::broken},
      {"an answer without the answer bit",
       mk::transport::encode_header(9, 16, kAnsweredSlots, g.epoch_bits(0)),
       mk::UrpcSender::AnswerState::broken},
      {"an ordinary message's header",
       mk::transport::encode_header(9, 16, 1, g.epoch_bits(0)) | kAnswerBit,
       mk::UrpcSender::AnswerState::broken},
      {"a refusal that carries bytes",
       mk::transport::encode_header(0, 8, kDeclinedSlots, g.epoch_bits(0)) | kAnswerBit,
       mk::UrpcSender::AnswerState::broken},
  };
  for (const Case& each : cases) {
    SharedPair pair = make_pair(g);
    // A shared ring's sender is a urpc sender: the runtime finds it so too.
    auto& sender = dynamic_cast<mk::UrpcSender&>(*pair.sending.sender);
    ASSERT_EQ(sender.send_for_answer(3, bytes_of(8, 1), {}), mk::SendStatus::ok);
    std::atomic_ref<std::uint64_t>(*header_at(pair, g, 0))
        .store(each.header, std::memory_order_release);
    mk::MessageView answer;
    EXPECT_EQ(sender.poll_answer(answer), each.expected) << each.what;
    EXPECT_FALSE(sender.awaiting_answer()) << each.what;
    if (each.expected == mk::UrpcSender::AnswerState::answered) {
      EXPECT_EQ(answer.type, 9) << each.what;
      EXPECT_EQ(answer.payload.size(), 16u) << each.what;
    }
  }
}

}  // namespace
