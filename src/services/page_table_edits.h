// What a capability table replica's apply does to its kernel's page table: mmap, remap as
// inaccessible, mprotect, in the VSpace address range (docs/vspace.md, "Page tables").
#pragma once

#include <cstdint>
#include <span>

#include "services/cap_table.h"

namespace mk::services {

/// Carries out `edits`, made by the update that brought table `instance` (whose memory is
/// CapabilityMemory `memory`) to `revision`, on this process's page table. Several replicas
/// in one process (threads, or the simulator) share that page table: the first to apply a
/// revision carries its edits out, the others find it done. A system call that fails is
/// logged: the table's state stays what every replica agreed.
void apply_page_edits(std::uint64_t memory, std::uint64_t instance, std::uint64_t revision,
                      std::span<const PageEdit> edits);

}  // namespace mk::services
