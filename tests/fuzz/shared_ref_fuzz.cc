// A shared_ref message names a slot of its sender's broadcast buffers, and its body comes from
// a peer kernel. Each input is read as records of one reader byte and a body: a body that
// decodes and is accepted by BroadcastArena::read must name a slot really published for that
// reader, and read must hand out exactly what was published there.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "runtime/broadcast_arena.h"

namespace {

using mk::runtime::BroadcastArena;
using mk::runtime::SharedRef;

struct Published {
  SharedRef ref;
  std::vector<mk::KernelId> readers;  ///< Those that have not released it.
  std::uint64_t value;
};

struct Fixture {
  std::unique_ptr<BroadcastArena> arena;
  std::vector<Published> live;
};

/// An arena for 200 readers with a slot released by all, one by some, and two untouched.
const Fixture& fixture() {
  static const Fixture made = [] {
    Fixture fixture;
    auto arena = BroadcastArena::make(200);
    if (!arena) __builtin_trap();
    fixture.arena = std::move(*arena);
    auto publish = [&](std::uint64_t value, std::vector<mk::KernelId> readers) {
      std::vector<mk::FanOutSend> sends;
      for (mk::KernelId reader : readers)
        sends.push_back(mk::FanOutSend{reader, -1});
      std::array<std::byte, sizeof value> bytes;
      std::memcpy(bytes.data(), &value, sizeof value);
      auto ref = fixture.arena->publish(bytes, sends, [](mk::KernelId) { return false; });
      if (!ref) __builtin_trap();
      return Published{*ref, readers, value};
    };
    Published gone = publish(1, {1, 2});
    fixture.arena->release(gone.ref, 1);
    fixture.arena->release(gone.ref, 2);
    Published half = publish(2, {1, 2, 130});
    fixture.arena->release(half.ref, 2);
    half.readers = {1, 130};
    fixture.live = {half, publish(3, {0, 64, 199}), publish(4, {2})};
    return fixture;
  }();
  return made;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Fixture& f = fixture();
  auto bytes = std::as_bytes(std::span(data, size));
  while (!bytes.empty()) {
    const auto reader = static_cast<mk::KernelId>(bytes[0]);
    const std::size_t body_size = std::min(bytes.size() - 1, mk::runtime::kSharedRefSize);
    const auto body = bytes.subspan(1, body_size);
    bytes = bytes.subspan(1 + body_size);
    const auto ref = mk::runtime::decode_shared_ref(body);
    if (!ref) {
      if (body.size() == mk::runtime::kSharedRefSize) __builtin_trap();  // Any 8 bytes decode.
      continue;
    }
    auto payload = f.arena->read(*ref, reader);
    if (!payload) continue;
    const Published* match = nullptr;
    for (const Published& p : f.live) {
      if (p.ref.slot != ref->slot || p.ref.generation != ref->generation) continue;
      for (mk::KernelId r : p.readers) {
        if (r == reader) match = &p;
      }
    }
    if (match == nullptr || payload->size() != sizeof match->value) __builtin_trap();
    std::uint64_t value = 0;
    std::memcpy(&value, payload->data(), sizeof value);
    if (value != match->value) __builtin_trap();
  }
  return 0;
}
