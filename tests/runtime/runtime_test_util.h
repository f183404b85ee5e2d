// Helpers shared by the runtime tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <type_traits>

#include "mk/config.h"
#include "mk/kernel.h"
#include "mk/skb.h"
#include "mk/system.h"
#include "mk/task.h"

namespace mk::test {

/// A config for `kernels` kernels on the usable cores, sharing cores when there are fewer
/// cores than kernels (as on the 2-core build host).
inline Config config_for(std::size_t kernels, Isolation isolation = Isolation::threads) {
  auto skb = Skb::discover();
  EXPECT_TRUE(skb.ok());
  const auto& usable = skb->usable_cores();
  Config config;
  for (std::size_t i = 0; i < kernels; ++i)
    config.cores.push_back(usable[i % usable.size()]);
  config.kernels_per_core = (kernels + usable.size() - 1) / usable.size();
  config.isolation = isolation;
  return config;
}

/// Boots or fails the test.
inline std::unique_ptr<System> boot(Config config) {
  auto system = System::boot(std::move(config));
  EXPECT_TRUE(system.ok()) << (system.ok() ? "" : system.error().describe());
  return system.ok() ? std::move(*system) : nullptr;
}

/// Waits (sleeping, never spinning) until `done()` holds.
template <class F>
void wait_until(F done) {
  while (!done())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

/// "threads" or "processes".
inline std::string isolation_name(Isolation isolation) {
  return isolation == Isolation::processes ? "processes" : "threads";
}

/// Both isolations, for INSTANTIATE_TEST_SUITE_P(Isolations, Suite, kBothIsolations, ...).
inline const auto kBothIsolations = ::testing::Values(Isolation::threads, Isolation::processes);

/// Names a test instance by its isolation.
inline std::string isolation_param_name(const ::testing::TestParamInfo<Isolation>& info) {
  return isolation_name(info.param);
}

/// A test run once with kernels as threads and once with kernels as processes. What a test
/// checks must reach it as the value of a System::run (or through a Shared): a kernel process
/// writes only its own copy of the test's memory.
class BothIsolations : public ::testing::TestWithParam<Isolation> {
 protected:
  Isolation isolation() const { return GetParam(); }
  /// config_for(kernels) in this test's isolation.
  Config config(std::size_t kernels) const { return config_for(kernels, GetParam()); }
};

/// A T that kernels share with the test in either isolation: it lives in memory mapped
/// MAP_SHARED, which kernel processes forked afterwards map too. Make it before boot: a kernel
/// process forked earlier does not have it. Only for what cannot come back as a task's value:
/// the state of a kernel held inside a handler, or what a kernel does while it shuts down.
/// Hand get() to tasks as an argument (a pointer has a Codec). A failed mmap throws, which
/// gtest reports as the test's failure.
template <class T>
requires std::is_trivially_destructible_v<T>
class Shared {
 public:
  Shared() {
    void* memory =
        ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::bad_alloc();
    value_ = new (memory) T();
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  ~Shared() { ::munmap(value_, sizeof(T)); }

  T* get() const noexcept { return value_; }
  T* operator->() const noexcept { return value_; }
  T& operator*() const noexcept { return *value_; }

 private:
  T* value_ = nullptr;
};

/// What a task records of how an operation ended: kSucceeded, or the error's Errc.
inline constexpr std::int64_t kSucceeded = -1;

/// kSucceeded for a result that holds a value, else its error's Errc as a number.
template <class R>
std::int64_t code_of(const R& result) {
  return result ? kSucceeded : static_cast<std::int64_t>(result.error().code);
}

/// `code` as code_of gives it.
inline std::int64_t code_of(Errc code) {
  return static_cast<std::int64_t>(code);
}

/// Values that tasks spawned on a kernel leave there, by key, for a later run to collect: how
/// a test learns what a task it did not wait for observed, in either isolation.
struct Outcomes {
  explicit Outcomes(Kernel&) {}
  std::map<std::uint32_t, std::int64_t> values;
};

/// Leaves `value` under `key` on kernel `k`.
inline void record(Kernel& k, std::uint32_t key, std::int64_t value) {
  k.extension<Outcomes>().values[key] = value;
}

/// Adds `delta` to the value under `key` on kernel `k` (0 when absent).
inline void add(Kernel& k, std::uint32_t key, std::int64_t delta) {
  k.extension<Outcomes>().values[key] += delta;
}

/// The value under `key` on kernel `k` once it is at least `at_least`, waiting on the
/// kernel's clock meanwhile (a missing key counts as absent, not as 0).
inline Task<std::int64_t> await_value(Kernel& k, std::uint32_t key, std::int64_t at_least) {
  while (true) {
    auto& values = k.extension<Outcomes>().values;
    auto found = values.find(key);
    if (found != values.end() && found->second >= at_least) co_return found->second;
    co_await k.sleep_for(std::chrono::milliseconds(1));
  }
}

/// Runs await_value(key, at_least) on kernel `kernel` and returns the value.
inline Result<std::int64_t> collect(
    System& system, KernelId kernel, std::uint32_t key,
    std::int64_t at_least = std::numeric_limits<std::int64_t>::min()) {
  return system.run(
      kernel,
      [](Kernel& k, std::uint32_t wanted, std::int64_t floor) {
        return await_value(k, wanted, floor);
      },
      key, at_least);
}

/// The value under `key` on kernel `kernel` now, if any.
inline Result<std::optional<std::int64_t>> peek(System& system, KernelId kernel,
                                                std::uint32_t key) {
  return system.run(
      kernel,
      [](Kernel& k, std::uint32_t wanted) -> Task<std::optional<std::int64_t>> {
        auto& values = k.extension<Outcomes>().values;
        auto found = values.find(wanted);
        if (found == values.end()) co_return std::nullopt;
        co_return found->second;
      },
      key);
}

}  // namespace mk::test

namespace mk {

/// Prints an Isolation by name in gtest's messages.
inline void PrintTo(Isolation isolation, std::ostream* out) {
  *out << test::isolation_name(isolation);
}

}  // namespace mk
