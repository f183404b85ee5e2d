// Kernel::extension: one object per kernel and type, made on first use, freed after the tasks.
#include <gtest/gtest.h>

#include <vector>

#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

struct Counter {
  explicit Counter(mk::Kernel& k) : owner(k.id()) {}
  mk::KernelId owner;
  int hits = 0;
};

struct Tracker {
  explicit Tracker(mk::Kernel&) {}
  ~Tracker() { *destroyed = true; }
  bool* destroyed = nullptr;
};

TEST(Extension, OnePerKernelAndTypeMadeOnFirstUse) {
  auto system = mk::test::boot(mk::test::config_for(3));
  ASSERT_NE(system, nullptr);
  for (mk::KernelId id = 0; id < 3; ++id) {
    auto hits = system->run(id, [](mk::Kernel& k) -> mk::Task<int> {
      Counter& first = k.extension<Counter>();
      ++first.hits;
      Counter& again = k.extension<Counter>();
      ++again.hits;
      EXPECT_EQ(&first, &again);
      EXPECT_EQ(first.owner, k.id());
      co_return again.hits;
    });
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ(*hits, 2);
  }
}

TEST(Extension, DestroyedAtShutdown) {
  auto system = mk::test::boot(mk::test::config_for(2));
  ASSERT_NE(system, nullptr);
  bool destroyed = false;
  ASSERT_TRUE(system
                  ->run(1,
                        [&destroyed](mk::Kernel& k) -> mk::Task<void> {
                          k.extension<Tracker>().destroyed = &destroyed;
                          co_return;
                        })
                  .ok());
  EXPECT_FALSE(destroyed);
  ASSERT_TRUE(system->shutdown().ok());
  EXPECT_TRUE(destroyed);
}

}  // namespace
