// The descriptions of replicated objects in this process, and how a description travels.
//
// An object's description (detail::ObjectInfo) is immutable. Its creator makes it; every
// kernel that installs the object gets it in a message and looks it up here first: kernels
// that are threads of one process then share their creator's (so that a handle copied into a
// task of any of them finds that kernel's replica without a lookup), while a kernel process
// builds its own from the message.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "mk/replica_engine.h"
#include "mk/result.h"

namespace mk::replica {

/// The description of object `id` of System `system` known in this process, or null.
detail::ObjectRef find_object(std::uint64_t system, detail::ObjectId id);
/// Makes `made` the description of its object in System `system`, unless one is already
/// known, which is then returned instead.
detail::ObjectRef adopt_object(std::uint64_t system, detail::ObjectRef made);

/// Appends a description (for a kernel that installs the object): its type, the kernels the
/// System had at its creation, and its options.
void encode_description(const detail::ObjectInfo& object, std::vector<std::byte>& out);
/// A description of object `id` from those bytes; parse_error when they are not one (an
/// unknown type included: the bytes come from another kernel).
Result<detail::ObjectRef> decode_description(detail::ObjectId id, std::span<const std::byte> bytes);

}  // namespace mk::replica
