// NodeMemory's memory: creation errors, reads and writes, other mappings of its memfd (in this
// process and in a forked child), placement on this host's node, and pools made from an SKB.
#include <gtest/gtest.h>
#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "mk/memory_request.h"
#include "mk/node_memory.h"
#include "mk/skb.h"

namespace {

using mk::Errc;
using mk::MemoryRequest;
using mk::NodeMemory;
using mk::Skb;

const std::size_t kPage = NodeMemory::page_size();

std::vector<std::byte> text(const std::string& s) {
  std::vector<std::byte> bytes(s.size());
  std::memcpy(bytes.data(), s.data(), s.size());
  return bytes;
}

TEST(NodeMemory, CreationErrorsNameTheBadValue) {
  EXPECT_EQ(NodeMemory::create(0, 0).error().code, Errc::invalid_argument);
  auto odd = NodeMemory::create(0, kPage + 1);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().code, Errc::invalid_argument);
  EXPECT_NE(odd.error().message.find(std::to_string(kPage + 1)), std::string::npos);
  EXPECT_EQ(NodeMemory::create(-2, kPage).error().code, Errc::invalid_argument);
  auto missing = NodeMemory::create(4095, kPage);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  EXPECT_NE(missing.error().message.find("NUMA node 4095"), std::string::npos);
}

TEST(NodeMemory, UnboundPoolHasNoNode) {
  auto pool = NodeMemory::create(-1, 4 * kPage);
  ASSERT_TRUE(pool.ok()) << pool.error().describe();
  EXPECT_EQ(pool->node(), -1);
  EXPECT_FALSE(pool->bound());
  EXPECT_EQ(pool->size(), 4 * kPage);
}

TEST(NodeMemory, ReadWriteRoundTripAndBounds) {
  NodeMemory pool = NodeMemory::create(0, 8 * kPage).value();
  const auto region = pool.allocate(2 * kPage, kPage).value();
  const auto hello = text("hello, node");
  ASSERT_TRUE(pool.write(region, kPage - 3, hello).ok());  // across a page boundary
  std::vector<std::byte> back(hello.size());
  ASSERT_TRUE(pool.read(region, kPage - 3, back).ok());
  EXPECT_EQ(back, hello);
  const std::span<std::byte> bytes = pool.bytes(region).value();
  EXPECT_EQ(bytes.size(), region.size);
  EXPECT_EQ(std::memcmp(bytes.data() + kPage - 3, hello.data(), hello.size()), 0);

  // The last byte is in bounds, one more is not, nor is an offset that wraps.
  std::vector<std::byte> one(1);
  EXPECT_TRUE(pool.write(region, region.size - 1, one).ok());
  EXPECT_EQ(pool.write(region, region.size, one).error().code, Errc::invalid_argument);
  EXPECT_TRUE(pool.read(region, region.size, std::span<std::byte>()).ok());
  EXPECT_EQ(pool.read(region, region.size - 2, back).error().code, Errc::invalid_argument);
  EXPECT_EQ(pool.read(region, ~std::size_t{0}, one).error().code, Errc::invalid_argument);
  EXPECT_EQ(std::memcmp(bytes.data() + kPage - 3, hello.data(), hello.size()), 0);

  // A freed region is no longer accessible, and its bytes come back zeroed.
  ASSERT_TRUE(pool.free(region).ok());
  EXPECT_EQ(pool.read(region, 0, back).error().code, Errc::not_found);
  EXPECT_EQ(pool.write(region, 0, hello).error().code, Errc::not_found);
  EXPECT_EQ(pool.bytes(region).error().code, Errc::not_found);
  const auto again = pool.allocate(2 * kPage, kPage).value();
  ASSERT_EQ(again.offset, region.offset);
  ASSERT_TRUE(pool.read(again, kPage - 3, back).ok());
  EXPECT_EQ(back, std::vector<std::byte>(hello.size()));
}

TEST(NodeMemory, SecondMappingOfTheFdSeesTheSameBytes) {
  NodeMemory pool = NodeMemory::create(0, 8 * kPage).value();
  (void)pool.allocate(kPage, kPage).value();
  const auto region = pool.allocate(2 * kPage, kPage).value();
  ASSERT_NE(region.offset, 0u);
  void* view = ::mmap(nullptr, region.size, PROT_READ | PROT_WRITE, MAP_SHARED, pool.fd(),
                      static_cast<off_t>(region.offset));
  ASSERT_NE(view, MAP_FAILED) << std::strerror(errno);
  auto* other = static_cast<std::byte*>(view);

  const auto there = text("written by the pool");
  ASSERT_TRUE(pool.write(region, 100, there).ok());
  EXPECT_EQ(std::memcmp(other + 100, there.data(), there.size()), 0);
  const auto back = text("written through the other mapping");
  std::memcpy(other + kPage, back.data(), back.size());
  std::vector<std::byte> seen(back.size());
  ASSERT_TRUE(pool.read(region, kPage, seen).ok());
  EXPECT_EQ(seen, back);
  ::munmap(view, region.size);

  // Sealed: no holder of the fd can resize the pages away from under the pool.
  EXPECT_NE(::ftruncate(pool.fd(), 0), 0);
}

