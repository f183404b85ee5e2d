// The page-fault guard: guarded copies return the faults of registered windows, and every
// other fault stops the process as it would have without mk.
#include "services/page_fault_guard.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <vector>

namespace mk::services {
namespace {

std::size_t page_size() {
  return static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::uintptr_t address_of(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}

/// Anonymous pages, unmapped at the end.
class Pages {
 public:
  explicit Pages(std::size_t count) : size_(count * page_size()) {
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) bytes_ = static_cast<unsigned char*>(p);
  }
  ~Pages() {
    if (bytes_ != nullptr) munmap(bytes_, size_);
  }
  Pages(const Pages&) = delete;
  Pages& operator=(const Pages&) = delete;

  unsigned char* page(std::size_t i) const { return bytes_ + i * page_size(); }
  bool protect(std::size_t first, std::size_t count, int prot) const {
    return mprotect(page(first), count * page_size(), prot) == 0;
  }
  bool ok() const { return bytes_ != nullptr; }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_;
  unsigned char* bytes_ = nullptr;
};

/// A window of four pages: 0 read-write, 1 read-only, 2 and 3 no access. Pages 0 and 1 hold
/// byte i % 251 at offset i.
class PageFaultGuardTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pages_.ok());
    for (std::size_t i = 0; i < 2 * page_size(); ++i) {
      pages_.page(0)[i] = static_cast<unsigned char>(i % 251);
    }
    ASSERT_TRUE(pages_.protect(1, 1, PROT_READ));
    ASSERT_TRUE(pages_.protect(2, 2, PROT_NONE));
    auto registered = register_window(address_of(pages_.page(0)), pages_.size());
    ASSERT_TRUE(registered) << registered.error().describe();
  }
  void TearDown() override { (void)unregister_window(address_of(pages_.page(0))); }

  Pages pages_{4};
};

using PageFaultGuardDeathTest = PageFaultGuardTest;

TEST_F(PageFaultGuardTest, CopiesReadableAndWritablePages) {
  std::vector<unsigned char> out(2 * page_size());
  EXPECT_EQ(guarded_copy(out.data(), pages_.page(0), out.size(), false), std::nullopt);
  for (std::size_t i = 0; i < out.size(); ++i)
    ASSERT_EQ(out[i], i % 251) << "byte " << i;

  const std::vector<unsigned char> in(100, 0xab);
  EXPECT_EQ(guarded_copy(pages_.page(0) + 3, in.data(), in.size(), true), std::nullopt);
  EXPECT_EQ(pages_.page(0)[2], 2);
  for (std::size_t i = 0; i < in.size(); ++i)
    ASSERT_EQ(pages_.page(0)[3 + i], 0xab);
  EXPECT_EQ(pages_.page(0)[103], 103);
}

TEST_F(PageFaultGuardTest, LoadFromNoAccessPageReturnsTheExactAddress) {
  std::vector<unsigned char> out(64);
  for (std::size_t offset : {std::size_t{0}, std::size_t{24}, std::size_t{5}, page_size() + 3}) {
    const unsigned char* from = pages_.page(2) + offset;
    const auto fault = guarded_copy(out.data(), from, out.size(), false);
    ASSERT_TRUE(fault.has_value()) << "offset " << offset;
    EXPECT_EQ(fault->address, address_of(from)) << "offset " << offset;
    EXPECT_FALSE(fault->write);
  }
}

TEST_F(PageFaultGuardTest, GuardedFaultLeavesTheSignalMaskAsItWas) {
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR1);
  sigset_t before;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &blocked, &before), 0);
  unsigned char buffer[8];
  const auto fault = guarded_copy(buffer, pages_.page(2), sizeof buffer, false);
  sigset_t after;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &before, &after), 0);
  ASSERT_TRUE(fault.has_value());
  for (int signal : {SIGSEGV, SIGBUS, SIGUSR2, SIGTERM}) {
    EXPECT_EQ(sigismember(&after, signal), sigismember(&before, signal)) << "signal " << signal;
  }
  EXPECT_EQ(sigismember(&after, SIGUSR1), 1);
}

