// Message types used by the runtime tests.
#pragma once

#include <array>
#include <cstdint>

#include "mk/kernel.h"
#include "mk/message_codec.h"
#include "mk/task.h"

namespace mk_test {

struct EchoReply {
  std::uint64_t value;
  std::uint32_t caller;
  std::uint32_t responder;
};

/// Answered with value * 2 + 1 and both kernels' ids.
struct Echo {
  static constexpr mk::MessageType kType = 1;
  using Reply = EchoReply;
  std::uint64_t value;
  std::uint32_t caller;
};

/// Makes `kernel` answer Echo; a Config::setup.
inline mk::Result<void> register_echo(mk::Kernel& kernel) {
  return kernel.handle<Echo>([](const Echo& echo, const mk::MessageContext& context) {
    return EchoReply{echo.value * 2 + 1, echo.caller, context.kernel.id()};
  });
}

/// Answered once kernel `peer` has failed (value 1; 0 if the answering kernel stopped first):
/// a call that waits on a kernel until it fails.
struct AwaitFailure {
  static constexpr mk::MessageType kType = 41;
  using Reply = EchoReply;
  mk::KernelId peer;
};

/// Makes `kernel` answer AwaitFailure.
inline mk::Result<void> register_await_failure(mk::Kernel& kernel) {
  return kernel.handle<AwaitFailure>(
      [](const AwaitFailure& ask, const mk::MessageContext& context) -> mk::Task<EchoReply> {
        auto failed = co_await context.kernel.until_failed(ask.peer);
        co_return EchoReply{failed ? 1u : 0u, ask.peer, context.kernel.id()};
      });
}

/// No kernel registers a handler for it.
struct Unhandled {
  static constexpr mk::MessageType kType = 2;
  using Reply = EchoReply;
  std::uint64_t value;
};

/// Its handler throws.
struct Throws {
  static constexpr mk::MessageType kType = 3;
  using Reply = EchoReply;
  std::uint64_t value;
};

/// One-way, numbered per sender.
struct Numbered {
  static constexpr mk::MessageType kType = 4;
  std::uint32_t sender;
  std::uint32_t number;
};

/// Its handler never answers.
struct Silent {
  static constexpr mk::MessageType kType = 5;
  using Reply = EchoReply;
  std::uint64_t value;
};

struct Checksum {
  std::uint64_t sum;
};

/// Several slots long.
struct Large {
  static constexpr mk::MessageType kType = 6;
  using Reply = Checksum;
  std::array<std::uint8_t, 1500> bytes;
};

struct SleepCount {
  std::uint64_t sleeps;
};

/// Answered with the receiving kernel's sleep count.
struct Probe {
  static constexpr mk::MessageType kType = 7;
  using Reply = SleepCount;
  std::uint32_t unused;
};

}  // namespace mk_test
