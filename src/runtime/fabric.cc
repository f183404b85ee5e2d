#include "runtime/fabric.h"

#include "mk/channel_geometry.h"

namespace mk::runtime {

ChannelKind Fabric::kind_between(KernelId from, KernelId to) const {
  if (from == to) return ChannelKind::local;
  if (forced_kind) return *forced_kind;
  ChannelKind kind = skb->transport(cores[from], cores[to]);
  // The SKB answers for cores; two kernels sharing a core are still two threads, and a local
  // channel has no atomics, so they get the cross-core ring instead.
  if (kind == ChannelKind::local) return ChannelKind::urpc;
  return kind;
}

bool Fabric::answers_in_line(KernelId from, KernelId to) const {
  if (from == to) return false;
  const AnswerPath path =
      forced_answer_path ? *forced_answer_path : skb->answer_path(cores[from], cores[to]);
  return path == AnswerPath::in_line;
}

Result<ChannelOptions> Fabric::channel_options(KernelId from, KernelId to) const {
  auto options = channel_options_for(*skb, cores[from], cores[to], ring_slots);
  if (!options) return options;
  // The kernel's node as booted (BootPlan::numa_nodes), which is the SKB's node of its core.
  options->receiver_numa_node = numa_nodes[to];
  return options;
}

}  // namespace mk::runtime
