// A faulty kernel process can write anything into the rings it shares. Here the test plays that
// process: it maps a channel's memfd out of the receiving kernel's process (/proc/<pid>/fd) and
// writes a corrupt header where the next message would go. The receiver must report it, close
// that channel only, and keep serving its other channels. Process isolation only: threads share
// memory anyway.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "messages.h"
#include "mk/channel_geometry.h"
#include "mk/kernel.h"
#include "mk/slot_format.h"
#include "mk/system.h"
#include "runtime/fabric.h"
#include "runtime_test_util.h"
#include "transport/channel_options.h"
#include "transport/urpc_channel.h"

namespace {

using mk_test::Echo;

/// The memfds of channel rings that process `pid` holds open (the rings it receives on).
std::vector<std::string> rings_of(int pid) {
  std::vector<std::string> rings;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::error_code ignored;
    const auto target = std::filesystem::read_symlink(entry.path(), ignored).string();
    if (target.find("memfd:mk-ring") != std::string::npos) rings.push_back(entry.path());
  }
  return rings;
}

/// Calls kernel `to` from kernel `from` `count` times; how many were answered.
mk::Result<int> calls(mk::System& system, mk::KernelId from, mk::KernelId to, int count) {
  return system.run(
      from,
      [](mk::Kernel& k, mk::KernelId to, int count) -> mk::Task<int> {
        int answered = 0;
        for (int i = 0; i < count; ++i) {
          if ((co_await k.call(to, Echo{static_cast<std::uint64_t>(i), k.id()})).ok()) ++answered;
        }
        co_return answered;
      },
      to, count);
}

TEST(PeerInput, ACorruptHeaderClosesThatChannelAndTheKernelServesTheOthers) {
  mk::Config config = mk::test::config_for(3);
  config.isolation = mk::Isolation::processes;
  config.setup = mk_test::register_echo;
  auto system = mk::test::boot(config);
  ASSERT_TRUE(system);
  // Kernel 0 binds its channel to kernel 1 with five calls: its ring is kernel 1's only one.
  constexpr int kFirst = 5;
  auto first = calls(*system, 0, 1, kFirst);
  ASSERT_TRUE(first.ok()) << first.error().describe();
  ASSERT_EQ(*first, kFirst);
  auto pid = system->pid_of(1);
  ASSERT_TRUE(pid.ok());
  const auto rings = rings_of(*pid);
  ASSERT_EQ(rings.size(), 1u);

  // Map it as kernel 0's process does, and write a one-slot header longer than a slot where
  // kernel 1 reads next.
  auto options = mk::channel_options_for(system->skb(), system->core_of(0).value(),
                                         system->core_of(1).value(), config.ring_slots);
  ASSERT_TRUE(options.ok());
  options->receiver_numa_node = -1;
  auto geometry = mk::transport::make_geometry(*options);
  ASSERT_TRUE(geometry.ok());
  const std::size_t aux =
      (sizeof(mk::runtime::PairFlags) + geometry->line_size - 1) / geometry->line_size;
  const std::size_t bytes = mk::transport::shared_urpc_bytes(*geometry, aux);
  const int fd = ::open(rings.front().c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  void* mapped = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(mapped, MAP_FAILED);
  auto* slots =
      static_cast<std::byte*>(mapped) + mk::transport::shared_urpc_slots_offset(*geometry, aux);
  // The five calls took at most five slots (small messages share them), and the receiver
  // waits at the last one it read or the one after: every slot up to there gets the header.
  for (std::uint64_t position = 0; position <= kFirst; ++position) {
    auto* header =
        reinterpret_cast<std::uint64_t*>(slots + geometry->offset_of(position) + geometry->payload);
    std::atomic_ref<std::uint64_t>(*header).store(
        mk::transport::encode_header(Echo::kType, geometry->payload + 1, 1,
                                     geometry->epoch_bits(position)),
        std::memory_order_release);
  }
  ::munmap(mapped, bytes);

  // Kernel 2's calls wake kernel 1, which finds the corrupt header, closes that channel, and
  // answers kernel 2 all the same.
  auto others = calls(*system, 2, 1, 10);
  ASSERT_TRUE(others.ok()) << others.error().describe();
  EXPECT_EQ(*others, 10);
  auto stats = system->stats(1);
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->rejected_messages, 1u);
  // Kernel 0's channel to it is closed: its calls fail rather than wait.
  auto after = system->run(0, [](mk::Kernel& k) -> mk::Task<mk::Errc> {
    auto reply = co_await k.call(1, Echo{1, k.id()});
    co_return reply ? mk::Errc::internal : reply.error().code;
  });
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, mk::Errc::closed);
  EXPECT_TRUE(system->is_online(1));
  EXPECT_TRUE(system->shutdown().ok());
}

}  // namespace
