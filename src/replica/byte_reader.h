// A reader of bytes that put() wrote, for decoders of what other kernels send: every read
// checks the length left, and the first short read makes every later one fail too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mk/result.h"
#include "replica/wire.h"

namespace mk::replica {

/// Reads what put() wrote, front to back.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

  /// The next T; T{} once a read came up short.
  template <class T>
  T value() {
    auto got = get<T>(bytes_, at_);
    if (!got) {
      short_ = true;
      return T{};
    }
    return *got;
  }
  /// A count of items of at least `each` bytes: refused when the rest cannot hold them.
  std::size_t count(std::size_t each) {
    const auto n = value<std::uint32_t>();
    if (short_ || n > (bytes_.size() - at_) / each) {
      short_ = true;
      return 0;
    }
    return n;
  }
  /// The next counted run of bytes.
  std::vector<std::byte> bytes() {
    const std::size_t n = count(1);
    std::vector<std::byte> out(bytes_.begin() + static_cast<std::ptrdiff_t>(at_),
                               bytes_.begin() + static_cast<std::ptrdiff_t>(at_ + n));
    at_ += n;
    return out;
  }
  /// True once a read came up short: what was read since is not to be trusted.
  bool failed() const noexcept { return short_; }
  /// parse_error naming `what` unless everything was read, and nothing more was there.
  Result<void> done(const char* what) const {
    if (short_ || at_ != bytes_.size()) {
      return error(Errc::parse_error, std::string(what) + " of " + std::to_string(bytes_.size()) +
                                          " bytes not understood");
    }
    return {};
  }

 private:
  std::span<const std::byte> bytes_;
  std::size_t at_ = 0;
  bool short_ = false;
};

}  // namespace mk::replica
