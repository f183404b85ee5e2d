// Validation of ReplicaOptions at creation.
#pragma once

#include <cstddef>

#include "mk/replica_options.h"
#include "mk/result.h"

namespace mk::replica {

/// `options` checked for a System of `kernels` kernels, with `kernels` sorted and filled in
/// (empty means all); invalid_argument naming the bad field otherwise. `has_keys`: the state
/// machine can say which keys an operation touches (needed by two_phase).
Result<ReplicaOptions> validate(ReplicaOptions options, std::size_t kernels, bool has_keys);

}  // namespace mk::replica
