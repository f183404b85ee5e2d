// Isolation::processes: a killed kernel process is a failed kernel and takes nothing else
// down; boots leave nothing behind; what may cross into a kernel process, and what is refused
// and why. Tests of behaviour both isolations share run in both.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "messages.h"
#include "mk/codec.h"
#include "mk/kernel.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace process_test {

using namespace std::chrono_literals;
using mk::test::code_of;
using mk::test::kSucceeded;
using mk_test::AwaitFailure;
using mk_test::Echo;
using mk_test::EchoReply;
using mk_test::register_echo;

constexpr auto kProcesses = mk::Isolation::processes;

/// Keys of what spawned tasks record on their kernels.
constexpr std::uint32_t kWatcher = 1;
constexpr std::uint32_t kCaller = 2;

/// Echo, and AwaitFailure.
mk::Result<void> register_handlers(mk::Kernel& kernel) {
  if (auto echo = register_echo(kernel); !echo) return echo;
  return mk_test::register_await_failure(kernel);
}

/// How a call to `to` from kernel `from` ends: kSucceeded or its Errc.
std::int64_t call_code(mk::System& system, mk::KernelId from, mk::KernelId to) {
  auto code = system.run(
      from,
      [](mk::Kernel& k, mk::KernelId peer) -> mk::Task<std::int64_t> {
        co_return code_of(co_await k.call(peer, Echo{peer, k.id()}));
      },
      to);
  EXPECT_TRUE(code.ok()) << code.error().describe();
  return code.ok() ? *code : code_of(mk::Errc::internal);
}

/// True when this process has no child, running or unreaped.
bool no_children() {
  int status = 0;
  return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

/// True while a process `pid` exists (running or unreaped).
bool process_exists(int pid) {
  return ::kill(pid, 0) == 0 || errno != ESRCH;
}

std::size_t count_entries(const char* directory) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(directory))
    ++count;
  return count;
}

/// Mappings of channel memory in this process.
std::size_t ring_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::size_t count = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find("memfd:") != std::string::npos || line.find("mk-ring") != std::string::npos) {
      ++count;
    }
  }
  return count;
}

