// The simulator's trace: every event hashed, and kept as text when asked.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mk/clock.h"
#include "mk/kernel_id.h"

namespace mk::runtime {

/// What happened in a simulation event.
enum class SimEvent : std::uint8_t {
  turn,     ///< A kernel ran a turn; a = 1 if it did any work.
  sleep,    ///< A kernel went to sleep; a = its wake-up instant in ns (0: none).
  send,     ///< a = receiver, b = message type, c = delivery instant in ns.
  receive,  ///< a = sender, b = message type.
  stall,    ///< A kernel was stalled; a = the instant in ns it resumes.
  crash,    ///< A kernel crashed and will never run again.
  stop,     ///< A kernel finished stopping.
};

/// Hashes events (FNV-1a over their fields) in the order they happen.
class SimTrace {
 public:
  explicit SimTrace(bool keep_lines) : keep_lines_(keep_lines) {}

  void record(Instant when, KernelId kernel, SimEvent event, std::uint64_t a = 0,
              std::uint64_t b = 0, std::uint64_t c = 0);

  std::uint64_t hash() const noexcept { return hash_; }
  std::uint64_t events() const noexcept { return events_; }
  const std::vector<std::string>& lines() const noexcept { return lines_; }

 private:
  void mix(std::uint64_t value) noexcept;

  bool keep_lines_;
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
  std::uint64_t events_ = 0;
  std::vector<std::string> lines_;
};

}  // namespace mk::runtime
