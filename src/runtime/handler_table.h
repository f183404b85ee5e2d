// A kernel's message handlers, found by type with an index rather than a hash: the lookup is
// on every message's path.
#pragma once

#include <memory>
#include <vector>

#include "mk/channel.h"
#include "mk/kernel.h"

namespace mk::runtime {

/// Handlers by message type: one dense table for the application's types and one for mk's
/// reserved range, each as long as the highest type registered in it.
class HandlerTable {
 public:
  /// The handler for `type`, or nullptr.
  detail::HandlerBase* find(MessageType type) const noexcept {
    const auto& table = table_of(type);
    const std::size_t index = index_of(type);
    return index < table.size() ? table[index].get() : nullptr;
  }

  /// Registers `handler` for `type`; false (and `handler` dropped) when it already has one.
  bool add(MessageType type, std::unique_ptr<detail::HandlerBase> handler) {
    auto& table = table_of(type);
    const std::size_t index = index_of(type);
    if (index >= table.size()) table.resize(index + 1);
    if (table[index]) return false;
    table[index] = std::move(handler);
    return true;
  }

 private:
  using Table = std::vector<std::unique_ptr<detail::HandlerBase>>;

  static std::size_t index_of(MessageType type) noexcept {
    return is_reserved_message_type(type) ? type - kFirstReservedMessageType : type;
  }
  const Table& table_of(MessageType type) const noexcept {
    return is_reserved_message_type(type) ? reserved_ : user_;
  }
  Table& table_of(MessageType type) noexcept {
    return is_reserved_message_type(type) ? reserved_ : user_;
  }

  Table user_;
  Table reserved_;
};

}  // namespace mk::runtime
