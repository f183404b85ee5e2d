// A slow receiver fills its rings; senders suspend, and every message arrives, in order.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "messages.h"
#include "mk/system.h"
#include "runtime_test_util.h"
#include "test_scale.h"

namespace {

using mk_test::Numbered;

TEST(BackPressure, SendersSuspendOnAFullRingAndEveryMessageArrivesInOrder) {
  constexpr std::size_t kSenders = 3;
  constexpr std::uint32_t per_sender = static_cast<std::uint32_t>(mk::test::scaled(5000));
  mk::Config config = mk::test::config_for(kSenders + 1);
  config.ring_slots = 64;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);

  std::atomic<bool> release{false};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> out_of_order{0};
  std::vector<std::uint32_t> next(kSenders + 1, 0);  // Touched by kernel 0 only.
  ASSERT_TRUE(system
                  ->run(0,
                        [&](mk::Kernel& k) -> mk::Task<void> {
                          auto added = k.handle<Numbered>([&](const Numbered& m) {
                            // The first message holds the receiver until the test lets go,
                            // so the senders' rings fill up behind it.
                            while (!release.load()) {
                              std::this_thread::sleep_for(std::chrono::milliseconds(1));
                            }
                            if (m.number != next[m.sender]) out_of_order.fetch_add(1);
                            next[m.sender] = m.number + 1;
                            received.fetch_add(1);
                          });
                          EXPECT_TRUE(added.ok());
                          auto echo = k.handle<mk_test::Echo>([](const mk_test::Echo& e) {
                            return mk_test::EchoReply{e.value, e.caller, 0};
                          });
                          EXPECT_TRUE(echo.ok());
                          co_return;
                        })
                  .ok());

  std::vector<std::atomic<std::uint32_t>> sent(kSenders + 1);
  std::atomic<std::uint32_t> failures{0};
  std::atomic<std::uint32_t> done{0};
  std::atomic<std::uint32_t> bound_senders{0};
  for (mk::KernelId s = 1; s <= kSenders; ++s) {
    ASSERT_TRUE(system
                    ->spawn(s,
                            [&](mk::Kernel& k) -> mk::Task<void> {
                              // A call first binds both channels while the receiver still
                              // runs; the first Numbered then holds it.
                              auto bound = co_await k.call(0, mk_test::Echo{0, k.id()});
                              if (!bound) failures.fetch_add(1);
                              bound_senders.fetch_add(1);
                              while (bound_senders.load() < kSenders) {
                                co_await k.sleep_for(std::chrono::milliseconds(1));
                              }
                              for (std::uint32_t n = 0; n < per_sender; ++n) {
                                auto result = co_await k.send(0, Numbered{k.id(), n});
                                if (!result) failures.fetch_add(1);
                                sent[k.id()].fetch_add(1);
                              }
                              done.fetch_add(1);
                            })
                    .ok());
  }
  // Let the senders run into the full rings.
  mk::test::wait_until([&] {
    for (mk::KernelId s = 1; s <= kSenders; ++s) {
      if (sent[s].load() == 0) return false;
    }
    return true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // A ring holds at most 64 slots and the receiver has taken one message: a sender that
  // finished now would have dropped messages.
  for (mk::KernelId s = 1; s <= kSenders; ++s)
    EXPECT_LT(sent[s].load(), per_sender);
  release.store(true);

  mk::test::wait_until([&] { return done.load() == kSenders; });
  mk::test::wait_until([&] { return received.load() == kSenders * per_sender; });
  EXPECT_EQ(failures.load(), 0u);
  EXPECT_EQ(out_of_order.load(), 0u);
  EXPECT_TRUE(system->shutdown().ok());
  for (mk::KernelId s = 1; s <= kSenders; ++s)
    EXPECT_EQ(next[s], per_sender);
}

}  // namespace
