// Calls between kernels: all-to-all with many outstanding, errors that reach the caller; with
// kernels as threads and as processes.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "messages.h"
#include "mk/codec.h"
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

/// How one kernel's workers' calls ended.
struct Tally {
  std::uint64_t ok = 0;
  std::uint64_t wrong = 0;
  std::uint64_t failed = 0;
  std::uint32_t workers_done = 0;
};

}  // namespace call_test

/// An Outcome crosses back from a kernel process field by field.
template <>
struct mk::Codec<call_test::Outcome> {
  static void encode(const call_test::Outcome& o, std::vector<std::byte>& out) {
    encode_fields(out, o.unhandled, o.thrown, o.no_kernel, o.send_no_kernel, o.after);
  }
  static Result<call_test::Outcome> decode(std::span<const std::byte> bytes) {
    using Reply = Result<mk_test::EchoReply>;
    auto fields = decode_fields<Reply, Reply, Reply, Result<void>, Reply>(bytes);
    if (!fields) return std::move(fields).error();
    return std::apply([](auto&... field) { return call_test::Outcome{std::move(field)...}; },
                      *fields);
  }
};

namespace {

using call_test::Outcome;
using call_test::Tally;
using mk_test::Echo;
using mk_test::EchoReply;
using mk_test::register_echo;

/// A kernel's Tally, kept by its workers.
struct Workers {
  explicit Workers(mk::Kernel&) {}
  Tally tally;
};

/// One worker: `calls` calls to every kernel in turn, checking each reply.
mk::Task<void> worker(mk::Kernel& k, std::uint64_t seed, std::uint64_t calls) {
  const auto n = static_cast<mk::KernelId>(k.system_size());
  for (std::uint64_t i = 0; i < calls; ++i) {
    const mk::KernelId to = static_cast<mk::KernelId>((seed + i) % n);
    const std::uint64_t value = seed * 1000003 + i;
    auto reply = co_await k.call(to, Echo{value, k.id()});
    Tally& tally = k.extension<Workers>().tally;
    if (!reply) {
      ++tally.failed;
    } else if (reply->value != value * 2 + 1 || reply->caller != k.id() || reply->responder != to) {
      ++tally.wrong;
    } else {
      ++tally.ok;
    }
  }
  ++k.extension<Workers>().tally.workers_done;
}

/// The kernel's Tally once `workers` of its workers have finished.
mk::Task<Tally> await_workers(mk::Kernel& k, std::uint32_t workers) {
  while (k.extension<Workers>().tally.workers_done < workers)
    co_await k.sleep_for(std::chrono::milliseconds(1));
  co_return k.extension<Workers>().tally;
}

class Calls : public mk::test::BothIsolations {};

TEST_P(Calls, AllToAllWithManyOutstandingCallsRepeatedly) {
  constexpr std::size_t kKernels = 8;
  constexpr std::uint32_t kWorkersPerKernel = 16;
  constexpr std::uint64_t kCallsPerWorker = mk::test::scaled(2000);
  for (int round = 0; round < 3; ++round) {
    mk::Config config = this->config(kKernels);
    config.ring_slots = 64;  // Small rings: requests and replies also meet back-pressure.
    config.setup = register_echo;
    auto system = mk::test::boot(config);
    ASSERT_TRUE(system);
    for (mk::KernelId k = 0; k < kKernels; ++k) {
      for (std::uint32_t w = 0; w < kWorkersPerKernel; ++w) {
        const std::uint64_t seed = k * kWorkersPerKernel + w;
        ASSERT_TRUE(system
                        ->spawn(
                            k,
                            [](mk::Kernel& kernel, std::uint64_t first, std::uint64_t calls) {
                              return worker(kernel, first, calls);
                            },
                            seed, kCallsPerWorker)
                        .ok());
      }
    }
    Tally total;
    for (mk::KernelId k = 0; k < kKernels; ++k) {
      auto tally = system->run(
          k,
          [](mk::Kernel& kernel, std::uint32_t workers) { return await_workers(kernel, workers); },
          kWorkersPerKernel);
      ASSERT_TRUE(tally.ok()) << tally.error().describe();
      total.ok += tally->ok;
      total.wrong += tally->wrong;
      total.failed += tally->failed;
    }
    EXPECT_EQ(total.ok, kKernels * kWorkersPerKernel * kCallsPerWorker);
    EXPECT_EQ(total.wrong, 0u);
    EXPECT_EQ(total.failed, 0u);
    // Channels exist only between pairs that talked: here every pair, both ways.
    std::uint64_t bound = 0;
    for (mk::KernelId k = 0; k < kKernels; ++k)
      bound += system->stats(k)->channels_bound;
    EXPECT_EQ(bound, kKernels * (kKernels - 1));
    EXPECT_TRUE(system->shutdown().ok());
  }
}

TEST_P(Calls, ChannelsAreBoundOnlyBetweenKernelsThatTalk) {
  mk::Config config = this->config(4);
  config.setup = register_echo;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
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

TEST_P(Calls, ErrorsReachTheCallerAndTheKernelKeepsRunning) {
  mk::Config config = this->config(2);
  config.setup = [](mk::Kernel& k) -> mk::Result<void> {
    if (auto echo = register_echo(k); !echo) return echo;
    return k.handle<mk_test::Throws>(
        [](const mk_test::Throws&) -> EchoReply { throw std::runtime_error("boom"); });
  };
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
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

TEST_P(Calls, CoroutineHandlersMayCallOtherKernels) {
  mk::Config config = this->config(3);
  config.setup = [](mk::Kernel& k) -> mk::Result<void> {
    if (auto echo = register_echo(k); !echo) return echo;
    // Kernel 1 answers Probe by asking kernel 2 and adding one.
    return k.handle<mk_test::Probe>(
        [](const mk_test::Probe&,
           const mk::MessageContext& context) -> mk::Task<mk::Result<mk_test::SleepCount>> {
          auto inner = co_await context.kernel.call(2, Echo{10, context.kernel.id()});
          if (!inner) co_return std::move(inner).error();
          co_return mk_test::SleepCount{inner->value + 1};
        });
  };
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  auto reply = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::Result<mk_test::SleepCount>> {
    co_return co_await k.call(1, mk_test::Probe{0});
  });
  ASSERT_TRUE(reply.ok());
  ASSERT_TRUE(reply->ok()) << reply->error().describe();
  EXPECT_EQ((*reply)->sleeps, 22u);
}

TEST_P(Calls, LargePayloadsSpanSeveralSlots) {
  mk::Config config = this->config(2);
  config.setup = [](mk::Kernel& k) -> mk::Result<void> {
    return k.handle<mk_test::Large>([](const mk_test::Large& large) {
      std::uint64_t sum = 0;
      for (std::size_t i = 0; i < large.bytes.size(); ++i)
        sum += large.bytes[i] * (i + 1);
      return mk_test::Checksum{sum};
    });
  };
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
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

TEST_P(Calls, DuplicateHandlerIsRefused) {
  auto system = mk::test::boot(config(1));
  ASSERT_TRUE(system);
  auto added = system->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<mk::Result<void>>> {
    std::vector<mk::Result<void>> results;
    results.push_back(register_echo(k));
    results.push_back(k.handle<Echo>([](const Echo&) { return EchoReply{}; }));
    co_return results;
  });
  ASSERT_TRUE(added.ok()) << added.error().describe();
  ASSERT_EQ(added->size(), 2u);
  EXPECT_TRUE((*added)[0].ok());
  ASSERT_FALSE((*added)[1].ok());
  EXPECT_EQ((*added)[1].error().code, mk::Errc::already_exists);
}

TEST_P(Calls, TaskExceptionsReachSystemRun) {
  auto system = mk::test::boot(config(1));
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

INSTANTIATE_TEST_SUITE_P(Isolations, Calls, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

// Threads only: a kernel process has no System to call back into.
TEST(CallsOnThreads, BlockingFromAKernelThreadIsRefused) {
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
