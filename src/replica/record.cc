#include "replica/record.h"

#include <string>

#include "replica/byte_reader.h"
#include "replica/wire.h"

namespace mk::replica {

namespace {

void put_count(std::vector<std::byte>& out, std::size_t n) {
  put(out, static_cast<std::uint32_t>(n));
}

void put_id(std::vector<std::byte>& out, const OpId& id) {
  put(out, id.origin);
  put(out, id.number);
}

OpId read_id(Reader& in) {
  OpId id;
  id.origin = in.value<KernelId>();
  id.number = in.value<std::uint64_t>();
  return id;
}

constexpr std::size_t kIdSize = sizeof(KernelId) + sizeof(std::uint64_t);

void put_kernels(std::vector<std::byte>& out, const std::vector<KernelId>& kernels) {
  put_count(out, kernels.size());
  for (KernelId kernel : kernels)
    put(out, kernel);
}

std::vector<KernelId> read_kernels(Reader& in) {
  std::vector<KernelId> kernels(in.count(sizeof(KernelId)));
  for (KernelId& kernel : kernels)
    kernel = in.value<KernelId>();
  return kernels;
}

void put_decisions(std::vector<std::byte>& out, const std::vector<Decision>& decisions) {
  put_count(out, decisions.size());
  for (const Decision& decision : decisions) {
    put_id(out, decision.id);
    put(out, static_cast<std::uint8_t>(decision.commit ? 1 : 0));
  }
}

std::vector<Decision> read_decisions(Reader& in) {
  std::vector<Decision> decisions(in.count(kIdSize + 1));
  for (Decision& decision : decisions) {
    decision.id = read_id(in);
    decision.commit = in.value<std::uint8_t>() != 0;
  }
  return decisions;
}

void put_ops(std::vector<std::byte>& out, const std::vector<LoggedOp>& ops) {
  put_count(out, ops.size());
  for (const LoggedOp& op : ops) {
    put_id(out, op.id);
    put_count(out, op.op.size());
    out.insert(out.end(), op.op.begin(), op.op.end());
  }
}

std::vector<LoggedOp> read_ops(Reader& in) {
  std::vector<LoggedOp> ops(in.count(kIdSize + sizeof(std::uint32_t)));
  for (LoggedOp& op : ops) {
    op.id = read_id(in);
    op.op = in.bytes();
  }
  return ops;
}

}  // namespace

std::vector<std::byte> encode(const InstallRecord& record) {
  std::vector<std::byte> out;
  put(out, record.base);
  put(out, static_cast<std::uint8_t>(record.failure ? 1 : 0));
  put_kernels(out, record.members);
  put_kernels(out, record.failed);
  put(out, record.through);
  put_decisions(out, record.decisions);
  put_ops(out, record.ops);
  return out;
}

Result<InstallRecord> decode_record(std::span<const std::byte> bytes) {
  Reader in(bytes);
  InstallRecord record;
  record.base = in.value<std::uint32_t>();
  record.failure = in.value<std::uint8_t>() != 0;
  record.members = read_kernels(in);
  record.failed = read_kernels(in);
  record.through = in.value<std::uint64_t>();
  record.decisions = read_decisions(in);
  record.ops = read_ops(in);
  if (auto ok = in.done("install record"); !ok) return std::move(ok).error();
  if (record.members.empty()) return error(Errc::parse_error, "install record without members");
  return record;
}

std::vector<std::byte> encode(const Report& report) {
  std::vector<std::byte> out;
  put(out, report.epoch);
  put(out, report.from);
  put(out, static_cast<std::uint8_t>(report.member ? 1 : 0));
  put(out, static_cast<std::uint8_t>(report.change ? (report.change->join ? 2 : 1) : 0));
  put(out, report.change ? report.change->target : KernelId{0});
  put(out, report.known);
  put_count(out, report.undecided.size());
  for (const OpId& id : report.undecided)
    put_id(out, id);
  put_decisions(out, report.decided);
  put_ops(out, report.ops);
  put_count(out, report.record.size());
  out.insert(out.end(), report.record.begin(), report.record.end());
  return out;
}

Result<Report> decode_report(std::span<const std::byte> bytes) {
  Reader in(bytes);
  Report report;
  report.epoch = in.value<std::uint32_t>();
  report.from = in.value<KernelId>();
  report.member = in.value<std::uint8_t>() != 0;
  const auto change = in.value<std::uint8_t>();
  const auto target = in.value<KernelId>();
  if (change != 0) report.change = PendingChange{change == 2, target};
  report.known = in.value<std::uint64_t>();
  report.undecided.resize(in.count(kIdSize));
  for (OpId& id : report.undecided)
    id = read_id(in);
  report.decided = read_decisions(in);
  report.ops = read_ops(in);
  report.record = in.bytes();
  if (auto ok = in.done("view change report"); !ok) return std::move(ok).error();
  return report;
}

}  // namespace mk::replica
