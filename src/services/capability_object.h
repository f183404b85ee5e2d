// What a CapabilityService handle refers to, for the services built on its table (VSpace).
#pragma once

#include <cstdint>
#include <memory>

#include "mk/capability_memory.h"
#include "mk/kernel.h"
#include "mk/proposal.h"
#include "mk/replicated.h"
#include "mk/task.h"
#include "services/cap_table.h"

namespace mk::detail {

/// A CapabilityService's table, number and memory; immutable once made.
struct CapabilityObject {
  Replicated<services::CapTable> table;
  std::uint64_t instance = 0;
  CapabilityMemory memory;
};

}  // namespace mk::detail

namespace mk::services {

/// Proposes `op` from kernel k (op.kernel is set to k); the table's answer, or the
/// agreement's error, once `completion` says.
Task<Result<CapOutcome>> update_table(std::shared_ptr<const detail::CapabilityObject> object,
                                      Kernel& k, CapOp op, Completion completion);

}  // namespace mk::services
