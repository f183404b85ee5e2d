// mk-hwloc-probe: hands untrusted input to hwloc in a process of its own (src/skb/
// hwloc_probe.cc starts it; docs/skb.md, "Untrusted input").
//
//   mk-hwloc-probe xml|synthetic STACK_BYTES   < input   > reports
//
// Reads the whole input, then on a thread with a stack of STACK_BYTES either loads it as an
// XML export, reads its NUMA nodes' memory attributes as the caller will, and frees it, or parses
// it as a synthetic description, and writes fixed-size reports to stdout: kRefused with hwloc's
// errno, or kLoaded then kFreed. A crash inside hwloc ends this process, and the caller reads its
// death.
#include <hwloc.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "skb/hwloc_probe_protocol.h"

namespace {

struct Job {
  bool xml = true;
  std::string input;
};

void send(mk::detail::ProbeReport report) {
  while (write(STDOUT_FILENO, &report, sizeof report) < 0 && errno == EINTR) {
  }
}

// The caller reads more than the tree from a loaded XML topology: its memory attributes. It
// asks hwloc for them here first, so that a file whose attributes crash hwloc dies here.
void ask_what_the_caller_asks(hwloc_topology_t topology) {
  for (hwloc_obj_t node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, nullptr);
       node != nullptr; node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, node)) {
    for (hwloc_memattr_id_t id : {HWLOC_MEMATTR_ID_BANDWIDTH, HWLOC_MEMATTR_ID_LATENCY}) {
      hwloc_location local{};
      local.type = HWLOC_LOCATION_TYPE_CPUSET;
      local.location.cpuset = node->cpuset;
      hwloc_uint64_t value = 0;
      if (!hwloc_bitmap_iszero(node->cpuset)) {
        hwloc_memattr_get_value(topology, id, node, &local, 0, &value);
      }
      unsigned count = 0;
      hwloc_memattr_get_initiators(topology, id, node, 0, &count, nullptr, nullptr);
    }
  }
}

void* run(void* argument) {
  const Job& job = *static_cast<const Job*>(argument);
  hwloc_topology_t topology = nullptr;
  if (hwloc_topology_init(&topology) != 0 ||
      hwloc_topology_set_flags(topology, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED) != 0) {
    send({mk::detail::kProbeRefused, errno});
    return nullptr;
  }
  const int status = job.xml
                         ? (hwloc_topology_set_xmlbuffer(topology, job.input.data(),
                                                         static_cast<int>(job.input.size())) != 0
                                ? -1
                                : hwloc_topology_load(topology))
                         : hwloc_topology_set_synthetic(topology, job.input.c_str());
  if (status != 0) {
    // Not freed: hwloc may leak or crash on what it refused, and this process ends now.
    send({mk::detail::kProbeRefused, errno});
    return nullptr;
  }
  if (job.xml) ask_what_the_caller_asks(topology);
  send({mk::detail::kProbeLoaded, 0});
  // Freeing walks the tree recursively too, and the caller will free what it loads.
  hwloc_topology_destroy(topology);
  send({mk::detail::kProbeFreed, 0});
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "xml") != 0 && std::strcmp(argv[1], "synthetic") != 0)) {
    return 2;
  }
  Job job;
  job.xml = std::strcmp(argv[1], "xml") == 0;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 3;
    if (n == 0) break;
    job.input.append(buffer, static_cast<std::size_t>(n));
  }
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  const unsigned long long stack = std::strtoull(argv[2], nullptr, 10);
  if (pthread_attr_setstacksize(&attributes, static_cast<std::size_t>(stack)) != 0) return 4;
  pthread_t thread;
  if (pthread_create(&thread, &attributes, run, &job) != 0) return 5;
  pthread_join(thread, nullptr);
  return 0;
}
