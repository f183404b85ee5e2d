// One geometry rule: the options the transport derives from the SKB's facts are the channel
// make_channel builds, on every machine the tests know; facts no channel can be laid out with
// are refused naming the fact; a ring laid out for another separation is refused.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mk/channel.h"
#include "mk/channel_geometry.h"
#include "mk/skb.h"
#include "mk/slot_format.h"
#include "skb/skb_test_support.h"
#include "transport/channel_options.h"
#include "transport/urpc_channel.h"

namespace mk {
namespace {

// Messages of a whole slot (`slot_payload` bytes) a fresh channel takes before it reports
// full: one per slot (urpc packs smaller ones several to a slot).
std::size_t capacity_of(ChannelSender& sender, std::size_t slot_payload) {
  const std::vector<std::byte> whole_slot(slot_payload);
  std::size_t sent = 0;
  while (sender.try_send(1, whole_slot) == SendStatus::ok)
    ++sent;
  return sent;
}

void expect_refused(const Skb& skb, const std::string& facts, const std::string& named,
                    std::optional<std::size_t> slots = std::nullopt) {
  Skb target = skb;
  ASSERT_TRUE(target.assert_facts_json(facts, "f.json").ok()) << facts;
  const CoreId core = target.usable_cores().front();
  auto refused = channel_options_for(target, core, core, slots);
  ASSERT_FALSE(refused.ok()) << facts;
  EXPECT_EQ(refused.error().code, Errc::invalid_argument) << facts;
  EXPECT_NE(refused.error().message.find(named), std::string::npos)
      << facts << ": " << refused.error().message;
}

TEST(ChannelGeometry, TheDerivedOptionsAreTheChannelBuiltOnEveryMachine) {
  for (const test::TopologyCase& machine : test::all_topologies()) {
    const Skb skb = test::load_or_fail(machine.argument);
    const CoreId sender = skb.usable_cores().front();
    std::vector<std::uint64_t> seen_l2;
    for (CoreId receiver : skb.usable_cores()) {
      auto options = channel_options_for(skb, sender, receiver);
      ASSERT_TRUE(options.ok()) << machine.label << " " << receiver << ": "
                                << options.error().describe();
      EXPECT_EQ(options->line_size, skb.cache_line_size()) << machine.label;
      EXPECT_EQ(options->separation, skb.prefetch_pair_distance()) << machine.label;
      EXPECT_EQ(options->receiver_numa_node, skb.numa_node_of(receiver).value());
      EXPECT_GE(options->slots, min_ring_slots(options->line_size)) << machine.label;
      EXPECT_LE(options->slots, kDefaultRingSlots) << machine.label;
      // Build one channel per distinct shape: the ring depends on the receiver's L2 alone.
      if (std::find(seen_l2.begin(), seen_l2.end(), options->slots) != seen_l2.end()) continue;
      seen_l2.push_back(options->slots);
      ChannelOptions here = *options;
      here.receiver_numa_node = -1;  // The described machine's nodes are not this host's.
      for (ChannelKind kind : {ChannelKind::urpc, ChannelKind::lockfree, ChannelKind::local}) {
        auto ends = make_channel(kind, here);
        ASSERT_TRUE(ends.ok()) << machine.label << " " << to_string(kind) << ": "
                               << ends.error().describe();
        EXPECT_EQ(capacity_of(*ends->sender, options->line_size - transport::kHeaderSize),
                  options->slots)
            << machine.label << " " << to_string(kind);
        EXPECT_EQ(single_slot_payload(here).value(), options->line_size - transport::kHeaderSize);
      }
      // A kMaxPayload message fits an empty ring of the fewest slots the rule allows.
      here.slots = min_ring_slots(here.line_size);
      auto smallest = make_channel(ChannelKind::urpc, here);
      ASSERT_TRUE(smallest.ok()) << machine.label;
      const std::vector<std::byte> largest(kMaxPayload);
      EXPECT_EQ(smallest->sender->try_send(2, largest), SendStatus::ok) << machine.label;
    }
  }
}

TEST(ChannelGeometry, TheRingIsBoundedByHalfTheReceiversL2) {
  // 16 KiB of L2: 8 KiB of ring, 128 lines of 64 bytes.
  const Skb small = test::load_or_fail("pack:1 l2:1(size=16384) core:2 pu:1");
  EXPECT_EQ(channel_options_for(small, 0, 1)->slots, 128u);
  // 4 KiB of L2 would allow 32 slots, fewer than a kMaxPayload message needs.
  const Skb tiny = test::load_or_fail("pack:1 l2:1(size=4096) core:2 pu:1");
  EXPECT_EQ(channel_options_for(tiny, 0, 1)->slots, min_ring_slots(64));
  // Config::ring_slots and an asserted ring_slots override the bound.
  EXPECT_EQ(channel_options_for(small, 0, 1, 1024)->slots, 1024u);
  Skb asserted = small;
  ASSERT_TRUE(asserted.assert_facts_json(R"({"ring_slots": 512})", "f.json").ok());
  EXPECT_EQ(channel_options_for(asserted, 0, 1)->slots, 512u);
  EXPECT_EQ(channel_options_for(asserted, 0, 1, 64)->slots, 64u);
}

TEST(ChannelGeometry, FactsNoChannelCanBeLaidOutWithAreRefusedNamingTheFact) {
  const Skb skb = test::load_or_fail("pack:1 numa:1 core:2 pu:1");
  expect_refused(skb, R"({"cache_line_size": 16})", "the SKB's cache_line_size (asserted) is 16");
  expect_refused(skb, R"({"cache_line_size": 512})", "the SKB's cache_line_size (asserted) is 512");
  expect_refused(skb, R"({"ring_slots": 100})", "the SKB's ring_slots (asserted) is 100");
  // 32-byte lines need 128 slots for a kMaxPayload message; 64 was enough for 64-byte lines.
  expect_refused(skb, R"({"cache_line_size": 32, "ring_slots": 64})", "from 128");
  expect_refused(skb, R"({"prefetch_pair_distance": 512})",
                 "the SKB's prefetch_pair_distance (asserted) is 512");
  expect_refused(skb, R"({"notes": []})", "ring_slots is 100", 100);
  expect_refused(skb, R"({"notes": []})", "ring_slots is 0", 0);
  // An unknown core is not_found, not a geometry error.
  EXPECT_EQ(channel_options_for(skb, 0, 99).error().code, Errc::not_found);
}

TEST(ChannelGeometry, BadOptionsAreRefusedByTheSameRule) {
  auto separation = make_channel(ChannelKind::urpc, {.line_size = 64, .separation = 32});
  ASSERT_FALSE(separation.ok());
  EXPECT_NE(separation.error().message.find("ChannelOptions::separation is 32"), std::string::npos);
  auto beyond = make_channel(ChannelKind::urpc, {.line_size = 64, .separation = 512});
  ASSERT_FALSE(beyond.ok());
  EXPECT_NE(beyond.error().message.find("ChannelOptions::separation is 512"), std::string::npos);
  EXPECT_TRUE(make_channel(ChannelKind::urpc, {.line_size = 64, .separation = 256}).ok());
}

TEST(ChannelGeometry, TheRingsControlWordsAreOneSeparationApart) {
  auto g = transport::make_geometry({.slots = 64, .line_size = 64, .separation = 128});
  ASSERT_TRUE(g.ok());
  // Two aux lines round up to one separation; then the receiver's word, the once-written words.
  EXPECT_EQ(transport::shared_urpc_slots_offset(*g, 2), 3 * 128u);
  EXPECT_EQ(transport::shared_urpc_bytes(*g, 2), 3 * 128u + 64 * 64u);
  auto line = transport::make_geometry({.slots = 64, .line_size = 64});
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(line->separation, 64u);
  EXPECT_EQ(transport::shared_urpc_slots_offset(*line, 2), 4 * 64u);
}

TEST(ChannelGeometry, ARingLaidOutForAnotherSeparationIsRefused) {
  auto g = transport::make_geometry({.slots = 64, .line_size = 64, .separation = 128});
  auto other = transport::make_geometry({.slots = 64, .line_size = 64, .separation = 64});
  ASSERT_TRUE(g.ok() && other.ok());
  auto receiving = transport::make_shared_urpc_receiver(*g, -1, 1);
  ASSERT_TRUE(receiving.ok());
  auto refused = transport::attach_urpc_sender(*other, receiving->fd, 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("expected"), std::string::npos) << refused.error().message;
  EXPECT_TRUE(transport::attach_urpc_sender(*g, receiving->fd, 1).ok());
}

}  // namespace
}  // namespace mk