TEST(PageFaultGuardBus, AccessPastTheEndOfAFileReturnsTheAddress) {
  // A shared mapping of a one-page file: its second page raises SIGBUS, not SIGSEGV.
  const int fd = memfd_create("page_fault_guard_test", 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(page_size())), 0);
  void* p = mmap(nullptr, 2 * page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  ASSERT_NE(p, MAP_FAILED);
  auto* bytes = static_cast<unsigned char*>(p);
  ASSERT_TRUE(register_window(address_of(bytes), 2 * page_size()));
  unsigned char buffer[32] = {};
  const auto load = guarded_copy(buffer, bytes + page_size() + 8, sizeof buffer, false);
  const auto store = guarded_copy(bytes + page_size(), buffer, sizeof buffer, true);
  EXPECT_EQ(guarded_copy(bytes, buffer, sizeof buffer, true), std::nullopt);
  EXPECT_TRUE(unregister_window(address_of(bytes)));
  munmap(p, 2 * page_size());
  ASSERT_TRUE(load.has_value());
  EXPECT_EQ(load->address, address_of(bytes + page_size() + 8));
  EXPECT_FALSE(load->write);
  ASSERT_TRUE(store.has_value());
  EXPECT_EQ(store->address, address_of(bytes + page_size()));
  EXPECT_TRUE(store->write);
}

TEST_F(PageFaultGuardTest, StoreToReadOnlyPageReturnsTheAddressAsAWrite) {
  const std::vector<unsigned char> in(64, 0xcd);
  unsigned char* to = pages_.page(1) + 16;
  const auto fault = guarded_copy(to, in.data(), in.size(), true);
  ASSERT_TRUE(fault.has_value());
  EXPECT_EQ(fault->address, address_of(to));
  EXPECT_TRUE(fault->write);
  EXPECT_EQ(pages_.page(1)[16], (page_size() + 16) % 251);
}

TEST_F(PageFaultGuardTest, FaultPartwayReportsTheFirstPageNotReached) {
  std::vector<unsigned char> out(2 * page_size(), 0);
  const auto fault = guarded_copy(out.data(), pages_.page(1), out.size(), false);
  ASSERT_TRUE(fault.has_value());
  EXPECT_EQ(fault->address, address_of(pages_.page(2)));
  // The readable page was copied before the fault.
  for (std::size_t i = 0; i < page_size(); ++i) {
    ASSERT_EQ(out[i], (page_size() + i) % 251) << "byte " << i;
  }
}

