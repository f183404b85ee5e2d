#include "suite.h"

namespace mk::bench {

void run_channel(const Options& options, Report& report);
void run_peers(const Options& options, Report& report);
void run_rpc(const Options& options, Report& report);
void run_idle(const Options& options, Report& report);
void run_shm_vs_msg(const Options& options, Report& report);
void run_agreement(const Options& options, Report& report);
void run_replica(const Options& options, Report& report);
void run_project(const Options& options, Report& report);
void run_caps(const Options& options, Report& report);
void run_vm(const Options& options, Report& report);

std::span<const Suite> suites() {
  static constexpr Suite kSuites[] = {
      {"channel", "channel round trip and throughput: urpc, lockfree, cache-line floor",
       run_channel},
      {"peers", "urpc beside boost spsc_queue, DPDK rte_ring, ck_ring, moodycamel: rtt, throughput",
       run_peers},
      {"rpc", "Kernel::call round trip beside the urpc round trip; calls per second", run_rpc},
      {"idle", "CPU used by an idle system; wakeup of a sleeping kernel beside a futex", run_idle},
      {"shm-vs-msg", "Figure 3: updates of shared lines by atomics beside messages to a server",
       run_shm_vs_msg},
      {"agreement", "latency of one replicated update per protocol and route, beside a call",
       run_agreement},
      {"replica", "Replicated map reads and updates beside shared_mutex and mutex maps",
       run_replica},
      {"project", "simulated one-phase update latency against core count on --topology",
       run_project},
      {"caps", "capability copy, transfer, retype, revoke beside one table under a mutex",
       run_caps},
      {"vm", "Figure 7: VSpace unmap on every kernel beside Linux munmap's TLB shootdown", run_vm},
  };
  return kSuites;
}

}  // namespace mk::bench
