// hwloc reads untrusted input first in mk-hwloc-probe, a short-lived process of its own
// (docs/skb.md, "Untrusted input"): a crash inside hwloc is an error, the probe is reaped, no
// descriptor leaks, it works from a program with many threads, and what it survives the
// caller survives.
#include <dirent.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mk/skb.h"
#include "skb/skb_test_support.h"

namespace mk {
namespace {

bool mentions(const Error& err, const std::string& text) {
  return err.message.find(text) != std::string::npos;
}

std::size_t open_descriptors() {
  std::size_t count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr)
      ++count;
    closedir(dir);
  }
  return count;
}

// No child of this process is left, running or as a zombie.
bool no_children() {
  errno = 0;
  return waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

const std::string kCrashesHwloc[] = {"crash-hwloc-segv-misspelt-attribute.xml",
                                     "crash-deep-objects.xml"};

TEST(SkbUntrustedXml, AFileThatCrashesHwlocIsAnError) {
  for (const std::string& name : kCrashesHwloc) {
    SCOPED_TRACE(name);
    const std::string path = test::fuzz_input("topology_xml", name);
    auto skb = Skb::from_xml_file(path);
    ASSERT_FALSE(skb.ok());
    EXPECT_EQ(skb.error().code, Errc::parse_error);
    EXPECT_TRUE(mentions(skb.error(), "topology file '" + path + "'")) << skb.error().message;
    EXPECT_TRUE(mentions(skb.error(), "hwloc died of SIGSEGV")) << skb.error().message;
  }
}

TEST(SkbUntrustedXml, TextInMemoryIsCheckedTheSameWay) {
  const std::string crash =
      test::read_file(test::fuzz_input("topology_xml", "crash-hwloc-segv-misspelt-attribute.xml"));
  auto bad = Skb::from_xml_text(crash, "memory.xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(mentions(bad.error(), "'memory.xml'")) << bad.error().message;
  const std::string good = test::read_file(test::topology_file("16amd64-4distances.xml"));
  auto skb = Skb::from_xml_text(good, "memory.xml");
  ASSERT_TRUE(skb.ok()) << skb.error().describe();
  EXPECT_EQ(skb->usable_cores().size(), 16u);
  EXPECT_EQ(skb->origin(), "xml file memory.xml");
}

TEST(SkbUntrustedXml, ChildrenAreReapedAndNoDescriptorLeaks) {
  ASSERT_TRUE(no_children());
  const std::size_t before = open_descriptors();
  for (int round = 0; round < 5; ++round) {
    EXPECT_TRUE(Skb::from_xml_file(test::topology_file("fakecpukinds.xml")).ok());
    EXPECT_FALSE(Skb::from_xml_text("<topology>garbage", "garbage.xml").ok());
    for (const std::string& name : kCrashesHwloc)
      EXPECT_FALSE(Skb::from_xml_file(test::fuzz_input("topology_xml", name)).ok());
  }
  EXPECT_EQ(open_descriptors(), before);
  EXPECT_TRUE(no_children());
}

// Another part of the program may reap every child (SIGCHLD ignored, or its own waitpid(-1)):
// the probe's report still arrives through its pipe.
TEST(SkbUntrustedXml, WorksWhenChildrenAreReapedElsewhere) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction previous {};
  ASSERT_EQ(sigaction(SIGCHLD, &ignore, &previous), 0);
  auto good = Skb::from_xml_file(test::topology_file("fakecpukinds.xml"));
  auto bad = Skb::from_xml_file(test::fuzz_input("topology_xml", kCrashesHwloc[0]));
  sigaction(SIGCHLD, &previous, nullptr);
  EXPECT_TRUE(good.ok()) << good.error().describe();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::parse_error);
}

