// The naming service's replicated state machine: a table of names, changed by ordered updates.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mk/name_rules.h"
#include "mk/result.h"
#include "mk/state_machine.h"

namespace mk::services {

/// One update of the table, as it travels: fixed-size buffers so that it is trivially
/// copyable and its size does not depend on the name.
struct NameOp {
  /// What the update does.
  enum class Kind : std::uint8_t { register_name = 1, unregister = 2 };

  Kind kind = Kind::register_name;
  std::uint8_t name_length = 0;
  std::uint8_t value_length = 0;
  std::array<char, kMaxNameLength> name{};
  std::array<char, kMaxValueSize> value{};

  /// An update of `name` (valid, see validate_name) to `value` (at most kMaxValueSize bytes).
  static NameOp make(Kind kind, std::string_view name, std::string_view value = {}) noexcept;
  std::string_view name_view() const noexcept { return {name.data(), name_length}; }
  std::string_view value_view() const noexcept { return {value.data(), value_length}; }
};

static_assert(std::is_trivially_copyable_v<NameOp> && sizeof(NameOp) == 130,
              "docs/naming.md gives the update's size");

/// How an update ended on a replica; the same on every replica, since all apply the same
/// updates in the same order.
enum class NameStatus : std::uint8_t {
  ok,              ///< Applied.
  already_exists,  ///< register of a name that is taken: nothing changed.
  not_found,       ///< unregister of a name that is absent: nothing changed.
  invalid,         ///< A malformed update (only possible if check was skipped): nothing changed.
};

/// What applying an update returns to its proposer.
struct NameOutcome {
  NameStatus status = NameStatus::ok;
  std::uint64_t sequence = 0;  ///< The change's number when applied; 0 otherwise.
};

/// The table: name -> value, plus the number of changes applied, which numbers each change
/// identically on every replica. `instance` tells watches which service a change belongs to.
class NameTable {
 public:
  using Op = NameOp;
  using Result = NameOutcome;

  explicit NameTable(std::uint64_t instance) noexcept : instance_(instance) {}

  /// invalid_argument for an update whose fields are out of range (bytes from another kernel
  /// are checked, not trusted).
  mk::Result<void> check(const Op& op) const;
  /// Applies `op` and tells this kernel's watches of the service about the change.
  Result apply(const Op& op);

  /// The value of `name`, or nullptr.
  const std::string* find(std::string_view name) const;
  /// Changes applied so far.
  std::uint64_t sequence() const noexcept { return sequence_; }
  /// The service this table belongs to.
  std::uint64_t instance() const noexcept { return instance_; }
  /// Registered names.
  std::size_t size() const noexcept { return names_.size(); }

  /// Appends the table's bytes (for a joining kernel).
  void encode(std::vector<std::byte>& out) const;
  /// A table from encode's bytes; parse_error naming what is wrong.
  static mk::Result<NameTable> decode(std::span<const std::byte> bytes);

 private:
  std::uint64_t instance_ = 0;
  std::uint64_t sequence_ = 0;
  std::map<std::string, std::string, std::less<>> names_;
};

}  // namespace mk::services

namespace mk {

/// The table travels as NameTable::encode's bytes.
template <>
struct Codec<services::NameTable> {
  static void encode(const services::NameTable& table, std::vector<std::byte>& out) {
    table.encode(out);
  }
  static Result<services::NameTable> decode(std::span<const std::byte> bytes) {
    return services::NameTable::decode(bytes);
  }
};

}  // namespace mk
