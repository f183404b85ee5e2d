#include "replica/options.h"

#include <algorithm>
#include <string>
#include <vector>

namespace mk::replica {

Result<ReplicaOptions> validate(ReplicaOptions options, const std::vector<bool>& online,
                                bool has_keys) {
  const std::size_t kernels = online.size();
  const auto protocol = static_cast<int>(options.protocol);
  if (protocol > static_cast<int>(Protocol::ordered)) {
    return error(Errc::invalid_argument,
                 "ReplicaOptions::protocol: unknown value " + std::to_string(protocol));
  }
  const auto route = static_cast<int>(options.route);
  if (route > static_cast<int>(RouteKind::numa_multicast)) {
    return error(Errc::invalid_argument,
                 "ReplicaOptions::route: unknown value " + std::to_string(route));
  }
  if (options.protocol == Protocol::two_phase && !has_keys) {
    return error(Errc::invalid_argument,
                 "ReplicaOptions::protocol: two_phase needs the state machine's "
                 "keys(const Op&, std::vector<std::uint64_t>&) const");
  }
  if (options.timeout <= Duration::zero()) {
    return error(Errc::invalid_argument, "ReplicaOptions::timeout: must be positive, not " +
                                             std::to_string(options.timeout.count()) + " ns");
  }
  std::vector<bool> seen(kernels, false);
  for (std::size_t i = 0; i < options.kernels.size(); ++i) {
    const KernelId kernel = options.kernels[i];
    if (kernel >= kernels) {
      return error(Errc::invalid_argument, "ReplicaOptions::kernels[" + std::to_string(i) +
                                               "]: no kernel " + std::to_string(kernel) +
                                               " (the system has " + std::to_string(kernels) + ")");
    }
    if (!online[kernel]) {
      return error(Errc::invalid_argument, "ReplicaOptions::kernels[" + std::to_string(i) +
                                               "]: kernel " + std::to_string(kernel) +
                                               " is offline");
    }
    if (seen[kernel]) {
      return error(Errc::invalid_argument, "ReplicaOptions::kernels[" + std::to_string(i) +
                                               "]: kernel " + std::to_string(kernel) +
                                               " listed twice");
    }
    seen[kernel] = true;
  }
  if (options.kernels.empty()) {
    for (KernelId kernel = 0; kernel < kernels; ++kernel) {
      if (online[kernel]) options.kernels.push_back(kernel);
    }
  }
  std::sort(options.kernels.begin(), options.kernels.end());
  if (options.sequencer &&
      !std::binary_search(options.kernels.begin(), options.kernels.end(), *options.sequencer)) {
    return error(Errc::invalid_argument, "ReplicaOptions::sequencer: kernel " +
                                             std::to_string(*options.sequencer) +
                                             " is not among the members");
  }
  return options;
}

}  // namespace mk::replica