TEST(NodeMemory, ForkedChildWritesThroughItsOwnMapping) {
  NodeMemory pool = NodeMemory::create(0, 4 * kPage).value();
  const auto region = pool.allocate(kPage, kPage).value();
  const auto message = text("from the child");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    // Only async-signal-safe calls and plain memory here, then _exit: no gtest in the child.
    void* view = ::mmap(nullptr, region.size, PROT_READ | PROT_WRITE, MAP_SHARED, pool.fd(),
                        static_cast<off_t>(region.offset));
    if (view == MAP_FAILED) ::_exit(2);
    std::memcpy(static_cast<std::byte*>(view) + 8, message.data(), message.size());
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  std::vector<std::byte> seen(message.size());
  ASSERT_TRUE(pool.read(region, 8, seen).ok());
  EXPECT_EQ(seen, message);
}

TEST(NodeMemory, PlacedOnThisHostsNodeZero) {
  NodeMemory pool = NodeMemory::create(0, 4 * kPage).value();
  EXPECT_EQ(pool.node(), 0);
  const bool numa = numa_available() >= 0;
  EXPECT_EQ(pool.bound(), numa);
  if (!numa) GTEST_SKIP() << "no NUMA support here: the pool is unbound";
  const auto region = pool.allocate(kPage, kPage).value();
  std::span<std::byte> bytes = pool.bytes(region).value();
  bytes[0] = std::byte{1};
  int node = -1;
  ASSERT_EQ(::get_mempolicy(&node, nullptr, 0, bytes.data(), MPOL_F_NODE | MPOL_F_ADDR), 0)
      << std::strerror(errno);
  EXPECT_EQ(node, 0);
  int mode = -1;
  ASSERT_EQ(::get_mempolicy(&mode, nullptr, 0, bytes.data(), MPOL_F_ADDR), 0)
      << std::strerror(errno);
  EXPECT_EQ(mode, MPOL_BIND);
}

TEST(NodeMemory, FromTheLiveSkbUsesTheNodeItPicks) {
  const Skb skb = Skb::discover().value();
  const int largest = skb.memory_node(MemoryRequest::largest_node()).value_or(0);
  auto pool = NodeMemory::create(skb, MemoryRequest::numa_node(largest), 4 * kPage);
  ASSERT_TRUE(pool.ok()) << pool.error().describe();
  EXPECT_EQ(pool->node(), largest);
  auto unknown = NodeMemory::create(skb, MemoryRequest::numa_node(4095), 4 * kPage);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Errc::not_found);
  auto bad_size = NodeMemory::create(skb, MemoryRequest::numa_node(largest), kPage - 1);
  EXPECT_EQ(bad_size.error().code, Errc::invalid_argument);
}

TEST(NodeMemory, AForeignTopologysNodeMustExistOnThisHost) {
  const Skb knl =
      Skb::from_xml_file(std::string(MK_TOPOLOGIES_DIR) + "/64intel64-fakeKNL-SNC4-hybrid.xml")
          .value();
  const auto core = knl.usable_cores().back();
  const int mcdram = knl.memory_node(MemoryRequest::fastest_near(core)).value();
  ASSERT_GT(mcdram, 0);
  auto refused = NodeMemory::create(knl, MemoryRequest::fastest_near(core), 4 * kPage);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::not_found);
  const std::string& message = refused.error().message;
  EXPECT_NE(message.find("NUMA node " + std::to_string(mcdram)), std::string::npos) << message;
  EXPECT_NE(message.find("does not exist on this host"), std::string::npos) << message;
  EXPECT_NE(message.find(knl.origin()), std::string::npos) << message;

  // Node 0, which this host has too, is this host's node 0.
  auto here = NodeMemory::create(knl, MemoryRequest::numa_node(0), 4 * kPage);
  ASSERT_TRUE(here.ok()) << here.error().describe();
  EXPECT_EQ(here->node(), 0);
}

}  // namespace