TEST(Processes, AKilledKernelProcessIsAFailedKernel) {
  // Made before boot, so that the kernel processes map it too.
  mk::test::Shared<std::atomic<bool>> started;
  mk::Config config = mk::test::config_for(4, kProcesses);
  config.setup = register_handlers;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  auto pid = system->pid_of(1);
  ASSERT_TRUE(pid.ok()) << pid.error().describe();
  EXPECT_NE(*pid, ::getpid());

  // Kernel 2 waits in until_failed(1); kernel 0 waits on a call kernel 1 answers only once
  // kernel 3 has failed, which it never does.
  ASSERT_TRUE(system
                  ->spawn(2,
                          [](mk::Kernel& k) -> mk::Task<void> {
                            mk::test::record(k, kWatcher, code_of(co_await k.until_failed(1)));
                          })
                  .ok());
  ASSERT_TRUE(system
                  ->spawn(0,
                          [](mk::Kernel& k) -> mk::Task<void> {
                            auto reply = co_await k.call(1, AwaitFailure{3});
                            mk::test::record(k, kCaller, code_of(reply));
                          })
                  .ok());
  // Both wait before the kill: kernel 1 has the call, and kernel 2's watcher started before
  // the run queued behind it.
  mk::test::wait_until([&] { return system->stats(1)->messages_received >= 1; });
  ASSERT_TRUE(system->run(2, [](mk::Kernel&) -> mk::Task<void> { co_return; }).ok());
  // And a System::run blocks on a task of kernel 1 that has started (it says so in `started`)
  // and would sleep for a day.
  std::optional<mk::Result<int>> blocked;  // Written by `waiter`, read after joining it.
  std::thread waiter([&] {
    blocked = system->run(
        1,
        [](mk::Kernel& k, std::atomic<bool>* flag) -> mk::Task<int> {
          flag->store(true);
          co_await k.sleep_for(24h);
          co_return 0;
        },
        started.get());
  });
  // Should an assertion end the test early, shutdown releases the waiter before it is joined.
  struct JoinAfterShutdown {
    mk::System& system;
    std::thread& thread;
    ~JoinAfterShutdown() {
      if (!thread.joinable()) return;
      (void)system.shutdown();
      thread.join();
    }
  } join_after_shutdown{*system, waiter};
  mk::test::wait_until([&] { return started->load(); });
  EXPECT_FALSE(system->has_failed(1));

  ASSERT_EQ(::kill(*pid, SIGKILL), 0);
  ASSERT_TRUE(system->wait_until_failed(1, 60s).ok());
  EXPECT_TRUE(system->has_failed(1));
  EXPECT_FALSE(system->is_online(1));
  waiter.join();
  ASSERT_TRUE(blocked.has_value());
  ASSERT_FALSE(blocked->ok());
  EXPECT_EQ(blocked->error().code, mk::Errc::closed) << blocked->error().describe();

  auto watcher = mk::test::collect(*system, 2, kWatcher);
  ASSERT_TRUE(watcher.ok()) << watcher.error().describe();
  EXPECT_EQ(*watcher, kSucceeded);
  auto caller = mk::test::collect(*system, 0, kCaller);
  ASSERT_TRUE(caller.ok()) << caller.error().describe();
  EXPECT_EQ(*caller, code_of(mk::Errc::closed));

  // Every survivor fails calls and sends to it at once, and knows it failed.
  for (mk::KernelId from : {0u, 2u, 3u}) {
    EXPECT_EQ(call_code(*system, from, 1), code_of(mk::Errc::closed)) << "from " << from;
    auto seen = system->run(from, [](mk::Kernel& k) -> mk::Task<std::vector<std::int64_t>> {
      std::vector<std::int64_t> seen{k.has_failed(1) ? 1 : 0, k.is_online(1) ? 1 : 0};
      seen.push_back(code_of(co_await k.send(1, Echo{0, k.id()})));
      co_return seen;
    });
    ASSERT_TRUE(seen.ok()) << seen.error().describe();
    EXPECT_EQ(*seen, (std::vector<std::int64_t>{1, 0, code_of(mk::Errc::closed)}))
        << "from " << from;
  }
  // The survivors serve each other.
  for (mk::KernelId from : {0u, 2u, 3u}) {
    for (mk::KernelId to : {0u, 2u, 3u})
      EXPECT_EQ(call_code(*system, from, to), kSucceeded) << from << " -> " << to;
  }
  auto run_on_dead = system->run(1, [](mk::Kernel&) -> mk::Task<void> { co_return; });
  ASSERT_FALSE(run_on_dead.ok());
  EXPECT_EQ(run_on_dead.error().code, mk::Errc::not_found);

  EXPECT_TRUE(system->shutdown().ok());
  EXPECT_TRUE(no_children());
}

TEST(Processes, AKernelProcessThatDiesWhileStartingFailsBootOrAddKernel) {
  mk::Config config = mk::test::config_for(2, kProcesses);
  config.kernels_per_core = 3;
  // Kernel 1's process dies inside setup, as a crash would end it.
  config.setup = [](mk::Kernel& k) -> mk::Result<void> {
    if (k.id() == 1) ::raise(SIGKILL);
    return register_echo(k);
  };
  auto refused = mk::System::boot(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, mk::Errc::io_error);
  EXPECT_NE(refused.error().message.find("kernel 1"), std::string::npos) << refused.error().message;
  EXPECT_TRUE(no_children());

  // Booted with kernel 0 alone, kernel 1 dies as add_kernel starts it: a failed kernel.
  config.cores.resize(1);
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  auto added = system->add_kernel(config.cores.front());
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().code, mk::Errc::io_error);
  EXPECT_TRUE(system->has_failed(1));
  auto until = system->run(0, [](mk::Kernel& k) -> mk::Task<std::int64_t> {
    co_return code_of(co_await k.until_failed(1));
  });
  ASSERT_TRUE(until.ok()) << until.error().describe();
  EXPECT_EQ(*until, kSucceeded);
  // The next one starts.
  auto next = system->add_kernel(config.cores.front());
  ASSERT_TRUE(next.ok()) << next.error().describe();
  EXPECT_EQ(call_code(*system, 0, *next), kSucceeded);
  EXPECT_EQ(call_code(*system, *next, 0), kSucceeded);
  EXPECT_TRUE(system->shutdown().ok());
  EXPECT_TRUE(no_children());
}

