// ping_pong: two kernels bounce a counter with split-phase calls.
//
//   $ ./ping_pong [rounds]
//
// Kernel 1 answers Ping with the next number; a task on kernel 0 calls it `rounds` times and
// checks each answer. Everything a kernel does runs on its own pinned thread, and the two
// only ever exchange messages.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "mk/config.h"
#include "mk/kernel.h"
#include "mk/system.h"
#include "mk/task.h"

namespace ping_pong {

struct Pong {
  std::uint64_t next;
};

/// The request; its Reply type makes it callable.
struct Ping {
  static constexpr mk::MessageType kType = 1;
  using Reply = Pong;
  std::uint64_t value;
};

mk::Task<std::uint64_t> play(mk::Kernel& k, std::uint64_t rounds) {
  std::uint64_t value = 0;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    auto pong = co_await k.call(1, Ping{value});
    if (!pong) {
      std::fprintf(stderr, "call failed: %s\n", pong.error().describe().c_str());
      co_return value;
    }
    value = pong->next;
  }
  co_return value;
}

}  // namespace ping_pong

int main(int argc, char** argv) {
  const std::uint64_t rounds = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;

  mk::Config config;
  auto skb = mk::Skb::discover();
  if (!skb) {
    std::fprintf(stderr, "%s\n", skb.error().describe().c_str());
    return 1;
  }
  if (skb->usable_cores().size() < 2) {
    // One core: let the two kernels share it (they then sleep instead of polling).
    config.cores = {skb->usable_cores()[0], skb->usable_cores()[0]};
    config.kernels_per_core = 2;
  } else {
    config.cores = {skb->usable_cores()[0], skb->usable_cores()[1]};
  }
  // Every kernel registers its handler before it takes a message; an error fails boot.
  config.setup = [](mk::Kernel& k) {
    return k.handle<ping_pong::Ping>(
        [](const ping_pong::Ping& ping) { return ping_pong::Pong{ping.value + 1}; });
  };
  auto system = mk::System::boot(config);
  if (!system) {
    std::fprintf(stderr, "boot: %s\n", system.error().describe().c_str());
    return 1;
  }

  auto last = (*system)->run(0, [rounds](mk::Kernel& k) { return ping_pong::play(k, rounds); });
  if (!last) {
    std::fprintf(stderr, "run: %s\n", last.error().describe().c_str());
    return 1;
  }
  std::printf("%llu round trips between kernels on cores %u and %u; last value %llu\n",
              static_cast<unsigned long long>(rounds), *(*system)->core_of(0),
              *(*system)->core_of(1), static_cast<unsigned long long>(*last));
  if (auto stopped = (*system)->shutdown(); !stopped) return 1;
  return *last == rounds ? 0 : 1;
}
