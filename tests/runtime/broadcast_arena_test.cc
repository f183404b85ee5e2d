// BroadcastArena: a payload written once is read in place by exactly the readers it was
// published for, a slot is reused only once all of them released it, and a name of a slot
// read from a message is believed for nothing.
#include "runtime/broadcast_arena.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <vector>

namespace {

using mk::FanOutSend;
using mk::KernelId;
using mk::runtime::BroadcastArena;
using mk::runtime::SharedRef;

std::vector<std::byte> bytes_of(std::uint64_t value) {
  std::vector<std::byte> bytes(sizeof value);
  std::memcpy(bytes.data(), &value, sizeof value);
  return bytes;
}

std::uint64_t value_of(std::span<const std::byte> bytes) {
  std::uint64_t value = 0;
  EXPECT_EQ(bytes.size(), sizeof value);
  if (bytes.size() == sizeof value) std::memcpy(&value, bytes.data(), sizeof value);
  return value;
}

std::vector<FanOutSend> to(std::initializer_list<KernelId> readers) {
  std::vector<FanOutSend> sends;
  for (KernelId reader : readers)
    sends.push_back(FanOutSend{reader, -1});
  return sends;
}

const auto nobody_gone = [](KernelId) { return false; };

class Arena : public ::testing::Test {
 protected:
  void SetUp() override {
    // 130 readers: their bits span three words, the last on its own.
    auto made = BroadcastArena::make(130);
    ASSERT_TRUE(made.ok()) << made.error().describe();
    arena_ = std::move(*made);
  }

  std::optional<SharedRef> publish(std::uint64_t value, std::initializer_list<KernelId> readers,
                                   mk::FunctionRef<bool(KernelId)> gone = nobody_gone) {
    const auto payload = bytes_of(value);
    const auto sends = to(readers);
    return arena_->publish(payload, sends, gone);
  }

