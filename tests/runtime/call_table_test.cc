// CallTable: a reply finds its call by id once, late and forged ids find nothing, a slot's
// reuse changes the id, a finished call's deadline leaves the timers, and a full table says so.
#include "runtime/call_table.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <vector>

#include "runtime/timer_queue.h"

namespace {

using namespace std::chrono_literals;
using mk::detail::PendingCall;
using mk::runtime::CallTable;
using mk::runtime::TimerQueue;

TEST(CallTable, AReplyFindsItsCallOnceAndALateOneFindsNothing) {
  TimerQueue timers;
  CallTable table(timers);
  PendingCall first, second;
  const auto a = table.add(first, 1);
  const auto b = table.add(second, 2);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id, b->id);
  EXPECT_NE(a->id, 0u);
  EXPECT_EQ(table.in_flight(), 2u);
  EXPECT_EQ(table.take(b->id), &second);
  EXPECT_EQ(table.take(b->id), nullptr);  // A second reply to the same call.
  EXPECT_EQ(table.take(a->id), &first);
  EXPECT_EQ(table.in_flight(), 0u);
}

TEST(CallTable, AReusedSlotGetsANewIdAndTheOldOneFindsNothing) {
  TimerQueue timers;
  CallTable table(timers);
  PendingCall first, second;
  const auto a = table.add(first, 1);
  ASSERT_TRUE(a);
  ASSERT_EQ(table.take(a->id), &first);
  const auto b = table.add(second, 1);
  ASSERT_TRUE(b);
  // The freed slot is taken again, under another generation.
  EXPECT_EQ(b->id & (CallTable::kMaxCalls - 1), a->id & (CallTable::kMaxCalls - 1));
  EXPECT_NE(b->id, a->id);
  EXPECT_EQ(table.take(a->id), nullptr);
  EXPECT_NE(b->serial, a->serial);
  EXPECT_EQ(table.take(b->id, a->serial), nullptr);  // A deadline of the slot's earlier call.
  EXPECT_EQ(table.take(b->id, b->serial), &second);
}

TEST(CallTable, ForgedIdsFindNothing) {
  TimerQueue timers;
  CallTable table(timers);
  PendingCall call;
  const auto a = table.add(call, 1);
  ASSERT_TRUE(a);
  EXPECT_EQ(table.take(0), nullptr);
  EXPECT_EQ(table.take(a->id + 1), nullptr);                              // A slot never used.
  EXPECT_EQ(table.take(a->id ^ (1u << CallTable::kIndexBits)), nullptr);  // Wrong generation.
  EXPECT_EQ(table.take(~0u), nullptr);
  EXPECT_EQ(table.take(a->id), &call);
}

TEST(CallTable, GenerationsWrapAndNeverMakeIdZero) {
  TimerQueue timers;
  CallTable table(timers);
  PendingCall call;
  std::set<std::uint32_t> ids;
  for (std::uint32_t i = 0; i < CallTable::kLastGeneration + 2; ++i) {
    const auto entry = table.add(call, 0);
    ASSERT_TRUE(entry);
    ASSERT_NE(entry->id, 0u);
    ids.insert(entry->id);
    ASSERT_EQ(table.take(entry->id), &call);
  }
  // One slot, every generation once, then the first again.
  EXPECT_EQ(ids.size(), CallTable::kLastGeneration);
}

TEST(CallTable, EveryFreedSlotIsReusedBeforeTheTableGrows) {
  TimerQueue timers;
  CallTable table(timers);
  std::vector<PendingCall> calls(8);
  std::vector<std::uint32_t> ids;
  for (auto& call : calls)
    ids.push_back(table.add(call, 0)->id);
  std::set<std::uint32_t> freed;
  for (std::size_t i = 0; i < calls.size(); i += 2) {
    ASSERT_EQ(table.take(ids[i]), &calls[i]);
    freed.insert(ids[i] & (CallTable::kMaxCalls - 1));
  }
  std::set<std::uint32_t> reused;
  std::vector<PendingCall> more(freed.size() + 1);
  for (auto& call : more)
    reused.insert(table.add(call, 0)->id & (CallTable::kMaxCalls - 1));
  // The four freed slots, and one new one past the eight.
  EXPECT_EQ(reused.size(), freed.size() + 1);
  for (std::uint32_t index : freed)
    EXPECT_TRUE(reused.count(index)) << index;
  EXPECT_TRUE(reused.count(static_cast<std::uint32_t>(calls.size())));
}

TEST(CallTable, AFinishedCallsDeadlineLeavesTheTimers) {
  TimerQueue timers;
  CallTable table(timers);
  PendingCall timed, untimed;
  const auto a = table.add(timed, 1);
  const auto b = table.add(untimed, 1);
  ASSERT_TRUE(a && b);
  timers.add_deadline(mk::Instant{} + 1s, a->id, a->serial, 7, 1);
  table.set_timed(a->id);
  EXPECT_EQ(timers.size(), 1u);
  EXPECT_EQ(table.take(b->id), &untimed);
  EXPECT_EQ(timers.size(), 1u);
  EXPECT_EQ(table.take(a->id), &timed);
  EXPECT_EQ(timers.size(), 0u);
}

TEST(CallTable, DrainToTakesOnlyTheCallsToThatKernel) {
  TimerQueue timers;
  CallTable table(timers);
  PendingCall to_one, to_two, also_to_one;
  const auto a = table.add(to_one, 1);
  const auto b = table.add(to_two, 2);
  const auto c = table.add(also_to_one, 1);
  ASSERT_TRUE(a && b && c);
  std::set<PendingCall*> drained;
  table.drain_to(1, [&](PendingCall& call) { drained.insert(&call); });
  EXPECT_EQ(drained, (std::set<PendingCall*>{&to_one, &also_to_one}));
  EXPECT_EQ(table.take(a->id), nullptr);
  EXPECT_EQ(table.in_flight(), 1u);
  // The drained slots are free again, and the other call is still found.
  EXPECT_TRUE(table.add(to_one, 3));
  EXPECT_EQ(table.take(b->id), &to_two);
}

TEST(CallTable, AFullTableRegistersNothingAndSaysWhy) {
  TimerQueue timers;
  CallTable table(timers);
  PendingCall call;
  for (std::uint32_t i = 0; i < CallTable::kMaxCalls; ++i)
    ASSERT_TRUE(table.add(call, 0)) << i;
  EXPECT_FALSE(table.add(call, 0));
  EXPECT_EQ(table.in_flight(), CallTable::kMaxCalls);
  EXPECT_EQ(CallTable::full_error().code, mk::Errc::full);
  // A call that ends makes room for one more.
  table.drain([](PendingCall&) {});
  EXPECT_EQ(table.in_flight(), 0u);
  EXPECT_TRUE(table.add(call, 0));
}

}  // namespace
