// Domains: one dispatcher on each of the domain's kernels, none elsewhere.
#include "mk/domain.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

TEST(Domains, EachKernelOfADomainRunsItsOwnDispatcher) {
  auto system = mk::test::boot(mk::test::config_for(3));
  ASSERT_TRUE(system);
  auto domain = system->create_domain("app", {0, 2});
  ASSERT_TRUE(domain.ok()) << domain.error().describe();
  EXPECT_EQ(domain->name(), "app");

  std::atomic<unsigned> seen_mask{0};
  std::atomic<int> wrong{0};
  const mk::DomainId id = domain->id();
  ASSERT_TRUE(domain
                  ->spawn([&seen_mask, &wrong, id](mk::Dispatcher& d) -> mk::Task<void> {
                    if (d.domain() != id || d.domain_name() != "app" ||
                        mk::Dispatcher::of(d.kernel(), id) != &d) {
                      wrong.fetch_add(1);
                    }
                    seen_mask.fetch_or(1u << d.kernel().id());
                    co_return;
                  })
                  .ok());
  mk::test::wait_until([&] { return seen_mask.load() == 0b101u; });
  EXPECT_EQ(wrong.load(), 0);
  auto absent = system->run(
      1, [id](mk::Kernel& k) -> mk::Task<bool> { co_return mk::Dispatcher::of(k, id) == nullptr; });
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(*absent);
}

TEST(Domains, BadArgumentsAreRefused) {
  auto system = mk::test::boot(mk::test::config_for(2));
  ASSERT_TRUE(system);
  EXPECT_EQ(system->create_domain("", {0}).error().code, mk::Errc::invalid_argument);
  EXPECT_EQ(system->create_domain("a", {}).error().code, mk::Errc::invalid_argument);
  EXPECT_EQ(system->create_domain("a", {0, 0}).error().code, mk::Errc::invalid_argument);
  EXPECT_EQ(system->create_domain("a", {0, 9}).error().code, mk::Errc::not_found);
  ASSERT_TRUE(system->create_domain("a", {0}).ok());
  auto again = system->create_domain("a", {1});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already exists"), std::string::npos);
}

}  // namespace
