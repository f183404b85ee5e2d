// Validation of ReplicaOptions at creation.
#pragma once

#include <cstddef>

#include "mk/replica_options.h"
#include "mk/result.h"

namespace mk::replica {

/// `options` checked for a System whose kernels are online as `online` says (by KernelId),
/// with `kernels` sorted and filled in (empty means every online kernel); invalid_argument
/// naming the bad field otherwise. `has_keys`: the state machine can say which keys an
/// operation touches (needed by two_phase).
Result<ReplicaOptions> validate(ReplicaOptions options, const std::vector<bool>& online,
                                bool has_keys);

}  // namespace mk::replica
