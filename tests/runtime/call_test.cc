// Calls between kernels: all-to-all with many outstanding, errors that reach the caller.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "messages.h"
#include "mk/kernel.h"
#include "mk/system.h"
#include "runtime_test_util.h"
#include "test_scale.h"

namespace call_test {

/// What ErrorsReachTheCallerAndTheKernelKeepsRunning's task saw. (At namespace scope: a
/// coroutine frame holding a type without linkage makes GCC warn.)
struct Outcome {
  mk::Result<mk_test::EchoReply> unhandled;
  mk::Result<mk_test::EchoReply> thrown;
  mk::Result<mk_test::EchoReply> no_kernel;
  mk::Result<void> send_no_kernel;
  mk::Result<mk_test::EchoReply> after;
};

}  // namespace call_test

namespace {

using call_test::Outcome;
using mk_test::Echo;
using mk_test::EchoReply;
using mk_test::register_echo;

struct Tally {
  std::atomic<std::uint64_t> ok{0};
  std::atomic<std::uint64_t> wrong{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint32_t> workers_done{0};
};

/// One worker: `calls` calls to every kernel in turn, checking each reply.
mk::Task<void> worker(mk::Kernel& k, Tally& tally, std::uint64_t seed, std::uint64_t calls) {
  const auto n = static_cast<mk::KernelId>(k.system_size());
  for (std::uint64_t i = 0; i < calls; ++i) {
    const mk::KernelId to = static_cast<mk::KernelId>((seed + i) % n);
    const std::uint64_t value = seed * 1000003 + i;
    auto reply = co_await k.call(to, Echo{value, k.id()});
    if (!reply) {
      tally.failed.fetch_add(1);
    } else if (reply->value != value * 2 + 1 || reply->caller != k.id() || reply->responder != to) {
      tally.wrong.fetch_add(1);
    } else {
      tally.ok.fetch_add(1);
    }
  }
  tally.workers_done.fetch_add(1);
}

TEST(Calls, AllToAllWithManyOutstandingCallsRepeatedly) {
  constexpr std::size_t kKernels = 8;
  constexpr std::uint32_t kWorkersPerKernel = 16;
  constexpr std::uint64_t kCallsPerWorker = mk::test::scaled(2000);
  for (int round = 0; round < 3; ++round) {
    mk::Config config = mk::test::config_for(kKernels);
    config.ring_slots = 64;  // Small rings: requests and replies also meet back-pressure.
    auto system = mk::test::boot(config);
    ASSERT_TRUE(system);
    ASSERT_TRUE(system->for_each_kernel(register_echo).ok());
    Tally tally;
    for (mk::KernelId k = 0; k < kKernels; ++k) {
      for (std::uint32_t w = 0; w < kWorkersPerKernel; ++w) {
        const std::uint64_t seed = k * kWorkersPerKernel + w;
        ASSERT_TRUE(system
                        ->spawn(k,
                                [&tally, seed](mk::Kernel& kernel) {
                                  return worker(kernel, tally, seed, kCallsPerWorker);
                                })
                        .ok());
      }
    }
    mk::test::wait_until([&] { return tally.workers_done.load() == kKernels * kWorkersPerKernel; });
    EXPECT_EQ(tally.ok.load(), kKernels * kWorkersPerKernel * kCallsPerWorker);
    EXPECT_EQ(tally.wrong.load(), 0u);
    EXPECT_EQ(tally.failed.load(), 0u);
    // Channels exist only between pairs that talked: here every pair, both ways.
    std::uint64_t bound = 0;
    for (mk::KernelId k = 0; k < kKernels; ++k)
      bound += system->stats(k)->channels_bound;
    EXPECT_EQ(bound, kKernels * (kKernels - 1));
    EXPECT_TRUE(system->shutdown().ok());
  }
}

TEST(Calls, ChannelsAreBoundOnlyBetweenKernelsThatTalk) {
  auto system = mk::test::boot(mk::test::config_for(4));
  ASSERT_TRUE(system);
  ASSERT_TRUE(system->for_each_kernel(register_echo).ok());
  auto reply = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::Result<EchoReply>> {
    co_return co_await k.call(1, Echo{5, k.id()});
  });
  ASSERT_TRUE(reply.ok());
  ASSERT_TRUE(reply->ok());
  EXPECT_EQ((*reply)->value, 11u);
  // 0 -> 1 carried the request and 1 -> 0 the reply; kernels 2 and 3 bound nothing.
  EXPECT_EQ(system->stats(0)->channels_bound, 1u);
  EXPECT_EQ(system->stats(1)->channels_bound, 1u);
  EXPECT_EQ(system->stats(2)->channels_bound, 0u);
  EXPECT_EQ(system->stats(3)->channels_bound, 0u);
}

TEST(Calls, ErrorsReachTheCallerAndTheKernelKeepsRunning) {
  auto system = mk::test::boot(mk::test::config_for(2));
  ASSERT_TRUE(system);
  ASSERT_TRUE(system
                  ->for_each_kernel([](mk::Kernel& k) {
                    register_echo(k);
                    auto added = k.handle<mk_test::Throws>([](const mk_test::Throws&) -> EchoReply {
                      throw std::runtime_error("boom");
                    });
                    EXPECT_TRUE(added.ok());
                  })
                  .ok());
  auto outcome = system->run(0, [](mk::Kernel& k) -> mk::Task<Outcome> {
    auto unhandled = co_await k.call(1, mk_test::Unhandled{1});
    auto thrown = co_await k.call(1, mk_test::Throws{2});
    auto no_kernel = co_await k.call(7, Echo{3, k.id()});
    auto send_no_kernel = co_await k.send(99, mk_test::Numbered{0, 0});
    auto after = co_await k.call(1, Echo{4, k.id()});
    co_return Outcome{std::move(unhandled), std::move(thrown), std::move(no_kernel),
                      std::move(send_no_kernel), std::move(after)};
  });
  ASSERT_TRUE(outcome.ok()) << outcome.error().describe();
  ASSERT_FALSE(outcome->unhandled.ok());
  EXPECT_EQ(outcome->unhandled.error().code, mk::Errc::no_handler);
  EXPECT_NE(outcome->unhandled.error().message.find("message type 2"), std::string::npos);
  ASSERT_FALSE(outcome->thrown.ok());
  EXPECT_EQ(outcome->thrown.error().code, mk::Errc::handler_failed);
  EXPECT_NE(outcome->thrown.error().message.find("boom"), std::string::npos);
  ASSERT_FALSE(outcome->no_kernel.ok());
  EXPECT_EQ(outcome->no_kernel.error().code, mk::Errc::not_found);
  ASSERT_FALSE(outcome->send_no_kernel.ok());
  EXPECT_EQ(outcome->send_no_kernel.error().code, mk::Errc::not_found);
  ASSERT_TRUE(outcome->after.ok());
  EXPECT_EQ(outcome->after->value, 9u);
}

TEST(Calls, CoroutineHandlersMayCallOtherKernels) {
  auto system = mk::test::boot(mk::test::config_for(3));
  ASSERT_TRUE(system);
  ASSERT_TRUE(
      system
          ->for_each_kernel([](mk::Kernel& k) {
            register_echo(k);
            // Kernel 1 answers Probe by asking kernel 2 and adding one.
            auto added = k.handle<mk_test::Probe>(
                [](const mk_test::Probe&,
                   const mk::MessageContext& context) -> mk::Task<mk::Result<mk_test::SleepCount>> {
                  auto inner = co_await context.kernel.call(2, Echo{10, context.kernel.id()});
                  if (!inner) co_return std::move(inner).error();
                  co_return mk_test::SleepCount{inner->value + 1};
                });
            EXPECT_TRUE(added.ok());
          })
          .ok());
  auto reply = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::Result<mk_test::SleepCount>> {
    co_return co_await k.call(1, mk_test::Probe{0});
  });
  ASSERT_TRUE(reply.ok());
  ASSERT_TRUE(reply->ok()) << reply->error().describe();
  EXPECT_EQ((*reply)->sleeps, 22u);
}

