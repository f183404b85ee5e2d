// The executor seam: the same kernels driven one turn at a time on a virtual clock, as the
// simulator will, with no thread and no real waiting.
// Single-mode: a simulated executor drives kernels on the test's thread, which only
// Isolation::threads allows.
#include "mk/executor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "messages.h"
#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

using namespace std::chrono_literals;

class VirtualClock final : public mk::Clock {
 public:
  mk::Instant now() const noexcept override { return now_; }
  void set(mk::Instant when) { now_ = when; }

 private:
  mk::Instant now_{};
};

class CountingNotifier final : public mk::Notifier {
 public:
  void notify() noexcept override { ++count; }
  int count = 0;
};

/// Runs every kernel on the calling thread, a turn at a time.
class SteppedExecutor final : public mk::Executor {
 public:
  const mk::Clock& clock() const noexcept override { return clock_; }
  mk::Result<void> start(std::span<mk::Kernel* const> kernels) override {
    kernels_.assign(kernels.begin(), kernels.end());
    notifiers_.resize(kernels_.size());
    for (std::size_t i = 0; i < kernels_.size(); ++i)
      kernels_[i]->set_notifier(notifiers_[i]);
    return {};
  }
  void join() override {
    bool running = true;
    while (running) {
      running = false;
      for (mk::Kernel* k : kernels_) {
        if (!k->stopped()) {
          k->run_turn();
          running = true;
        }
      }
    }
  }

  /// Runs turns until no kernel has anything to do at the current virtual time.
  void run_until_idle() {
    bool worked = true;
    while (worked) {
      worked = false;
      for (mk::Kernel* k : kernels_)
        worked |= k->run_turn();
    }
  }
  /// Jumps the clock to the earliest timer of any kernel; false when none is pending.
  bool advance_to_next_timer() {
    std::optional<mk::Instant> next;
    for (mk::Kernel* k : kernels_) {
      auto d = k->next_deadline();
      if (d && (!next || *d < *next)) next = d;
    }
    if (!next) return false;
    clock_.set(*next);
    return true;
  }

  VirtualClock clock_;
  std::vector<mk::Kernel*> kernels_;
  std::vector<CountingNotifier> notifiers_;
};

TEST(Executor, KernelsRunOneTurnAtATimeOnVirtualTime) {
  auto owned = std::make_unique<SteppedExecutor>();
  SteppedExecutor& executor = *owned;
  auto booted = mk::System::boot(mk::test::config_for(2), std::move(owned));
  ASSERT_TRUE(booted.ok()) << booted.error().describe();
  auto& system = *booted;

  std::vector<std::string> events;  // Everything runs on this thread.
  ASSERT_TRUE(system
                  ->spawn(1,
                          [&events](mk::Kernel& k) -> mk::Task<void> {
                            auto added = k.handle<mk_test::Echo>([&events](const mk_test::Echo& e) {
                              events.push_back("echo");
                              return mk_test::EchoReply{e.value + 1, e.caller, 1};
                            });
                            EXPECT_TRUE(added.ok());
                            co_return;
                          })
                  .ok());
  ASSERT_TRUE(system
                  ->spawn(0,
                          [&events](mk::Kernel& k) -> mk::Task<void> {
                            const mk::Instant start = k.now();
                            co_await k.sleep_for(1h);
                            events.push_back(k.now() - start >= 1h ? "woke after an hour"
                                                                   : "woke early");
                            auto reply = co_await k.call(1, mk_test::Echo{41, k.id()});
                            events.push_back(reply.ok() && reply->value == 42 ? "reply" : "bad");
                            auto late = co_await k.call(1, mk_test::Silent{0}, 5s);
                            events.push_back(!late.ok() && late.error().code == mk::Errc::no_handler
                                                 ? "no_handler"
                                                 : "bad");
                          })
                  .ok());
  executor.run_until_idle();
  EXPECT_TRUE(events.empty());  // Waiting for an hour of virtual time.
  ASSERT_TRUE(executor.advance_to_next_timer());
  executor.run_until_idle();
  EXPECT_EQ(events,
            (std::vector<std::string>{"woke after an hour", "echo", "reply", "no_handler"}));
  EXPECT_TRUE(system->shutdown().ok());
}

TEST(Executor, WorkForASleepingKernelNotifiesIt) {
  auto owned = std::make_unique<SteppedExecutor>();
  SteppedExecutor& executor = *owned;
  auto booted = mk::System::boot(mk::test::config_for(2), std::move(owned));
  ASSERT_TRUE(booted.ok()) << booted.error().describe();
  auto& system = *booted;
  executor.run_until_idle();
  mk::Kernel& k1 = *executor.kernels_[1];
  ASSERT_TRUE(k1.prepare_to_sleep());  // Nothing to do: it may sleep.
  EXPECT_EQ(executor.notifiers_[1].count, 0);
  bool ran = false;
  ASSERT_TRUE(system
                  ->spawn(1,
                          [&ran](mk::Kernel&) -> mk::Task<void> {
                            ran = true;
                            co_return;
                          })
                  .ok());
  EXPECT_EQ(executor.notifiers_[1].count, 1);  // The doorbell saw it asleep.
  k1.end_sleep();
  EXPECT_FALSE(k1.prepare_to_sleep());  // Work is waiting: the re-check refuses to sleep.
  k1.end_sleep();
  executor.run_until_idle();
  EXPECT_TRUE(ran);
  EXPECT_EQ(k1.stats().sleeps, 1u);
  EXPECT_TRUE(system->shutdown().ok());
}

}  // namespace
