// What a view change exchanges: a member's report of its state, and the install record that
// takes every replica from one epoch to the next. Both travel as bytes between kernels (in
// chunks when large) and are parsed with every length checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "mk/kernel_id.h"
#include "mk/replica_options.h"
#include "mk/result.h"

namespace mk::replica {

/// A two-phase transaction's outcome.
struct Decision {
  OpId id;
  bool commit = false;
};

/// A one-phase operation some replica applied, with its bytes.
struct LoggedOp {
  OpId id;
  std::vector<std::byte> op;
};

/// A membership change the coordinator froze the members for.
struct PendingChange {
  bool join = false;
  KernelId target = 0;
};

/// Takes a replica at epoch `base` to epoch `base + 1`: written by the membership coordinator
/// (a join or leave, everything quiescent) or by a view change's leader (members that failed
/// removed, and what they left half done resolved).
struct InstallRecord {
  std::uint32_t base = 0;
  bool failure = false;             ///< Written by a view change.
  std::vector<KernelId> members;    ///< The new members, sorted.
  std::vector<KernelId> failed;     ///< Members removed because they failed.
  std::uint64_t through = 0;        ///< ordered: apply the stash up to here, drop the rest.
  std::vector<Decision> decisions;  ///< two_phase: transactions some replica left prepared.
  std::vector<LoggedOp> ops;        ///< one_phase: operations some replica applied.
};

/// One replica's state as a view change's leader needs it, taken when it stopped taking part
/// in its epoch ("closed").
struct Report {
  std::uint32_t epoch = 0;
  KernelId from = 0;
  bool member = false;
  std::optional<PendingChange> change;  ///< The change it was frozen for, if any.
  std::uint64_t known = 0;              ///< ordered: highest sequence number held, no gap.
  std::vector<OpId> undecided;          ///< two_phase: prepared, outcome unknown here.
  std::vector<Decision> decided;        ///< two_phase: outcomes not yet known to be everywhere.
  std::vector<LoggedOp> ops;            ///< one_phase: applied, not yet known to be everywhere.
  std::vector<std::byte> record;        ///< The record that installed `epoch`, if any.
};

/// The bytes of a record or a report, and back; parse_error for anything malformed.
std::vector<std::byte> encode(const InstallRecord& record);
Result<InstallRecord> decode_record(std::span<const std::byte> bytes);
std::vector<std::byte> encode(const Report& report);
Result<Report> decode_report(std::span<const std::byte> bytes);

}  // namespace mk::replica