  std::unique_ptr<BroadcastArena> arena_;
};

TEST_F(Arena, EachReaderReadsThePayloadUntilItReleasesIt) {
  const auto ref = publish(77, {1, 64, 129});
  ASSERT_TRUE(ref);
  for (KernelId reader : {1u, 64u, 129u}) {
    auto payload = arena_->read(*ref, reader);
    ASSERT_TRUE(payload.ok()) << payload.error().describe();
    EXPECT_EQ(value_of(*payload), 77u);
    arena_->release(*ref, reader);
    EXPECT_FALSE(arena_->read(*ref, reader).ok()) << "reader " << reader << " after release";
  }
  EXPECT_EQ(arena_->slots_in_use(), 0u);
}

TEST_F(Arena, ASlotIsReusedOnlyOnceEveryReaderReleasedIt) {
  std::vector<SharedRef> refs;
  for (std::uint64_t i = 0; i < BroadcastArena::kSlots; ++i) {
    auto ref = publish(i, {2, 3});
    ASSERT_TRUE(ref) << "slot " << i;
    refs.push_back(*ref);
  }
  EXPECT_EQ(arena_->slots_in_use(), BroadcastArena::kSlots);
  EXPECT_FALSE(publish(100, {2, 3})) << "every slot is held";

  arena_->release(refs[5], 2);
  EXPECT_FALSE(publish(100, {2, 3})) << "reader 3 still holds slot 5";
  arena_->release(refs[5], 3);
  const auto reused = publish(100, {2, 3});
  ASSERT_TRUE(reused);
  EXPECT_EQ(reused->slot, refs[5].slot);
  EXPECT_NE(reused->generation, refs[5].generation);
  // The slot's earlier publication names nothing any more; the other slots are untouched.
  EXPECT_FALSE(arena_->read(refs[5], 2).ok());
  EXPECT_EQ(value_of(*arena_->read(*reused, 2)), 100u);
  EXPECT_EQ(value_of(*arena_->read(refs[6], 3)), 6u);
}

TEST_F(Arena, AFullArenaDropsTheHoldsOfReadersThatAreGone) {
  // Half the slots held by readers 4 and 5, half by 5 alone.
  std::vector<SharedRef> both;
  for (std::uint64_t i = 0; i < BroadcastArena::kSlots; ++i) {
    auto ref = i % 2 == 0 ? publish(i, {4, 5}) : publish(i, {5});
    ASSERT_TRUE(ref);
    if (i % 2 == 0) both.push_back(*ref);
  }
  EXPECT_FALSE(publish(100, {6, 7})) << "every slot is held and nobody is gone";

  auto five_gone = [](KernelId kernel) { return kernel == 5; };
  const auto ref = publish(100, {6, 7}, five_gone);
  ASSERT_TRUE(ref) << "reader 5 alone held half the slots";
  EXPECT_EQ(ref->slot % 2, 1u);
  EXPECT_EQ(value_of(*arena_->read(*ref, 6)), 100u);
  // Reader 4, which is not gone, keeps everything it holds.
  for (const SharedRef& held : both)
    EXPECT_TRUE(arena_->read(held, 4).ok()) << "slot " << held.slot;
}

TEST_F(Arena, ANameIsBelievedOnlyForAReaderThePayloadWasPublishedFor) {
  const auto ref = publish(5, {1, 2});
  ASSERT_TRUE(ref);
  EXPECT_FALSE(arena_->read(*ref, 3).ok()) << "not a reader of it";
  EXPECT_FALSE(arena_->read(*ref, 130).ok()) << "no such reader";
  EXPECT_FALSE(arena_->read(SharedRef{ref->slot, ref->generation + 1}, 1).ok()) << "generation";
  EXPECT_FALSE(arena_->read(SharedRef{BroadcastArena::kSlots, ref->generation}, 1).ok());
  EXPECT_FALSE(arena_->read(SharedRef{ref->slot + 1, ref->generation}, 1).ok()) << "empty slot";
  // A refused name releases nothing: the readers still read it.
  EXPECT_EQ(value_of(*arena_->read(*ref, 1)), 5u);
  EXPECT_EQ(value_of(*arena_->read(*ref, 2)), 5u);
}

TEST_F(Arena, WhatASlotCannotCarryIsRefusedAndHoldsNothing) {
  const std::vector<std::byte> too_large(BroadcastArena::kSlotBytes + 1);
  const auto sends = to({1, 2});
  EXPECT_FALSE(arena_->publish(too_large, sends, nobody_gone));
  EXPECT_FALSE(publish(1, {1, 130})) << "a reader out of range";
  EXPECT_FALSE(publish(1, {1, 2, 1})) << "a reader listed twice";
  EXPECT_FALSE(publish(1, {})) << "no readers";
  EXPECT_EQ(arena_->slots_in_use(), 0u);
  const std::vector<std::byte> largest(BroadcastArena::kSlotBytes, std::byte{0x5a});
  const auto ref = arena_->publish(largest, sends, nobody_gone);
  ASSERT_TRUE(ref);
  auto payload = arena_->read(*ref, 2);
  ASSERT_TRUE(payload.ok());
  EXPECT_TRUE(std::equal(payload->begin(), payload->end(), largest.begin(), largest.end()));
}

TEST(ArenaBits, ReadersWhoseBitsLieBeyondASlotsFirstBlockKeepTheirSlotsApart) {
  // 2100 readers: each slot's bits take two blocks, reader 2099's in the second.
  auto made = BroadcastArena::make(2100);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  BroadcastArena& arena = **made;
  const auto far = to({2047, 2048, 2099});
  const auto near = to({0});
  const auto first = arena.publish(bytes_of(1), far, nobody_gone);
  const auto second = arena.publish(bytes_of(2), near, nobody_gone);
  ASSERT_TRUE(first && second);
  arena.release(*second, 0);
  // Had the second slot's bits overlapped the first's second block, it would still look held.
  EXPECT_EQ(arena.slots_in_use(), 1u);
  for (KernelId reader : {2047u, 2048u, 2099u}) {
    auto payload = arena.read(*first, reader);
    ASSERT_TRUE(payload.ok()) << "reader " << reader << ": " << payload.error().describe();
    EXPECT_EQ(value_of(*payload), 1u);
    arena.release(*first, reader);
  }
  EXPECT_EQ(arena.slots_in_use(), 0u);
}

TEST(SharedRefCodec, ANameSurvivesItsBytesAndOtherLengthsAreRefused) {
  const SharedRef ref{11, 0xfeedbeef};
  const auto bytes = mk::runtime::encode_shared_ref(ref);
  const auto decoded = mk::runtime::decode_shared_ref(bytes);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->slot, 11u);
  EXPECT_EQ(decoded->generation, 0xfeedbeefu);
  EXPECT_FALSE(mk::runtime::decode_shared_ref(std::span(bytes).first(7)));
  const std::array<std::byte, 9> longer{};
  EXPECT_FALSE(mk::runtime::decode_shared_ref(longer));
}

}  // namespace
