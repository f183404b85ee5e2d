// NodeMemory's allocator: allocation, coalescing, exhaustion, misuse, and concurrent use.
#include "mk/node_memory.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <thread>
#include <vector>

namespace {

using mk::Errc;
using mk::NodeMemory;

const std::size_t kPage = NodeMemory::page_size();

NodeMemory make_pool(std::size_t pages) {
  auto pool = NodeMemory::create(0, pages * kPage);
  EXPECT_TRUE(pool.ok()) << pool.error().describe();
  return std::move(pool).value();
}

void expect_usage(const NodeMemory& pool, std::size_t free_pages, std::size_t largest_pages,
                  std::size_t free_blocks, std::size_t regions) {
  const NodeMemory::Usage usage = pool.usage();
  EXPECT_EQ(usage.free_bytes, free_pages * kPage);
  EXPECT_EQ(usage.largest_free_block, largest_pages * kPage);
  EXPECT_EQ(usage.free_blocks, free_blocks);
  EXPECT_EQ(usage.allocated_regions, regions);
}

TEST(NodeMemoryAllocator, AllocatesFirstFitAndCoalescesOnFree) {
  NodeMemory pool = make_pool(16);
  expect_usage(pool, 16, 16, 1, 0);
  const auto a = pool.allocate(1, kPage).value();  // rounded up to a page
  const auto b = pool.allocate(2 * kPage, kPage).value();
  const auto c = pool.allocate(kPage, kPage).value();
  EXPECT_EQ(a.offset, 0u);
  EXPECT_EQ(a.size, kPage);
  EXPECT_EQ(b.offset, kPage);
  EXPECT_EQ(b.size, 2 * kPage);
  EXPECT_EQ(c.offset, 3 * kPage);
  expect_usage(pool, 12, 12, 1, 3);

  ASSERT_TRUE(pool.free(b).ok());
  expect_usage(pool, 14, 12, 2, 2);
  // First fit: the hole b left takes the next page.
  const auto d = pool.allocate(kPage, kPage).value();
  EXPECT_EQ(d.offset, kPage);
  ASSERT_TRUE(pool.free(d).ok());
  ASSERT_TRUE(pool.free(a).ok());  // merges with the block after it
  expect_usage(pool, 15, 12, 2, 1);
  ASSERT_TRUE(pool.free(c).ok());  // merges with both neighbours
  expect_usage(pool, 16, 16, 1, 0);
}

TEST(NodeMemoryAllocator, AlignsAndKeepsTheSkippedPagesFree) {
  NodeMemory pool = make_pool(16);
  const auto first = pool.allocate(kPage, kPage).value();
  const auto aligned = pool.allocate(kPage, 4 * kPage).value();
  EXPECT_EQ(aligned.offset, 4 * kPage);
  expect_usage(pool, 14, 11, 2, 2);
  const auto filler = pool.allocate(3 * kPage, kPage).value();
  EXPECT_EQ(filler.offset, kPage);
  const auto whole = pool.allocate(8 * kPage, 8 * kPage).value();
  EXPECT_EQ(whole.offset, 8 * kPage);
  for (const auto& region : {first, aligned, filler, whole})
    ASSERT_TRUE(pool.free(region).ok());
  expect_usage(pool, 16, 16, 1, 0);
}

TEST(NodeMemoryAllocator, ExhaustionIsAnErrorAndLosesNothing) {
  NodeMemory pool = make_pool(8);
  std::vector<NodeMemory::Region> regions;
  for (int i = 0; i < 4; ++i)
    regions.push_back(pool.allocate(2 * kPage, kPage).value());
  expect_usage(pool, 0, 0, 0, 4);
  auto more = pool.allocate(kPage, kPage);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.error().code, Errc::full);
  expect_usage(pool, 0, 0, 0, 4);

  // Free pages that no aligned block holds: still full, still nothing lost.
  ASSERT_TRUE(pool.free(regions[1]).ok());
  auto aligned = pool.allocate(2 * kPage, 4 * kPage);
  ASSERT_FALSE(aligned.ok());
  EXPECT_EQ(aligned.error().code, Errc::full);
  EXPECT_NE(aligned.error().message.find("largest block"), std::string::npos);
  expect_usage(pool, 2, 2, 1, 3);

  auto huge = pool.allocate(9 * kPage, kPage);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().code, Errc::too_large);

  for (std::size_t i : {0u, 2u, 3u})
    ASSERT_TRUE(pool.free(regions[i]).ok());
  expect_usage(pool, 8, 8, 1, 0);
  EXPECT_TRUE(pool.allocate(8 * kPage, 8 * kPage).ok());
}

