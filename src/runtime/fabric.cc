#include "runtime/fabric.h"

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

}  // namespace mk::runtime