TEST_F(PageFaultGuardTest, ConcurrentFaultsEachReturnTheirOwnAddress) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 500;
  std::latch start(kThreads);
  std::vector<int> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      unsigned char buffer[16] = {};
      for (int round = 0; round < kRounds; ++round) {
        // Loads from page 2 and stores into page 1 alternate, each at its own address.
        const std::size_t offset = static_cast<std::size_t>(t * 64 + round % 8 * 4);
        const bool store = round % 2 == 1;
        void* target = store ? static_cast<void*>(pages_.page(1) + offset)
                             : static_cast<void*>(pages_.page(2) + offset);
        const auto fault = store ? guarded_copy(target, buffer, sizeof buffer, true)
                                 : guarded_copy(buffer, target, sizeof buffer, false);
        if (!fault || fault->address != address_of(target) || fault->write != store) {
          ++wrong[static_cast<std::size_t>(t)];
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(wrong[static_cast<std::size_t>(t)], 0) << t;
}

TEST_F(PageFaultGuardTest, ForkedChildKeepsTheWindows) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    unsigned char buffer[8];
    const auto fault = guarded_copy(buffer, pages_.page(3), sizeof buffer, false);
    _exit(fault && fault->address == address_of(pages_.page(3)) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(PageFaultGuardWindows, RefusesBadAndOverlappingWindowsAndCountsThem) {
  // Addresses nothing maps: the table never touches them.
  const std::uintptr_t base = std::uintptr_t{1} << 45;
  const std::size_t page = page_size();
  EXPECT_EQ(register_window(base, 0).error().code, Errc::invalid_argument);
  EXPECT_EQ(register_window(UINTPTR_MAX - page + 1, 2 * page).error().code, Errc::invalid_argument);
  ASSERT_TRUE(register_window(base, 4 * page));
  EXPECT_EQ(register_window(base + 3 * page, 2 * page).error().code, Errc::invalid_argument);
  EXPECT_EQ(register_window(base - page, 2 * page).error().code, Errc::invalid_argument);
  EXPECT_EQ(register_window(base, 4 * page).error().code, Errc::invalid_argument);
  EXPECT_EQ(unregister_window(base + page).error().code, Errc::not_found);

  std::vector<std::uintptr_t> more;
  for (std::uintptr_t next = base + 4 * page;; next += page) {
    auto registered = register_window(next, page);
    if (!registered) {
      EXPECT_EQ(registered.error().code, Errc::full);
      break;
    }
    more.push_back(next);
    ASSERT_LE(more.size(), kMaxFaultWindows);
  }
  EXPECT_EQ(more.size(), kMaxFaultWindows - 1);
  for (std::uintptr_t window : more)
    EXPECT_TRUE(unregister_window(window));
  EXPECT_TRUE(unregister_window(base));
  EXPECT_EQ(unregister_window(base).error().code, Errc::not_found);
  ASSERT_TRUE(register_window(base, page));
  EXPECT_TRUE(unregister_window(base));
}

TEST_F(PageFaultGuardDeathTest, FaultOutsideEveryWindowInsideGuardedCopyStopsTheProcess) {
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  Pages outside(1);
  ASSERT_TRUE(outside.ok());
  ASSERT_TRUE(outside.protect(0, 1, PROT_NONE));
  unsigned char buffer[8];
  EXPECT_DEATH((void)guarded_copy(buffer, outside.page(0), sizeof buffer, false), "");
}

TEST_F(PageFaultGuardDeathTest, UnguardedTouchOfAWindowStopsTheProcessWithTheMessage) {
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  volatile unsigned char* touched = pages_.page(2) + 0x28;
  // The child re-runs the test, so its pages lie elsewhere (ASLR): only the offset in the page
  // is known here, and the address is written in lowercase hex without leading zeros.
  const std::string message =
      "mk: page fault at 0x[1-9a-f][0-9a-f]*028 in a VSpace range outside VSpace::load/store; "
      "the process stops";
  EXPECT_DEATH((void)*touched, message);
}

TEST_F(PageFaultGuardDeathTest, UnregisteredWindowFaultsAreNotRecovered) {
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  unsigned char buffer[8];
  ASSERT_TRUE(guarded_copy(buffer, pages_.page(2), sizeof buffer, false).has_value());
  ASSERT_TRUE(unregister_window(address_of(pages_.page(0))));
  EXPECT_DEATH((void)guarded_copy(buffer, pages_.page(2), sizeof buffer, false), "");
}

// The handlers the chain tests install before mk's: each exits with its own code.
void exit_with_siginfo(int, siginfo_t*, void*) {
  _exit(42);
}
void exit_plain(int) {
  _exit(43);
}

/// In the child of a "threadsafe" death test (a fresh process) the handler `install` puts in
/// place comes first, mk's second; faults outside windows, and unguarded ones inside, reach it.
void touch_after_handler(bool siginfo, bool in_window) {
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  if (siginfo) {
    action.sa_sigaction = exit_with_siginfo;
    action.sa_flags = SA_SIGINFO;
  } else {
    action.sa_handler = exit_plain;
  }
  sigaction(SIGSEGV, &action, nullptr);
  Pages pages(2);
  pages.protect(0, 2, PROT_NONE);
  if (!register_window(address_of(pages.page(0)), page_size())) _exit(1);
  const volatile unsigned char* touched = in_window ? pages.page(0) : pages.page(1);
  (void)*touched;
  _exit(2);
}

TEST(PageFaultGuardChainDeathTest, FaultsOutsideWindowsReachThePreviousHandler) {
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(touch_after_handler(true, false), testing::ExitedWithCode(42), "");
  EXPECT_EXIT(touch_after_handler(false, false), testing::ExitedWithCode(43), "");
}

TEST(PageFaultGuardChainDeathTest, UnguardedWindowFaultsAreReportedThenChained) {
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(touch_after_handler(true, true), testing::ExitedWithCode(42),
              "mk: page fault at 0x[0-9a-f]+ in a VSpace range outside VSpace::load/store");
  EXPECT_EXIT(touch_after_handler(false, true), testing::ExitedWithCode(43),
              "mk: page fault at 0x[0-9a-f]+ in a VSpace range");
}

}  // namespace
}  // namespace mk::services
