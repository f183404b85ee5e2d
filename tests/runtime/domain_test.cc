// Domains: one dispatcher on each of the domain's kernels, none elsewhere; with kernels as
// threads and as processes.
#include "mk/domain.h"

#include <gtest/gtest.h>

#include <string>

#include "mk/system.h"
#include "runtime_test_util.h"

namespace {

/// Keys of what the domain's tasks record on their kernels.
constexpr std::uint32_t kDomainSeen = 1;  ///< The dispatcher's domain id.
constexpr std::uint32_t kConsistent = 2;  ///< 1 when its name and Dispatcher::of agree.

class Domains : public mk::test::BothIsolations {};

TEST_P(Domains, EachKernelOfADomainRunsItsOwnDispatcher) {
  auto system = mk::test::boot(config(3));
  ASSERT_TRUE(system);
  auto domain = system->create_domain("app", {0, 2});
  ASSERT_TRUE(domain.ok()) << domain.error().describe();
  EXPECT_EQ(domain->name(), "app");

  const mk::DomainId id = domain->id();
  ASSERT_TRUE(domain
                  ->spawn([](mk::Dispatcher& d) -> mk::Task<void> {
                    const bool consistent = d.domain_name() == "app" &&
                                            mk::Dispatcher::of(d.kernel(), d.domain()) == &d;
                    mk::test::record(d.kernel(), kConsistent, consistent ? 1 : 0);
                    mk::test::record(d.kernel(), kDomainSeen, d.domain());
                    co_return;
                  })
                  .ok());
  for (mk::KernelId k : {0u, 2u}) {
    auto seen = mk::test::collect(*system, k, kDomainSeen);
    ASSERT_TRUE(seen.ok()) << seen.error().describe();
    EXPECT_EQ(*seen, id) << "kernel " << k;
    auto consistent = mk::test::collect(*system, k, kConsistent);
    ASSERT_TRUE(consistent.ok()) << consistent.error().describe();
    EXPECT_EQ(*consistent, 1) << "kernel " << k;
  }
  auto absent = system->run(
      1,
      [](mk::Kernel& k, mk::DomainId domain) -> mk::Task<bool> {
        co_return mk::Dispatcher::of(k, domain) == nullptr;
      },
      id);
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(*absent);
  auto untouched = mk::test::peek(*system, 1, kDomainSeen);
  ASSERT_TRUE(untouched.ok());
  EXPECT_FALSE(untouched->has_value());
}

TEST_P(Domains, BadArgumentsAreRefused) {
  auto system = mk::test::boot(config(2));
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

INSTANTIATE_TEST_SUITE_P(Isolations, Domains, mk::test::kBothIsolations,
                         mk::test::isolation_param_name);

}  // namespace