// Loads from several threads at once, while other threads allocate and free (malloc's locks
// are then often held at fork time).
TEST(SkbUntrustedXml, WorksFromManyThreads) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> churn;
  for (int i = 0; i < 2; ++i) {
    churn.emplace_back([&] {
      while (!stop.load()) {
        std::vector<std::string> garbage(64, std::string(100, 'x'));
      }
    });
  }
  std::atomic<int> loaded{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> loaders;
  for (int i = 0; i < 4; ++i) {
    loaders.emplace_back([&] {
      for (int round = 0; round < 4; ++round) {
        if (Skb::from_xml_file(test::topology_file("16amd64-4distances.xml")).ok()) ++loaded;
        if (!Skb::from_xml_file(test::fuzz_input("topology_xml", kCrashesHwloc[0])).ok()) ++refused;
      }
    });
  }
  for (std::thread& loader : loaders)
    loader.join();
  stop = true;
  for (std::thread& thread : churn)
    thread.join();
  EXPECT_EQ(loaded.load(), 16);
  EXPECT_EQ(refused.load(), 16);
  EXPECT_TRUE(no_children());
}

// hwloc leaks memory on some descriptions it refuses (an index list parsed before a bad
// attribute): the probe parses those too. This one passes mk's own checks, so hwloc sees it.
TEST(SkbUntrustedXml, SyntheticDescriptionsHwlocRefusesAreErrors) {
  const std::string description = "pack:2 [numa(memor=2GB)] core:2 pu:2(indexes=0,2,1,3,4,6,5,7)";
  auto skb = Skb::from_synthetic(description);
  ASSERT_FALSE(skb.ok());
  EXPECT_EQ(skb.error().code, Errc::parse_error);
  EXPECT_TRUE(mentions(skb.error(), "hwloc rejects it")) << skb.error().message;
  EXPECT_TRUE(no_children());
}

// An export hwloc parses by recursing `depth` objects deep.
std::string nested_groups(int depth) {
  const std::string sets =
      "cpuset=\"0x1\" complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\"";
  std::string xml = "<topology version=\"2.0\"><object type=\"Machine\" os_index=\"0\" " + sets +
                    " allowed_cpuset=\"0x1\" allowed_nodeset=\"0x1\"><object type=\"NUMANode\" "
                    "os_index=\"0\" " +
                    sets + "/>";
  for (int i = 0; i < depth; ++i)
    xml += "<object type=\"Group\" " + sets + ">";
  xml += "<object type=\"PU\" os_index=\"0\" " + sets + "/>";
  for (int i = 0; i <= depth; ++i)
    xml += "</object>";
  return xml + "</topology>";
}

struct ThreadLoad {
  std::string xml;
  std::optional<Result<Skb>> result;
};

// The probe's stack is what the calling thread has left: an export that needs more than a
// small thread's stack is an error there (the probe dies, not the caller), and loads on the
// main thread.
TEST(SkbUntrustedXml, TheProbeHasNoMoreStackThanItsCaller) {
  ThreadLoad load{nested_groups(3000), std::nullopt};
  ASSERT_TRUE(Skb::from_xml_text(load.xml, "deep.xml").ok());
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  ASSERT_EQ(pthread_attr_setstacksize(&attributes, 1 << 20), 0);
  pthread_t thread;
  auto run = [](void* argument) -> void* {
    auto& job = *static_cast<ThreadLoad*>(argument);
    job.result = Skb::from_xml_text(job.xml, "deep.xml");
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attributes, run, &load), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attributes);
  ASSERT_TRUE(load.result.has_value());
  ASSERT_FALSE(load.result->ok());
  EXPECT_TRUE(mentions(load.result->error(), "hwloc died of SIGSEGV"))
      << load.result->error().message;
}

TEST(SkbUntrustedXml, AMissingProbeIsAnErrorNamingIt) {
  ASSERT_EQ(setenv("MK_HWLOC_PROBE", "/nonexistent/mk-hwloc-probe", 1), 0);
  auto skb = Skb::from_xml_file(test::topology_file("fakecpukinds.xml"));
  auto synthetic = Skb::from_synthetic("pack:2 core:2 pu:1");
  unsetenv("MK_HWLOC_PROBE");
  ASSERT_FALSE(skb.ok());
  EXPECT_EQ(skb.error().code, Errc::io_error);
  EXPECT_TRUE(mentions(skb.error(), "cannot start mk's hwloc probe '/nonexistent/mk-hwloc-probe'"))
      << skb.error().message;
  EXPECT_FALSE(synthetic.ok());
}

}  // namespace
}  // namespace mk