/// What one boot leaves behind, if anything: this process's descriptors, channel mappings,
/// threads and children.
struct Footprint {
  std::size_t fds = count_entries("/proc/self/fd");
  std::size_t rings = ring_mappings();
  std::size_t threads = count_entries("/proc/self/task");
};

class Leaks : public mk::test::BothIsolations {};

TEST_P(Leaks, AHundredBootsLeaveNothingBehind) {
  mk::Config config = this->config(2);
  config.setup = register_echo;
  // One boot first: what the program opens once and keeps (the SKB's first discovery) is
  // no leak.
  mk::test::boot(config).reset();
  const Footprint before;
  for (int boot = 0; boot < 100; ++boot) {
    auto system = mk::test::boot(config);
    ASSERT_TRUE(system);
    // Both channels are bound, so that their memory exists to be freed.
    ASSERT_EQ(call_code(*system, 0, 1), kSucceeded);
    ASSERT_TRUE(system->shutdown().ok());
  }
  const Footprint after;
  EXPECT_EQ(after.fds, before.fds);
  EXPECT_EQ(after.rings, before.rings);
  EXPECT_EQ(after.threads, before.threads);
  EXPECT_TRUE(no_children());
}

TEST_P(Leaks, BootsRefusedBySetupLeaveNothingBehind) {
  mk::Config config = this->config(3);
  config.setup = [](mk::Kernel& k) -> mk::Result<void> {
    if (k.id() == 2) return mk::error(mk::Errc::conflict, "kernel two refuses");
    return register_echo(k);
  };
  ASSERT_FALSE(mk::System::boot(config).ok());
  const Footprint before;
  for (int boot = 0; boot < 20; ++boot) {
    auto refused = mk::System::boot(config);
    ASSERT_FALSE(refused.ok());
    ASSERT_EQ(refused.error().code, mk::Errc::conflict);
  }
  const Footprint after;
  EXPECT_EQ(after.fds, before.fds);
  EXPECT_EQ(after.rings, before.rings);
  EXPECT_EQ(after.threads, before.threads);
  EXPECT_TRUE(no_children());
}

