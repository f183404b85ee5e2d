// mk::PageFault and mk::Pager: a touch of a VSpace address that is not mapped with the rights it
// needed, as the faulting kernel sees it (docs/vspace.md, "Faults").
#pragma once

#include <cstdint>
#include <functional>

#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/result.h"
#include "mk/task.h"

namespace mk {

/// One page fault inside a VSpace's address range, on one kernel.
struct PageFault {
  std::uintptr_t address = 0;  ///< The address the access touched.
  bool write = false;          ///< True for a store, false for a load.
  KernelId kernel = 0;         ///< The kernel whose access faulted.
};

/// A user-level pager: runs as a task on the faulting kernel after a VSpace::load or
/// VSpace::store faulted. Returning success means "resolved" (it mapped the page, say), and the
/// access is tried once more; an error is the access's error.
using Pager = std::function<Task<Result<void>>(Kernel&, PageFault)>;

}  // namespace mk
