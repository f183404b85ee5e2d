// Kernel::extension: one object per kernel and type, made on first use, freed after the tasks;
// with kernels as threads and as processes.
#include <gtest/gtest.h>

#include <atomic>

#include "mk/system.h"
#include "runtime_test_util.h"

namespace extension_test {

struct Counter {
  explicit Counter(mk::Kernel& k) : owner(k.id()) {}
  mk::KernelId owner;
  int hits = 0;
};

struct Tracker {
  explicit Tracker(mk::Kernel&) {}
  ~Tracker() {
    if (destroyed != nullptr) destroyed->store(true);
  }
  std::atomic<bool>* destroyed = nullptr;
};

/// What a task saw of its kernel's Counter.
struct Seen {
  bool same_object = false;
  mk::KernelId owner = 0;
  int hits = 0;
};

class Extension : public mk::test::BothIsolations {};

TEST_P(Extension, OnePerKernelAndTypeMadeOnFirstUse) {
  auto system = mk::test::boot(config(3));
  ASSERT_NE(system, nullptr);
  for (mk::KernelId id = 0; id < 3; ++id) {
    auto seen = system->run(id, [](mk::Kernel& k) -> mk::Task<Seen> {
      Counter& first = k.extension<Counter>();
      ++first.hits;
      Counter& again = k.extension<Counter>();
      ++again.hits;
      co_return Seen{&first == &again, first.owner, again.hits};
    });
    ASSERT_TRUE(seen.ok()) << seen.error().describe();
    EXPECT_TRUE(seen->same_object);
    EXPECT_EQ(seen->owner, id);
    EXPECT_EQ(seen->hits, 2);
  }
}

TEST_P(Extension, DestroyedAtShutdown) {
  // Shared: the kernel destroys its extensions as it shuts down, after its last task.
  mk::test::Shared<std::atomic<bool>> destroyed;
  auto system = mk::test::boot(config(2));
  ASSERT_NE(system, nullptr);
  ASSERT_TRUE(system
                  ->run(
                      1,
                      [](mk::Kernel& k, std::atomic<bool>* flag) -> mk::Task<void> {
                        k.extension<Tracker>().destroyed = flag;
                        co_return;
                      },
                      destroyed.get())
                  .ok());
  EXPECT_FALSE(destroyed->load());
  ASSERT_TRUE(system->shutdown().ok());
  EXPECT_TRUE(destroyed->load());
}

INSTANTIATE_TEST_SUITE_P(Isolations, Extension, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace extension_test