INSTANTIATE_TEST_SUITE_P(Isolations, Leaks, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

TEST(Processes, AHundredBootsWithAKilledKernelLeaveNothingBehind) {
  mk::Config config = mk::test::config_for(3, kProcesses);
  config.setup = register_echo;
  mk::test::boot(config).reset();
  const Footprint before;
  for (int boot = 0; boot < 100; ++boot) {
    auto system = mk::test::boot(config);
    ASSERT_TRUE(system);
    ASSERT_EQ(call_code(*system, 0, 1), kSucceeded);
    ASSERT_EQ(call_code(*system, 2, 1), kSucceeded);
    ASSERT_EQ(::kill(system->pid_of(1).value(), SIGKILL), 0);
    ASSERT_TRUE(system->wait_until_failed(1, 60s).ok());
    ASSERT_EQ(call_code(*system, 0, 2), kSucceeded);
    ASSERT_TRUE(system->shutdown().ok());
  }
  const Footprint after;
  EXPECT_EQ(after.fds, before.fds);
  EXPECT_EQ(after.rings, before.rings);
  EXPECT_EQ(after.threads, before.threads);
  EXPECT_TRUE(no_children());
}

TEST(Processes, BootAndAddKernelAreRefusedWhileAnotherThreadRuns) {
  std::mutex mutex;
  std::condition_variable released;
  bool release = false;
  auto hold_a_thread = [&] {
    return std::thread([&] {
      std::unique_lock lock(mutex);
      released.wait(lock, [&] { return release; });
    });
  };
  auto let_go = [&](std::thread& thread) {
    {
      std::lock_guard lock(mutex);
      release = true;
    }
    released.notify_all();
    thread.join();
    release = false;
  };

  std::thread other = hold_a_thread();
  auto refused = mk::System::boot(mk::test::config_for(2, kProcesses));
  let_go(other);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("single thread"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(no_children());

  // Once the thread is joined, boot goes ahead; add_kernel follows the same rule.
  mk::Config config = mk::test::config_for(2, kProcesses);
  config.kernels_per_core = 3;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  other = hold_a_thread();
  auto added = system->add_kernel(system->core_of(0).value());
  let_go(other);
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().code, mk::Errc::invalid_argument);
  EXPECT_EQ(system->size(), 2u);
  auto later = system->add_kernel(system->core_of(0).value());
  ASSERT_TRUE(later.ok()) << later.error().describe();
  EXPECT_EQ(*later, 2u);
}

TEST(Processes, AKernelTakenOfflineEndsItsProcessAndAnAddedOneTalksBothWays) {
  mk::Config config = mk::test::config_for(3, kProcesses);
  config.kernels_per_core = 3;
  config.setup = register_handlers;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  const int removed_pid = system->pid_of(2).value();
  // A call waiting on kernel 2 when it goes: it answers only once kernel 1 fails.
  ASSERT_TRUE(system
                  ->spawn(0,
                          [](mk::Kernel& k) -> mk::Task<void> {
                            auto reply = co_await k.call(2, AwaitFailure{1});
                            mk::test::record(k, kCaller, code_of(reply));
                          })
                  .ok());
  mk::test::wait_until([&] { return system->stats(2)->messages_received >= 1; });

  ASSERT_TRUE(system->remove_kernel(2).ok());
  EXPECT_FALSE(process_exists(removed_pid));
  EXPECT_FALSE(system->is_online(2));
  EXPECT_FALSE(system->has_failed(2));
  auto caller = mk::test::collect(*system, 0, kCaller);
  ASSERT_TRUE(caller.ok()) << caller.error().describe();
  EXPECT_EQ(*caller, code_of(mk::Errc::closed));
  for (mk::KernelId from : {0u, 1u})
    EXPECT_EQ(call_code(*system, from, 2), code_of(mk::Errc::closed)) << "from " << from;

  auto added = system->add_kernel(system->core_of(1).value());
  ASSERT_TRUE(added.ok()) << added.error().describe();
  EXPECT_EQ(*added, 3u);
  const int added_pid = system->pid_of(3).value();
  EXPECT_TRUE(process_exists(added_pid));
  EXPECT_NE(added_pid, ::getpid());
  for (mk::KernelId other : {0u, 1u}) {
    EXPECT_EQ(call_code(*system, 3, other), kSucceeded) << "3 -> " << other;
    EXPECT_EQ(call_code(*system, other, 3), kSucceeded) << other << " -> 3";
  }
  EXPECT_EQ(call_code(*system, 3, 2), code_of(mk::Errc::closed));
  auto where = system->run(3, [](mk::Kernel&) -> mk::Task<int> { co_return ::getpid(); });
  ASSERT_TRUE(where.ok());
  EXPECT_EQ(*where, added_pid);

  EXPECT_TRUE(system->shutdown().ok());
  EXPECT_FALSE(process_exists(added_pid));
  EXPECT_TRUE(no_children());
}

class Concurrency : public mk::test::BothIsolations {};

TEST_P(Concurrency, RunsFromSeveralThreadsAtOnceAllComeBack) {
  constexpr int kThreads = 4;
  constexpr int kRuns = 200;
  mk::Config config = this->config(3);
  config.setup = register_echo;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  // Threads of the test's own, started after boot; each counts the runs that came back right.
  std::vector<int> right(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&system, &right, t] {
      for (int i = 0; i < kRuns; ++i) {
        const auto from = static_cast<mk::KernelId>((t + i) % 3);
        const auto to = static_cast<mk::KernelId>((t + i + 1) % 3);
        const std::uint64_t value = static_cast<std::uint64_t>(t) * 100000 + i;
        auto reply = system->run(
            from,
            [](mk::Kernel& k, mk::KernelId peer, std::uint64_t v) -> mk::Task<std::uint64_t> {
              auto echoed = co_await k.call(peer, Echo{v, k.id()});
              co_return echoed ? echoed->value : 0;
            },
            to, value);
        if (reply && *reply == value * 2 + 1) ++right[t];
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(right[t], kRuns) << "thread " << t;
}

INSTANTIATE_TEST_SUITE_P(Isolations, Concurrency, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

class Setup : public mk::test::BothIsolations {};

TEST_P(Setup, AnErrorFailsBootWithThatError) {
  mk::Config config = this->config(3);
  config.setup = [](mk::Kernel& k) -> mk::Result<void> {
    if (k.id() == 1) return mk::error(mk::Errc::conflict, "no room on kernel one");
    return register_echo(k);
  };
  auto refused = mk::System::boot(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, mk::Errc::conflict);
  EXPECT_NE(refused.error().message.find("no room on kernel one"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("kernel 1"), std::string::npos) << refused.error().message;
  EXPECT_TRUE(no_children());
}

TEST_P(Setup, AnExceptionFailsBootWithItsText) {
  mk::Config config = this->config(2);
  config.setup = [](mk::Kernel&) -> mk::Result<void> { throw std::runtime_error("setup broke"); };
  auto refused = mk::System::boot(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, mk::Errc::handler_failed);
  EXPECT_NE(refused.error().message.find("setup broke"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(no_children());
}

TEST_P(Setup, AddKernelRunsItOnTheNewKernelAndFailsWithItsError) {
  auto skb = mk::Skb::discover();
  ASSERT_TRUE(skb.ok());
  mk::Config config;
  config.cores = {skb->usable_cores().front()};
  config.kernels_per_core = 3;
  config.isolation = isolation();
  // Kernel 1 refuses to start; the others answer Echo.
  config.setup = [](mk::Kernel& k) -> mk::Result<void> {
    if (k.id() == 1) return mk::error(mk::Errc::conflict, "kernel one stays out");
    return register_echo(k);
  };
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  const mk::CoreId core = skb->usable_cores().back();

  auto refused = system->add_kernel(core);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, mk::Errc::conflict);
  EXPECT_NE(refused.error().message.find("kernel one stays out"), std::string::npos)
      << refused.error().message;
  EXPECT_FALSE(system->is_online(1));
  // It never served: it is offline, not failed, to the System and to the other kernels.
  EXPECT_FALSE(system->has_failed(1));
  auto waited = system->wait_until_failed(1, 10s);
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.error().code, mk::Errc::closed);
  EXPECT_EQ(call_code(*system, 0, 1), code_of(mk::Errc::closed));
  auto seen = system->run(0, [](mk::Kernel& k) -> mk::Task<std::vector<std::int64_t>> {
    std::vector<std::int64_t> seen{k.has_failed(1) ? 1 : 0, k.is_online(1) ? 1 : 0};
    seen.push_back(code_of(co_await k.until_failed(1)));
    co_return seen;
  });
  ASSERT_TRUE(seen.ok()) << seen.error().describe();
  EXPECT_EQ(*seen, (std::vector<std::int64_t>{0, 0, code_of(mk::Errc::closed)}));

  // Its id stays taken; the next kernel gets setup's handlers and talks both ways.
  auto added = system->add_kernel(core);
  ASSERT_TRUE(added.ok()) << added.error().describe();
  EXPECT_EQ(*added, 2u);
  EXPECT_EQ(call_code(*system, 0, 2), kSucceeded);
  EXPECT_EQ(call_code(*system, 2, 0), kSucceeded);
  EXPECT_TRUE(system->shutdown().ok());
  EXPECT_TRUE(no_children());
}

INSTANTIATE_TEST_SUITE_P(Isolations, Setup, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

/// Has no Codec: not trivially copyable, and mk::Codec is not specialised for it.
struct NoCodec {
  std::string text;
};

class Crossing : public mk::test::BothIsolations {};

TEST_P(Crossing, CapturesAndValuesWithoutACodecRunOnlyOnThreads) {
  auto system = mk::test::boot(config(1));
  ASSERT_TRUE(system);
  const int captured = 7;
  auto capturing = system->run(0, [captured](mk::Kernel&) -> mk::Task<int> { co_return captured; });
  auto argument = system->run(
      0, [](mk::Kernel&, NoCodec value) -> mk::Task<std::size_t> { co_return value.text.size(); },
      NoCodec{"abc"});
  auto value = system->run(0, [](mk::Kernel&) -> mk::Task<NoCodec> { co_return NoCodec{"x"}; });
  auto spawned = system->spawn(0, [captured](mk::Kernel&) -> mk::Task<void> {
    (void)captured;
    co_return;
  });
  auto each = system->for_each_kernel([captured](mk::Kernel&) { (void)captured; });
  if (isolation() == mk::Isolation::threads) {
    ASSERT_TRUE(capturing.ok());
    EXPECT_EQ(*capturing, 7);
    ASSERT_TRUE(argument.ok());
    EXPECT_EQ(*argument, 3u);
    ASSERT_TRUE(value.ok());
    EXPECT_EQ(value->text, "x");
    EXPECT_TRUE(spawned.ok());
    EXPECT_TRUE(each.ok());
    return;
  }
  for (const mk::Error* refused :
       {&capturing.error(), &spawned.error(), &each.error(), &argument.error(), &value.error()}) {
    EXPECT_EQ(refused->code, mk::Errc::invalid_argument) << refused->describe();
  }
  EXPECT_NE(capturing.error().message.find("captures"), std::string::npos)
      << capturing.error().message;
  EXPECT_NE(spawned.error().message.find("captures"), std::string::npos) << spawned.error().message;
  EXPECT_NE(each.error().message.find("captures"), std::string::npos) << each.error().message;
  EXPECT_NE(argument.error().message.find("argument type has no mk::Codec"), std::string::npos)
      << argument.error().message;
  EXPECT_NE(value.error().message.find("value type has no mk::Codec"), std::string::npos)
      << value.error().message;
}

TEST_P(Crossing, EveryCodecKindRoundTripsThroughRun) {
  auto system = mk::test::boot(config(2));
  ASSERT_TRUE(system);

  auto text = system->run(
      1,
      [](mk::Kernel& k, std::string in) -> mk::Task<std::string> {
        co_return in + " on kernel " + std::to_string(k.id());
      },
      std::string("text"));
  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_EQ(*text, "text on kernel 1");

  auto empty = system->run(
      1, [](mk::Kernel&, std::string in) -> mk::Task<std::string> { co_return in; }, std::string());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");

  auto numbers = system->run(
      1,
      [](mk::Kernel&, std::vector<std::uint32_t> in) -> mk::Task<std::vector<std::uint32_t>> {
        for (auto& n : in)
          n *= 2;
        in.push_back(0);
        co_return in;
      },
      std::vector<std::uint32_t>{1, 2, 3});
  ASSERT_TRUE(numbers.ok()) << numbers.error().describe();
  EXPECT_EQ(*numbers, (std::vector<std::uint32_t>{2, 4, 6, 0}));

  auto words = system->run(
      1,
      [](mk::Kernel&, std::vector<std::string> in) -> mk::Task<std::vector<std::string>> {
        in.emplace_back();
        in.push_back("last");
        co_return in;
      },
      std::vector<std::string>{"a", "", "bc"});
  ASSERT_TRUE(words.ok()) << words.error().describe();
  EXPECT_EQ(*words, (std::vector<std::string>{"a", "", "bc", "", "last"}));

  using MaybeText = std::optional<std::string>;
  auto present = system->run(
      1,
      [](mk::Kernel&, MaybeText in) -> mk::Task<MaybeText> {
        co_return in ? MaybeText(*in + "!") : MaybeText();
      },
      MaybeText("here"));
  ASSERT_TRUE(present.ok()) << present.error().describe();
  EXPECT_EQ(*present, MaybeText("here!"));
  auto absent = system->run(
      1,
      [](mk::Kernel&, MaybeText in) -> mk::Task<MaybeText> {
        co_return in ? MaybeText(*in + "!") : MaybeText();
      },
      MaybeText());
  ASSERT_TRUE(absent.ok()) << absent.error().describe();
  EXPECT_EQ(*absent, MaybeText());

  using Count = mk::Result<std::uint64_t>;
  auto failed = system->run(
      1,
      [](mk::Kernel&, Count in) -> mk::Task<mk::Result<std::string>> {
        if (in) co_return std::to_string(*in);
        co_return mk::error(in.error().code, "kernel saw: " + in.error().message);
      },
      Count(mk::error(mk::Errc::conflict, "lost the race")));
  ASSERT_TRUE(failed.ok()) << failed.error().describe();
  ASSERT_FALSE(failed->ok());
  EXPECT_EQ(failed->error().code, mk::Errc::conflict);
  EXPECT_EQ(failed->error().message, "kernel saw: lost the race");
  auto counted = system->run(
      1,
      [](mk::Kernel&, Count in) -> mk::Task<mk::Result<std::string>> {
        if (in) co_return std::to_string(*in);
        co_return mk::error(in.error().code, in.error().message);
      },
      Count(42));
  ASSERT_TRUE(counted.ok()) << counted.error().describe();
  ASSERT_TRUE(counted->ok());
  EXPECT_EQ(counted->value(), "42");

  auto nothing = system->run(
      1,
      [](mk::Kernel&, mk::Result<void> in) -> mk::Task<mk::Result<void>> {
        if (in) co_return mk::error(mk::Errc::internal, "expected an error");
        co_return mk::error(mk::Errc::timed_out, in.error().message + " twice");
      },
      mk::Result<void>(mk::error(mk::Errc::io_error, "disk")));
  ASSERT_TRUE(nothing.ok()) << nothing.error().describe();
  ASSERT_FALSE(nothing->ok());
  EXPECT_EQ(nothing->error().code, mk::Errc::timed_out);
  EXPECT_EQ(nothing->error().message, "disk twice");

  // Several arguments of different kinds, in order.
  auto mixed = system->run(
      1,
      [](mk::Kernel&, std::string a, std::uint16_t b, std::vector<std::string> c,
         MaybeText d) -> mk::Task<std::string> {
        std::string joined = a + "|" + std::to_string(b);
        for (const auto& each : c)
          joined += "|" + each;
        co_return joined + "|" + d.value_or("none");
      },
      std::string("x"), std::uint16_t{9}, std::vector<std::string>{"y", "z"}, MaybeText());
  ASSERT_TRUE(mixed.ok()) << mixed.error().describe();
  EXPECT_EQ(*mixed, "x|9|y|z|none");

  // The task ran in the kernel's process, not in the test's.
  auto where = system->run(1, [](mk::Kernel&) -> mk::Task<int> { co_return ::getpid(); });
  ASSERT_TRUE(where.ok());
  if (isolation() == mk::Isolation::processes) {
    EXPECT_EQ(*where, system->pid_of(1).value());
    EXPECT_NE(*where, ::getpid());
  } else {
    EXPECT_EQ(*where, ::getpid());
    EXPECT_EQ(system->pid_of(1).error().code, mk::Errc::unavailable);
  }
}

INSTANTIATE_TEST_SUITE_P(Isolations, Crossing, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

TEST(Processes, ArgumentsAndValuesOverTheControlLimitAreRefused) {
  auto system = mk::test::boot(mk::test::config_for(1, kProcesses));
  ASSERT_TRUE(system);
  const std::string big(100 * 1024, 'x');
  auto argument = system->run(
      0, [](mk::Kernel&, std::string in) -> mk::Task<std::size_t> { co_return in.size(); }, big);
  ASSERT_FALSE(argument.ok());
  EXPECT_EQ(argument.error().code, mk::Errc::too_large);
  auto value = system->run(
      0,
      [](mk::Kernel&, std::size_t size) -> mk::Task<std::string> {
        co_return std::string(size, 'y');
      },
      big.size());
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.error().code, mk::Errc::too_large);
  // The kernel serves on.
  auto after = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::KernelId> { co_return k.id(); });
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, 0u);
}

TEST(Processes, AStallTimeoutIsRefusedNotIgnored) {
  mk::Config config = mk::test::config_for(2, kProcesses);
  config.stall_timeout = 50ms;
  auto refused = mk::System::boot(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("stall_timeout"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(no_children());
}

TEST(Processes, BootOnAGivenExecutorIsRefused) {
  class NoExecutor final : public mk::Executor {
   public:
    const mk::Clock& clock() const noexcept override { return clock_; }
    mk::Result<void> start(std::span<mk::Kernel* const>) override { return {}; }
    void join() override {}

   private:
    mk::SteadyClock clock_;
  };
  auto refused =
      mk::System::boot(mk::test::config_for(2, kProcesses), std::make_unique<NoExecutor>());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, mk::Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("isolation"), std::string::npos);
}

}  // namespace process_test
