#include "suite.h"

namespace mk::bench {

void run_channel(const Options& options, Report& report);
void run_rpc(const Options& options, Report& report);
void run_idle(const Options& options, Report& report);

std::span<const Suite> suites() {
  static constexpr Suite kSuites[] = {
      {"channel", "channel round trip and throughput: urpc, lockfree, cache-line floor",
       run_channel},
      {"rpc", "Kernel::call round trip beside the urpc round trip; calls per second", run_rpc},
      {"idle", "CPU used by an idle system; wakeup of a sleeping kernel beside a futex", run_idle},
  };
  return kSuites;
}

}  // namespace mk::bench
