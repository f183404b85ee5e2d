// mk::KernelId: how mk names a kernel.
#pragma once

#include <cstdint>

namespace mk {

/// A kernel of one System: its index in boot order, 0 to System::size() - 1. Messages are
/// addressed to kernels, not cores, because several kernels may share a core when the config
/// asks for it (Config::kernels_per_core).
using KernelId = std::uint32_t;

}  // namespace mk
