// The name table: checking, applying and encoding updates.
#include "services/name_table.h"

#include <cstring>

#include "mk/kernel.h"
#include "services/watch_registry.h"

namespace mk::services {

NameOp NameOp::make(Kind kind, std::string_view name, std::string_view value) noexcept {
  NameOp op;
  op.kind = kind;
  op.name_length = static_cast<std::uint8_t>(name.size());
  op.value_length = static_cast<std::uint8_t>(value.size());
  // An empty string_view may carry a null pointer, which memcpy must not be given.
  if (!name.empty()) std::memcpy(op.name.data(), name.data(), name.size());
  if (!value.empty()) std::memcpy(op.value.data(), value.data(), value.size());
  return op;
}

mk::Result<void> NameTable::check(const Op& op) const {
  if (op.kind != Op::Kind::register_name && op.kind != Op::Kind::unregister) {
    return error(Errc::invalid_argument,
                 "name update: unknown kind " + std::to_string(static_cast<int>(op.kind)));
  }
  if (op.name_length > kMaxNameLength) {
    return error(Errc::invalid_argument, "name update: name_length " +
                                             std::to_string(op.name_length) + " over " +
                                             std::to_string(kMaxNameLength));
  }
  if (op.value_length > kMaxValueSize) {
    return error(Errc::invalid_argument, "name update: value_length " +
                                             std::to_string(op.value_length) + " over " +
                                             std::to_string(kMaxValueSize));
  }
  return validate_name(op.name_view());
}

NameTable::Result NameTable::apply(const Op& op) {
  if (!check(op).ok()) return Result{NameStatus::invalid, 0};
  const std::string_view name = op.name_view();
  auto found = names_.find(name);
  NameEvent::Kind kind;
  std::string value;
  if (op.kind == Op::Kind::register_name) {
    if (found != names_.end()) return Result{NameStatus::already_exists, 0};
    value.assign(op.value_view());
    names_.emplace(std::string(name), value);
    kind = NameEvent::Kind::registered;
  } else {
    if (found == names_.end()) return Result{NameStatus::not_found, 0};
    value = std::move(found->second);
    names_.erase(found);
    kind = NameEvent::Kind::unregistered;
  }
  ++sequence_;
  // Telling the watches is this replica's local side effect; the table itself stays a pure
  // function of the agreed updates. apply runs in the turn of the kernel owning the replica.
  if (Kernel* kernel = Kernel::current()) {
    kernel->extension<WatchRegistry>().publish(instance_, kind, name, value, sequence_);
  }
  return Result{NameStatus::ok, sequence_};
}

const std::string* NameTable::find(std::string_view name) const {
  auto found = names_.find(name);
  return found == names_.end() ? nullptr : &found->second;
}

namespace {

void put_u64(std::vector<std::byte>& out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<std::byte>(value >> (8 * i)));
}

void put_text(std::vector<std::byte>& out, std::string_view text) {
  out.push_back(static_cast<std::byte>(text.size()));
  const auto* bytes = reinterpret_cast<const std::byte*>(text.data());
  out.insert(out.end(), bytes, bytes + text.size());
}

/// Reads the encoding front to back; every read checks the length left.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

  mk::Result<std::uint64_t> u64(const char* what) {
    if (bytes_.size() < 8) return truncated(what);
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i)
      value |= std::to_integer<std::uint64_t>(bytes_[i]) << (8 * i);
    bytes_ = bytes_.subspan(8);
    return value;
  }

  mk::Result<std::string> text(const char* what, std::size_t limit) {
    if (bytes_.empty()) return truncated(what);
    const auto length = std::to_integer<std::size_t>(bytes_[0]);
    if (length > limit) {
      return error(Errc::parse_error, std::string("name table: ") + what + " of " +
                                          std::to_string(length) + " bytes, over " +
                                          std::to_string(limit));
    }
    if (bytes_.size() < 1 + length) return truncated(what);
    std::string out(reinterpret_cast<const char*>(bytes_.data() + 1), length);
    bytes_ = bytes_.subspan(1 + length);
    return out;
  }

  bool done() const noexcept { return bytes_.empty(); }

 private:
  static Error truncated(const char* what) {
    return error(Errc::parse_error, std::string("name table: truncated at ") + what);
  }

  std::span<const std::byte> bytes_;
};

}  // namespace

void NameTable::encode(std::vector<std::byte>& out) const {
  put_u64(out, instance_);
  put_u64(out, sequence_);
  put_u64(out, names_.size());
  for (const auto& [name, value] : names_) {
    put_text(out, name);
    put_text(out, value);
  }
}

mk::Result<NameTable> NameTable::decode(std::span<const std::byte> bytes) {
  Reader in(bytes);
  auto instance = in.u64("instance");
  if (!instance) return std::move(instance).error();
  auto sequence = in.u64("sequence");
  if (!sequence) return std::move(sequence).error();
  auto count = in.u64("count");
  if (!count) return std::move(count).error();
  // Each entry takes at least 3 bytes: a count beyond that is a lie, caught before looping.
  if (*count > bytes.size() / 3) {
    return error(Errc::parse_error, "name table: count " + std::to_string(*count) + " for " +
                                        std::to_string(bytes.size()) + " bytes");
  }
  NameTable table(*instance);
  table.sequence_ = *sequence;
  for (std::uint64_t i = 0; i < *count; ++i) {
    auto name = in.text("name", kMaxNameLength);
    if (!name) return std::move(name).error();
    if (auto valid = validate_name(*name); !valid) {
      return error(Errc::parse_error,
                   "name table: entry " + std::to_string(i) + ": " + valid.error().message);
    }
    auto value = in.text("value", kMaxValueSize);
    if (!value) return std::move(value).error();
    if (!table.names_.emplace(std::move(*name), std::move(*value)).second) {
      return error(Errc::parse_error, "name table: entry " + std::to_string(i) + " repeats a name");
    }
  }
  if (!in.done()) return error(Errc::parse_error, "name table: trailing bytes");
  return table;
}

}  // namespace mk::services