TEST(NodeMemoryAllocator, BadAllocationArgumentsAreErrors) {
  NodeMemory pool = make_pool(4);
  EXPECT_EQ(pool.allocate(0, kPage).error().code, Errc::invalid_argument);
  EXPECT_EQ(pool.allocate(kPage, 0).error().code, Errc::invalid_argument);
  EXPECT_EQ(pool.allocate(kPage, kPage / 2).error().code, Errc::invalid_argument);
  EXPECT_EQ(pool.allocate(kPage, 3 * kPage).error().code, Errc::invalid_argument);
  EXPECT_EQ(pool.allocate(kPage, 8 * kPage).error().code, Errc::invalid_argument);
  expect_usage(pool, 4, 4, 1, 0);
}

TEST(NodeMemoryAllocator, MisuseIsAnErrorAndChangesNothing) {
  NodeMemory pool = make_pool(16);
  NodeMemory other = make_pool(16);
  const auto a = pool.allocate(2 * kPage, kPage).value();
  const auto b = pool.allocate(2 * kPage, kPage).value();
  const auto foreign = other.allocate(2 * kPage, kPage).value();
  ASSERT_TRUE(pool.free(a).ok());
  expect_usage(pool, 14, 12, 2, 1);

  auto code_of = [&](NodeMemory::Region region) { return pool.free(region).error().code; };
  EXPECT_EQ(code_of(a), Errc::not_found);               // double free
  EXPECT_EQ(code_of(foreign), Errc::invalid_argument);  // another pool's region
  NodeMemory::Region misaligned = b;
  misaligned.offset += 1;
  EXPECT_EQ(code_of(misaligned), Errc::invalid_argument);
  NodeMemory::Region empty = b;
  empty.size = 0;
  EXPECT_EQ(code_of(empty), Errc::invalid_argument);
  NodeMemory::Region outside = b;
  outside.offset = 16 * kPage;
  EXPECT_EQ(code_of(outside), Errc::invalid_argument);
  NodeMemory::Region wrapping = b;
  wrapping.offset = 15 * kPage;
  wrapping.size = ~std::size_t{0} / kPage * kPage;
  EXPECT_EQ(code_of(wrapping), Errc::invalid_argument);
  NodeMemory::Region inside = b;
  inside.offset += kPage;
  inside.size = kPage;
  EXPECT_EQ(code_of(inside), Errc::invalid_argument);  // overlaps b
  NodeMemory::Region covering = b;
  covering.offset = 0;
  covering.size = 4 * kPage;
  EXPECT_EQ(code_of(covering), Errc::invalid_argument);  // overlaps b
  NodeMemory::Region forged = b;
  forged.serial += 100;
  EXPECT_EQ(code_of(forged), Errc::not_found);
  expect_usage(pool, 14, 12, 2, 1);

  // A stale region whose bytes went to a new allocation does not free that allocation.
  const auto again = pool.allocate(2 * kPage, kPage).value();
  EXPECT_EQ(again.offset, a.offset);
  auto stale = pool.free(a);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, Errc::not_found);
  EXPECT_NE(stale.error().message.find("stale"), std::string::npos);
  expect_usage(pool, 12, 12, 1, 2);

  ASSERT_TRUE(pool.free(again).ok());
  ASSERT_TRUE(pool.free(b).ok());
  expect_usage(pool, 16, 16, 1, 0);
  ASSERT_TRUE(other.free(foreign).ok());
}

TEST(NodeMemoryAllocator, ConcurrentAllocationsLeaveThePoolWhole) {
  constexpr std::size_t kPages = 64;
  constexpr int kThreads = 4;
  constexpr int kRounds = 300;
  NodeMemory pool = make_pool(kPages);
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&pool, &failures, t] {
      std::mt19937 random(static_cast<unsigned>(t));
      std::vector<NodeMemory::Region> held;
      for (int round = 0; round < kRounds; ++round) {
        if (held.size() < 3 && random() % 3 != 0) {
          const std::size_t pages = 1 + random() % 4;
          const std::size_t alignment = kPage << (random() % 3);
          auto region = pool.allocate(pages * kPage, alignment);
          if (!region) {
            // Others hold the pool; full is the only acceptable failure.
            if (region.error().code != Errc::full) ++failures[t];
            continue;
          }
          const std::byte mark{static_cast<unsigned char>(t + 1)};
          const std::vector<std::byte> pattern(region->size, mark);
          if (!pool.write(*region, 0, pattern)) ++failures[t];
          held.push_back(*region);
        } else if (!held.empty()) {
          const NodeMemory::Region region = held.back();
          held.pop_back();
          std::vector<std::byte> seen(region.size);
          if (!pool.read(region, 0, seen)) ++failures[t];
          // Nobody else wrote into this thread's region.
          for (std::byte b : seen) {
            if (b != std::byte{static_cast<unsigned char>(t + 1)}) {
              ++failures[t];
              break;
            }
          }
          if (!pool.free(region)) ++failures[t];
        }
      }
      for (const auto& region : held) {
        if (!pool.free(region)) ++failures[t];
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(failures[t], 0) << "thread " << t;
  expect_usage(pool, kPages, kPages, 1, 0);
}

}  // namespace
