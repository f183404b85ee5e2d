// A slow receiver fills its rings; senders suspend, and every message arrives, in order; with
// kernels as threads and as processes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "messages.h"
#include "mk/system.h"
#include "runtime_test_util.h"
#include "test_scale.h"

namespace backpressure_test {

/// What the receiver saw, by sender.
struct Received {
  std::uint64_t total = 0;
  std::uint64_t out_of_order = 0;
  std::vector<std::uint32_t> next;  ///< By sender: the number it expects next.
};

/// What one sender saw.
struct Sent {
  std::uint32_t sent = 0;
  std::uint32_t failures = 0;
  bool done = false;
};

}  // namespace backpressure_test

namespace {

using backpressure_test::Received;
using backpressure_test::Sent;
using mk_test::Numbered;

constexpr std::size_t kSenders = 3;
const std::uint32_t kPerSender = static_cast<std::uint32_t>(mk::test::scaled(5000));

/// Holds the receiver's first message until the test opens it. The receiver is stuck inside
/// a handler meanwhile, so no task or control message could tell it: it looks at memory it
/// shares with the test in either isolation.
struct Gate {
  std::atomic<bool> open{false};
};

/// Opens the gate when the test ends early, so that shutdown does not wait on a held kernel.
struct OpenOnExit {
  Gate& gate;
  ~OpenOnExit() { gate.open.store(true); }
};

/// Kernel 0's record of what it received; touched by kernel 0 only.
struct ReceiverLog {
  explicit ReceiverLog(mk::Kernel&) : seen{0, {}, std::vector<std::uint32_t>(kSenders + 1, 0)} {}
  Received seen;
};

/// A sender's record; touched by its own kernel only.
struct SenderLog {
  explicit SenderLog(mk::Kernel&) {}
  Sent sent;
};

mk::Task<void> send_all(mk::Kernel& k, std::uint32_t count) {
  for (std::uint32_t n = 0; n < count; ++n) {
    auto result = co_await k.send(0, Numbered{k.id(), n});
    Sent& log = k.extension<SenderLog>().sent;
    if (!result) ++log.failures;
    ++log.sent;
  }
  k.extension<SenderLog>().sent.done = true;
}

/// The sender's record once it has sent `at_least` messages (or finished, when `finish`).
mk::Task<Sent> sender_record(mk::Kernel& k, std::uint32_t at_least, bool finish) {
  while (true) {
    const Sent& log = k.extension<SenderLog>().sent;
    if (log.sent >= at_least && (!finish || log.done)) co_return log;
    co_await k.sleep_for(std::chrono::milliseconds(1));
  }
}

mk::Task<Received> receiver_record(mk::Kernel& k, std::uint64_t total) {
  while (k.extension<ReceiverLog>().seen.total < total)
    co_await k.sleep_for(std::chrono::milliseconds(1));
  co_return k.extension<ReceiverLog>().seen;
}

}  // namespace

template <>
struct mk::Codec<backpressure_test::Received> {
  static void encode(const backpressure_test::Received& r, std::vector<std::byte>& out) {
    encode_fields(out, r.total, r.out_of_order, r.next);
  }
  static Result<backpressure_test::Received> decode(std::span<const std::byte> bytes) {
    auto fields = decode_fields<std::uint64_t, std::uint64_t, std::vector<std::uint32_t>>(bytes);
    if (!fields) return std::move(fields).error();
    auto& [total, out_of_order, next] = *fields;
    return backpressure_test::Received{total, out_of_order, std::move(next)};
  }
};

namespace {

class BackPressure : public mk::test::BothIsolations {};

TEST_P(BackPressure, SendersSuspendOnAFullRingAndEveryMessageArrivesInOrder) {
  mk::test::Shared<Gate> gate;
  OpenOnExit open_on_exit{*gate};
  mk::Config config = this->config(kSenders + 1);
  config.ring_slots = 64;
  config.setup = [held = gate.get()](mk::Kernel& k) -> mk::Result<void> {
    if (k.id() != 0) return {};
    auto added = k.handle<Numbered>([held](const Numbered& m, const mk::MessageContext& c) {
      // The first message holds the receiver until the test lets go, so the senders' rings
      // fill up behind it.
      while (!held->open.load())
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      Received& seen = c.kernel.extension<ReceiverLog>().seen;
      if (m.number != seen.next[m.sender]) ++seen.out_of_order;
      seen.next[m.sender] = m.number + 1;
      ++seen.total;
    });
    if (!added) return added;
    return k.handle<mk_test::Echo>([](const mk_test::Echo& e) {
      return mk_test::EchoReply{e.value, e.caller, 0};
    });
  };
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);

  // A call from each sender first binds both channels while the receiver still runs; the
  // first Numbered then holds it.
  for (mk::KernelId s = 1; s <= kSenders; ++s) {
    auto bound = system->run(s, [](mk::Kernel& k) -> mk::Task<bool> {
      co_return (co_await k.call(0, mk_test::Echo{0, k.id()})).ok();
    });
    ASSERT_TRUE(bound.ok()) << bound.error().describe();
    ASSERT_TRUE(*bound);
  }
  for (mk::KernelId s = 1; s <= kSenders; ++s) {
    ASSERT_TRUE(system
                    ->spawn(
                        s, [](mk::Kernel& k, std::uint32_t count) { return send_all(k, count); },
                        kPerSender)
                    .ok());
  }
  // Let the senders run into the full rings.
  for (mk::KernelId s = 1; s <= kSenders; ++s) {
    auto started = system->run(s, [](mk::Kernel& k) { return sender_record(k, 1, false); });
    ASSERT_TRUE(started.ok()) << started.error().describe();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // A ring holds at most 64 slots and the receiver has taken one message: a sender that
  // finished now would have dropped messages.
  for (mk::KernelId s = 1; s <= kSenders; ++s) {
    auto now = system->run(s, [](mk::Kernel& k) { return sender_record(k, 0, false); });
    ASSERT_TRUE(now.ok()) << now.error().describe();
    EXPECT_LT(now->sent, kPerSender) << "sender " << s;
    EXPECT_FALSE(now->done) << "sender " << s;
  }
  gate->open.store(true);

  for (mk::KernelId s = 1; s <= kSenders; ++s) {
    auto finished = system->run(
        s, [](mk::Kernel& k, std::uint32_t count) { return sender_record(k, count, true); },
        kPerSender);
    ASSERT_TRUE(finished.ok()) << finished.error().describe();
    EXPECT_EQ(finished->sent, kPerSender);
    EXPECT_EQ(finished->failures, 0u);
  }
  auto received = system->run(
      0, [](mk::Kernel& k, std::uint64_t total) { return receiver_record(k, total); },
      std::uint64_t{kSenders * kPerSender});
  ASSERT_TRUE(received.ok()) << received.error().describe();
  EXPECT_EQ(received->total, kSenders * kPerSender);
  EXPECT_EQ(received->out_of_order, 0u);
  ASSERT_EQ(received->next.size(), kSenders + 1);
  for (mk::KernelId s = 1; s <= kSenders; ++s)
    EXPECT_EQ(received->next[s], kPerSender) << "sender " << s;
  EXPECT_TRUE(system->shutdown().ok());
}

INSTANTIATE_TEST_SUITE_P(Isolations, BackPressure, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace
