// Wake mechanisms: each one wakes sleeping kernels (8 kernels on 2 cores, as threads and, where
// the mechanism allows, as processes); the SKB's choice honours an asserted mechanism and falls
// back from one the OS or the isolation refuses; a refused mechanism is a clear error.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <tuple>

#include "messages.h"
#include "mk/system.h"
#include "runtime/idle_waiter.h"
#include "runtime_test_util.h"

namespace {

using Mechanism = mk::WakeMechanism;

mk::Result<void> register_probe(mk::Kernel& k) {
  return k.handle<mk_test::Probe>([](const mk_test::Probe&, const mk::MessageContext& c) {
    return mk_test::SleepCount{c.kernel.stats().sleeps};
  });
}

class WakeTest : public ::testing::TestWithParam<std::tuple<Mechanism, mk::Isolation>> {};

TEST_P(WakeTest, EveryMechanismWakesSleepingKernels) {
  const auto [mechanism, isolation] = GetParam();
  mk::Config config = mk::test::config_for(8, isolation);
  config.wake_mechanism = mechanism;
  config.setup = register_probe;
  auto booted = mk::System::boot(config);
  if (mechanism == Mechanism::msg_ring && isolation == mk::Isolation::processes) {
    // Refused by the isolation, whatever the OS allows: a clear error, not a silent fallback.
    ASSERT_FALSE(booted.ok());
    EXPECT_EQ(booted.error().code, mk::Errc::unavailable);
    EXPECT_NE(booted.error().message.find("wake_mechanism"), std::string::npos);
    EXPECT_NE(booted.error().message.find("msg_ring"), std::string::npos);
    return;
  }
  if (!booted && booted.error().code == mk::Errc::unavailable) {
    GTEST_SKIP() << booted.error().describe();
  }
  ASSERT_TRUE(booted.ok()) << booted.error().describe();
  auto& system = *booted;
  EXPECT_EQ(system->wake_mechanism(), mechanism);
  std::vector<std::uint64_t> handled_at(system->size(), 0);
  for (int round = 0; round < 5; ++round) {
    for (mk::KernelId target = 1; target < system->size(); ++target) {
      // The target is asleep (it slept since it last handled a Probe)...
      mk::test::wait_until([&] { return system->stats(target)->sleeps > handled_at[target]; });
      const auto slept = system->stats(target)->sleeps;
      // ...and a call from another kernel, itself woken by the hand-over, reaches it.
      auto reply = system->run(
          0,
          [](mk::Kernel& k, mk::KernelId to) -> mk::Task<mk::Result<mk_test::SleepCount>> {
            co_return co_await k.call(to, mk_test::Probe{0});
          },
          target);
      ASSERT_TRUE(reply.ok()) << reply.error().describe();
      ASSERT_TRUE(reply->ok()) << reply->error().describe();
      EXPECT_GE((*reply)->sleeps, slept);
      handled_at[target] = (*reply)->sleeps;
    }
  }
}

std::string name_of(Mechanism mechanism) {
  return std::string(mk::to_string(mechanism));
}

INSTANTIATE_TEST_SUITE_P(Mechanisms, WakeTest,
                         ::testing::Combine(::testing::Values(Mechanism::eventfd, Mechanism::futex,
                                                              Mechanism::msg_ring),
                                            mk::test::kBothIsolations),
                         [](const auto& info) {
                           return name_of(std::get<0>(info.param)) + "_" +
                                  mk::test::isolation_name(std::get<1>(info.param));
                         });

/// The live machine with `mechanism` asserted.
mk::Skb asserting(Mechanism mechanism) {
  auto skb = mk::Skb::discover();
  EXPECT_TRUE(skb.ok());
  const std::string facts = "{\"wake_mechanism\": \"" + name_of(mechanism) + "\"}";
  EXPECT_TRUE(skb->assert_facts_json(facts, "wake.json").ok());
  return *skb;
}

TEST(WakeChoice, TheSkbHonoursAnAssertedMechanism) {
  for (Mechanism mechanism : mk::kWakeMechanisms) {
    if (!mk::runtime::check_wake_mechanism(mechanism, mk::WaitBackend::automatic,
                                           mk::Isolation::threads)) {
      continue;
    }
    mk::Config config = mk::test::config_for(2);
    config.setup = register_probe;
    auto booted = mk::System::boot(config, nullptr, asserting(mechanism));
    ASSERT_TRUE(booted.ok()) << booted.error().describe();
    EXPECT_EQ((*booted)->wake_mechanism(), mechanism) << name_of(mechanism);
    auto reply = (*booted)->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
      co_return (co_await k.call(1, mk_test::Probe{0})).ok();
    });
    ASSERT_TRUE(reply.ok());
    EXPECT_TRUE(*reply);
  }
}

TEST(WakeChoice, AnAssertedMechanismTheIsolationRefusesFallsBack) {
  mk::Config config = mk::test::config_for(2, mk::Isolation::processes);
  config.setup = register_probe;
  auto booted = mk::System::boot(config, nullptr, asserting(Mechanism::msg_ring));
  ASSERT_TRUE(booted.ok()) << booted.error().describe();
  EXPECT_NE((*booted)->wake_mechanism(), Mechanism::msg_ring);
  auto reply = (*booted)->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
    co_return (co_await k.call(1, mk_test::Probe{0})).ok();
  });
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(*reply);
}

TEST(WakeChoice, PollBackendRefusesMsgRingClearly) {
  auto refused = mk::runtime::check_wake_mechanism(Mechanism::msg_ring, mk::WaitBackend::poll,
                                                   mk::Isolation::threads);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, mk::Errc::unavailable);
  EXPECT_NE(refused.error().message.find("msg_ring"), std::string::npos);
  // futex(2) alone cannot watch a kernel process's control descriptor.
  auto unwatched = mk::runtime::check_wake_mechanism(Mechanism::futex, mk::WaitBackend::poll,
                                                     mk::Isolation::processes);
  ASSERT_FALSE(unwatched.ok());
  EXPECT_EQ(unwatched.error().code, mk::Errc::unavailable);
  EXPECT_NE(unwatched.error().message.find("watch"), std::string::npos);
  // Kernels that are threads watch nothing: futex(2) serves them.
  EXPECT_TRUE(mk::runtime::check_wake_mechanism(Mechanism::futex, mk::WaitBackend::poll,
                                                mk::Isolation::threads)
                  .ok());
}

#if defined(__x86_64__)
/// Makes io_uring_setup fail with EPERM in this process from now on, as a seccomp policy does.
bool refuse_io_uring() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

/// In a child whose io_uring the OS refuses: what the test checks, as an exit status.
int without_io_uring() {
  if (!refuse_io_uring()) return 10;
  auto refused = mk::runtime::check_wake_mechanism(Mechanism::msg_ring, mk::WaitBackend::automatic,
                                                   mk::Isolation::threads);
  if (refused || refused.error().code != mk::Errc::unavailable ||
      refused.error().message.find("msg_ring") == std::string::npos ||
      refused.error().message.find("io_uring") == std::string::npos) {
    return 11;
  }
  // Asked for by the config: a clear error.
  mk::Config demanded = mk::test::config_for(2);
  demanded.wake_mechanism = Mechanism::msg_ring;
  auto failed = mk::System::boot(demanded);
  if (failed || failed.error().code != mk::Errc::unavailable) return 12;
  // Asserted in the SKB: the System falls back to a mechanism that works, and kernels wake.
  mk::Config config = mk::test::config_for(2);
  config.setup = register_probe;
  auto booted = mk::System::boot(config, nullptr, asserting(Mechanism::msg_ring));
  if (!booted) return 13;
  if ((*booted)->wake_mechanism() == Mechanism::msg_ring) return 14;
  for (int round = 0; round < 5; ++round) {
    mk::test::wait_until([&] { return (*booted)->stats(1)->sleeps > 0; });
    auto reply = (*booted)->run(0, [](mk::Kernel& k) -> mk::Task<bool> {
      co_return (co_await k.call(1, mk_test::Probe{0})).ok();
    });
    if (!reply || !*reply) return 15;
  }
  return 0;
}

TEST(WakeChoice, AMechanismTheOsRefusesIsAClearErrorAndTheSkbFallsBack) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(without_io_uring());
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see without_io_uring for what the status means";
}
#endif

}  // namespace