TEST(Calls, LargePayloadsSpanSeveralSlots) {
  auto system = mk::test::boot(mk::test::config_for(2));
  ASSERT_TRUE(system);
  ASSERT_TRUE(system
                  ->for_each_kernel([](mk::Kernel& k) {
                    auto added = k.handle<mk_test::Large>([](const mk_test::Large& large) {
                      std::uint64_t sum = 0;
                      for (std::size_t i = 0; i < large.bytes.size(); ++i)
                        sum += large.bytes[i] * (i + 1);
                      return mk_test::Checksum{sum};
                    });
                    EXPECT_TRUE(added.ok());
                  })
                  .ok());
  auto reply = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::Result<mk_test::Checksum>> {
    mk_test::Large large{};
    for (std::size_t i = 0; i < large.bytes.size(); ++i)
      large.bytes[i] = static_cast<std::uint8_t>(i * 7);
    co_return co_await k.call(1, large);
  });
  std::uint64_t expected = 0;
  for (std::size_t i = 0; i < 1500; ++i)
    expected += static_cast<std::uint8_t>(i * 7) * (i + 1);
  ASSERT_TRUE(reply.ok());
  ASSERT_TRUE(reply->ok()) << reply->error().describe();
  EXPECT_EQ((*reply)->sum, expected);
}

TEST(Calls, DuplicateHandlerIsRefused) {
  auto system = mk::test::boot(mk::test::config_for(1));
  ASSERT_TRUE(system);
  auto second = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::Result<void>> {
    register_echo(k);
    co_return k.handle<Echo>([](const Echo&) { return EchoReply{}; });
  });
  ASSERT_TRUE(second.ok());
  ASSERT_FALSE(second->ok());
  EXPECT_EQ(second->error().code, mk::Errc::already_exists);
}

TEST(Calls, TaskExceptionsReachSystemRun) {
  auto system = mk::test::boot(mk::test::config_for(1));
  ASSERT_TRUE(system);
  auto failed = system->run(0, [](mk::Kernel&) -> mk::Task<int> {
    throw std::runtime_error("task broke");
    co_return 0;
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, mk::Errc::handler_failed);
  EXPECT_NE(failed.error().message.find("task broke"), std::string::npos);
  EXPECT_EQ(system->run(5, [](mk::Kernel&) -> mk::Task<int> { co_return 1; }).error().code,
            mk::Errc::not_found);
}

TEST(Calls, BlockingFromAKernelThreadIsRefused) {
  auto system = mk::test::boot(mk::test::config_for(1));
  ASSERT_TRUE(system);
  mk::System* raw = system.get();
  auto nested = system->run(0, [raw](mk::Kernel&) -> mk::Task<mk::Errc> {
    auto inner = raw->run(0, [](mk::Kernel&) -> mk::Task<int> { co_return 1; });
    auto stop = raw->shutdown();
    co_return inner.ok() || stop.ok() ? mk::Errc::internal : inner.error().code;
  });
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(*nested, mk::Errc::invalid_argument);
}

}  // namespace
