// One-way throughput of a channel between two pinned threads: what mk-bench channel reports,
// and what mk-bench rpc measures beside its pipelined calls as their baseline.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core_pair.h"
#include "mk/channel.h"

namespace mk::bench {

/// Millions of `payload_size`-byte messages per second from `cores.second` to `cores.first`
/// over a new channel of `kind`, `count` of them; `batch` messages per try_send_batch and per
/// poll (1: try_send and poll one at a time). 0 when the channel cannot be made (said on stderr).
double one_way_mps(ChannelKind kind, std::size_t payload_size, const CorePair& cores,
                   std::uint64_t count, std::size_t batch);

}  // namespace mk::bench
