// mk-bench vm: the multikernel paper's Figure 7 (unmap, that is TLB shootdown, against core
// count) in one run. VSpace::unmap of a page every kernel touched, each kernel a process that
// removes the mapping from its own page table, beside Linux's munmap of a page every thread of
// one process touched (Linux interrupts the other cores to flush their TLBs); and the
// simulator's unmap on the paper's 8 x 4-core machine and on a 96-core topology, beside the
// paper's readings.
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "layout.h"
#include "mk/capability_service.h"
#include "mk/node_memory.h"
#include "mk/system.h"
#include "mk/vspace.h"
#include "pinned_threads.h"
#include "profile.h"
#include "projection.h"
#include "stats.h"
#include "suite.h"

namespace mk::bench {

/// What kernel 0 asks another kernel before an unmap: write one byte of the page at `address`
/// through its own page table. Outside the anonymous namespace, since mk's task frames that
/// hold it have external linkage.
struct VmTouch {
  static constexpr MessageType kType = 0xE040;
  struct Reply {
    std::uint8_t done;
  };
  std::uint64_t address;
};

namespace {

/// Loads of a shared line before a Linux thread starts yielding between loads.
constexpr std::size_t kSpinsBeforeYield = 4096;
/// Latency samples one kernel task returns at most: few enough to cross back from a kernel
/// process (64 KiB encoded).
constexpr std::size_t kSamplesPerRun = 8'000;
/// Samples one round of vm_rounds returns: map, protect (0 when not measured) and unmap.
constexpr std::size_t kSamplesPerRound = 3;
/// The target of mk's best unmap as a fraction of Linux's munmap on the same cores.
constexpr double kTargetRatio = 0.4;
/// Bytes of the pool the Frame is retyped from.
constexpr std::size_t kPoolPages = 4;

/// Figure 7 of the paper (Baumann et al., The Multikernel, SOSP 2009), read off the graph in
/// cycles of its 2.0 GHz machine: only the core counts read, 2 and 32.
struct PaperPoint {
  std::string_view os;
  std::size_t cores;
  double cycles;
};
constexpr std::array<PaperPoint, 5> kPaper = {{{"barrelfish", 2, 10'300},
                                               {"barrelfish", 32, 17'500},
                                               {"linux", 2, 5'200},
                                               {"linux", 32, 29'500},
                                               {"windows", 32, 46'000}}};
constexpr double kPaperClockGhz = 2.0;

/// Latencies in ns of one side on one number of cores, from every repetition.
struct Figure {
  std::vector<double> map, protect, unmap;
  bool failed = false;
};

std::size_t page_bytes() {
  return NodeMemory::page_size();
}

// ---- Linux: one process, a thread pinned on each core ----

/// A memfd of one page, closed when it goes: what every Linux round maps, as a VSpace maps a
/// Frame of a memfd pool.
class PageFd {
 public:
  static mk::Result<PageFd> create() {
    const int fd = memfd_create("mk-bench-vm", MFD_CLOEXEC);
    if (fd < 0) return error(Errc::io_error, fmt::format("memfd_create: {}", std::strerror(errno)));
    PageFd page(fd);
    if (ftruncate(fd, static_cast<off_t>(page_bytes())) != 0) {
      return error(Errc::io_error, fmt::format("ftruncate of the memfd: {}", std::strerror(errno)));
    }
    return page;
  }
  PageFd(PageFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  PageFd& operator=(PageFd&&) = delete;
  ~PageFd() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const noexcept { return fd_; }

 private:
  explicit PageFd(int fd) noexcept : fd_(fd) {}
  int fd_;
};

/// What the measuring thread posts to the others: a page to touch, once per round.
struct alignas(64) TouchBoard {
  std::atomic<std::uint64_t> round{0};
  std::atomic<std::byte*> page{nullptr};
  std::atomic<std::size_t> touched{0};
  std::atomic<bool> stop{false};
};

/// Waits until `done()`: spins `spins` looks, then yields between looks, so that threads
/// sharing a core let each other run. A thread alone on its core stays running while it
/// yields, so its core keeps the process's address space (and Linux must interrupt it).
template <class Done>
void wait_until(std::size_t spins, Done done) {
  for (std::size_t looks = 0; !done(); ++looks) {
    if (looks >= spins) std::this_thread::yield();
  }
}

/// Thread `thread` writes byte `thread` of the page: the same page (and TLB entry) for every
/// thread, never the same byte, so no two writes race.
void touch(std::byte* page, std::size_t thread) {
  *reinterpret_cast<volatile std::byte*>(page + thread) = std::byte{1};
}

/// Thread `thread`, not the measuring one: touches each page posted, until told to stop.
void serve_linux_touches(TouchBoard& board, std::size_t thread, std::size_t spins) {
  std::uint64_t seen = 0;
  for (;;) {
    wait_until(spins, [&] { return board.stop.load() || board.round.load() != seen; });
    if (board.stop.load()) return;
    seen = board.round.load();
    touch(board.page.load(), thread);
    board.touched.fetch_add(1);
  }
}

/// The measuring thread touches `page`, and has the `others` threads touch it too.
void touch_everywhere(TouchBoard& board, std::byte* page, std::size_t others, std::size_t spins) {
  board.page.store(page);
  board.touched.store(0);
  board.round.fetch_add(1);
  touch(page, 0);
  wait_until(spins, [&] { return board.touched.load() == others; });
}

mk::Result<void> errno_error(const char* what) {
  return error(Errc::io_error, fmt::format("{} of the page: {}", what, std::strerror(errno)));
}

/// `rounds` rounds of mmap, touches everywhere, (mprotect to read, back to read-write, touches
/// again,) munmap; all but the first `warmup` rounds' latencies go to `figure`.
mk::Result<void> linux_rounds(const PageFd& page, TouchBoard& board, std::size_t others,
                              std::size_t rounds, std::size_t warmup, bool with_protect,
                              std::size_t spins, Figure& figure) {
  const std::size_t bytes = page_bytes();
  for (std::size_t i = 0; i < rounds; ++i) {
    const auto t0 = Clock::now();
    void* at = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, page.fd(), 0);
    const auto t1 = Clock::now();
    if (at == MAP_FAILED) return errno_error("mmap");
    auto* mapped = static_cast<std::byte*>(at);
    touch_everywhere(board, mapped, others, spins);
    double protect_ns = 0;
    if (with_protect) {
      const auto t2 = Clock::now();
      const int read_only = mprotect(at, bytes, PROT_READ);
      const auto t3 = Clock::now();
      if (read_only != 0 || mprotect(at, bytes, PROT_READ | PROT_WRITE) != 0) {
        auto failed = errno_error("mprotect");
        munmap(at, bytes);
        return failed;
      }
      protect_ns = ns_between(t2, t3);
      touch_everywhere(board, mapped, others, spins);
    }
    const auto t4 = Clock::now();
    const int unmapped = munmap(at, bytes);
    const auto t5 = Clock::now();
    if (unmapped != 0) return errno_error("munmap");
    if (i < warmup) continue;
    figure.map.push_back(ns_between(t0, t1));
    if (with_protect) figure.protect.push_back(protect_ns);
    figure.unmap.push_back(ns_between(t4, t5));
  }
  return {};
}

/// One repetition on Linux: a thread pinned on each of `cores`; thread 0 measures.
void measure_linux(std::span<const CoreId> cores, const PageFd& page, std::size_t rounds,
                   bool with_protect, Figure& figure) {
  if (figure.failed) return;
  TouchBoard board;
  run_pinned(cores, [&](std::size_t i) {
    if (i != 0) {
      serve_linux_touches(board, i, kSpinsBeforeYield);
      return;
    }
    auto done = linux_rounds(page, board, cores.size() - 1, rounds + rounds / 10, rounds / 10,
                             with_protect, kSpinsBeforeYield, figure);
    if (!done) {
      fmt::print(stderr, "mk-bench vm: linux on {} cores: {}\n", cores.size(),
                 done.error().describe());
      figure.failed = true;
    }
    board.stop.store(true);
  });
}

// ---- mk: a VSpace over kernels that are processes ----

/// On a kernel other than 0: answers VmTouch by storing one byte through its page table.
Task<mk::Result<void>> serve_vm_touches(Kernel& k, VSpace vspace) {
  co_return k.handle<VmTouch>(
      [vspace](VmTouch ask, const MessageContext& context) -> Task<mk::Result<VmTouch::Reply>> {
        // Copies in the frame: the handler's captures and context need not outlive a suspension.
        const VSpace space = vspace;
        Kernel& kernel = context.kernel;
        const std::byte one{1};
        auto stored = co_await space.store(kernel, ask.address, std::span(&one, 1));
        if (!stored) co_return std::move(stored).error();
        co_return VmTouch::Reply{1};
      });
}

/// A Frame of one page of node `node`, retyped from a RAM capability, in k's CSpace.
Task<mk::Result<CapSlot>> make_frame(Kernel& k, CapabilityService caps, int node) {
  auto ram = co_await caps.allocate(k, page_bytes(), node);
  if (!ram) co_return std::move(ram).error();
  auto frames = co_await caps.retype(k, *ram, CapType::frame, 0, page_bytes(), 1);
  if (!frames) co_return std::move(frames).error();
  if (frames->size() != 1) {
    co_return error(Errc::internal, fmt::format("retype made {} frames, not 1", frames->size()));
  }
  co_return frames->front();
}

/// Every one of `kernels` kernels writes a byte at `address`: kernel 0 itself, the others when
/// called, one after another.
Task<mk::Result<void>> touch_all(Kernel& k, VSpace vspace, std::uintptr_t address,
                                 std::uint64_t kernels) {
  const std::byte one{1};
  auto stored = co_await vspace.store(k, address, std::span(&one, 1));
  if (!stored) co_return stored;
  for (std::uint64_t to = 1; to < kernels; ++to) {
    const VmTouch ask{address};
    auto touched = co_await k.call(static_cast<KernelId>(to), ask);
    if (!touched) co_return std::move(touched).error();
  }
  co_return mk::Result<void>{};
}

/// `rounds` rounds on kernel 0 of map, touches everywhere, (protect to read, back to read and
/// write, touches again,) unmap of the first page of the VSpace's range: kSamplesPerRound
/// latencies in ns per round (map, protect or 0, unmap).
Task<mk::Result<std::vector<float>>> vm_rounds(Kernel& k, VSpace vspace, CapSlot frame,
                                               std::uint64_t kernels, std::uint64_t rounds,
                                               std::uint8_t with_protect) {
  const std::size_t bytes = page_bytes();
  const auto address = reinterpret_cast<std::uintptr_t>(vspace.address_range().data());
  const CapRights read_write = CapRights::read | CapRights::write;
  std::vector<float> samples;
  samples.reserve(rounds * kSamplesPerRound);
  for (std::uint64_t i = 0; i < rounds; ++i) {
    const auto t0 = Clock::now();
    auto mapped = co_await vspace.map(k, frame, address, bytes, read_write);
    const auto t1 = Clock::now();
    if (!mapped) co_return std::move(mapped).error();
    auto touched = co_await touch_all(k, vspace, address, kernels);
    if (!touched) co_return std::move(touched).error();
    double protect_ns = 0;
    if (with_protect != 0) {
      const auto t2 = Clock::now();
      auto read_only = co_await vspace.protect(k, address, bytes, CapRights::read);
      const auto t3 = Clock::now();
      if (!read_only) co_return std::move(read_only).error();
      protect_ns = ns_between(t2, t3);
      auto restored = co_await vspace.protect(k, address, bytes, read_write);
      if (!restored) co_return std::move(restored).error();
      auto again = co_await touch_all(k, vspace, address, kernels);
      if (!again) co_return std::move(again).error();
    }
    const auto t4 = Clock::now();
    auto unmapped = co_await vspace.unmap(k, address, bytes);
    const auto t5 = Clock::now();
    if (!unmapped) co_return std::move(unmapped).error();
    if (*unmapped != bytes) {
      co_return error(Errc::internal,
                      fmt::format("unmap removed {} bytes, not {}", *unmapped, bytes));
    }
    samples.push_back(static_cast<float>(ns_between(t0, t1)));
    samples.push_back(static_cast<float>(protect_ns));
    samples.push_back(static_cast<float>(ns_between(t4, t5)));
  }
  co_return samples;
}

/// One repetition on mk: boots the layout's kernels as processes, a service over `route` on
/// `memory` (made before the boot, so every kernel process has its pools and address range), a
/// VSpace over every kernel, and measures from kernel 0.
void measure_vm(const Layout& layout, const CapabilityMemory& memory, int node, RouteKind route,
                std::size_t rounds, bool with_protect, Figure& figure) {
  if (figure.failed) return;
  const auto say = [&](const Error& failure) {
    fmt::print(stderr, "mk-bench vm: {} on {} kernels: {}\n", route_name(route), layout.kernels,
               failure.describe());
    figure.failed = true;
  };
  Config config = layout.config;
  config.isolation = Isolation::processes;
  auto booted = System::boot(config);
  if (!booted) return say(booted.error());
  System& system = **booted;
  CapabilityOptions options;
  options.replica.route = route;
  options.replica.sequencer = static_cast<KernelId>(layout.kernels - 1);
  auto caps = CapabilityService::create(system, memory, options);
  if (!caps) return say(caps.error());
  std::vector<KernelId> kernels;
  for (std::size_t id = 0; id < layout.kernels; ++id)
    kernels.push_back(static_cast<KernelId>(id));
  auto vspace = VSpace::create(system, *caps, kernels);
  if (!vspace) return say(vspace.error());
  for (std::size_t id = 1; id < layout.kernels; ++id) {
    auto served = system.run(
        static_cast<KernelId>(id), [](Kernel& k, VSpace v) { return serve_vm_touches(k, v); },
        *vspace);
    if (!served) return say(served.error());
    if (!*served) return say(served->error());
  }
  auto frame = system.run(
      0, [](Kernel& k, CapabilityService c, int at) { return make_frame(k, std::move(c), at); },
      *caps, node);
  if (!frame) return say(frame.error());
  if (!*frame) return say(frame->error());

  // An unmeasured tenth first, to warm caches, rings and page tables.
  const std::size_t warmup = rounds / 10;
  std::vector<float> samples;
  for (std::size_t done = 0; done < warmup + rounds;) {
    // The warm-up runs on its own, so that no measured round is dropped with it.
    const std::size_t end = done < warmup ? warmup : warmup + rounds;
    const std::uint64_t now =
        std::min<std::uint64_t>(kSamplesPerRun / kSamplesPerRound, end - done);
    auto measured = system.run(
        0,
        [](Kernel& k, VSpace v, CapSlot f, std::uint64_t n, std::uint64_t count,
           std::uint8_t protect) { return vm_rounds(k, v, f, n, count, protect); },
        *vspace, **frame, static_cast<std::uint64_t>(layout.kernels), now,
        static_cast<std::uint8_t>(with_protect ? 1 : 0));
    if (!measured) return say(measured.error());
    if (!*measured) return say(measured->error());
    if (done >= warmup) samples.insert(samples.end(), (*measured)->begin(), (*measured)->end());
    done += now;
  }
  for (std::size_t i = 0; i + kSamplesPerRound <= samples.size(); i += kSamplesPerRound) {
    figure.map.push_back(samples[i]);
    if (with_protect) figure.protect.push_back(samples[i + 1]);
    figure.unmap.push_back(samples[i + 2]);
  }
}

// ---- Projection ----

/// Core counts projected: 2 to 32 (powers of two and 32 in quick mode), as far as `cores`.
std::vector<std::size_t> projected_counts(std::size_t cores, bool quick) {
  const std::size_t last = std::min<std::size_t>(cores, 32);
  std::vector<std::size_t> counts;
  for (std::size_t n = 2; n < last; n = quick ? n * 2 : n + 1)
    counts.push_back(n);
  if (last >= 2) counts.push_back(last);
  return counts;
}

std::string paper_name(const PaperPoint& point) {
  return fmt::format("paper.{}.{}.ns", point.os, point.cores);
}

std::optional<std::string> paper_baseline(std::string_view os, std::size_t cores) {
  for (const PaperPoint& point : kPaper) {
    if (point.os == os && point.cores == cores) return paper_name(point);
  }
  return std::nullopt;
}

/// One machine the projection runs on.
struct Machine {
  std::string label;  ///< In result names.
  std::string what;   ///< For the output.
  std::optional<Skb> skb;
  bool paper = false;  ///< The paper's machine: its results go beside the paper's readings.
};

/// The paper's 8 x 4-core machine as the amd-8x4 profile asserts it (or --profile's), and the
/// 96-core topology of tests/data (or --topology's) at the simulator's default latencies.
std::vector<Machine> machines(const Options& options) {
  std::vector<Machine> out;
  const std::string name = options.profile.empty() ? std::string("amd-8x4") : options.profile;
  if (auto profile = load_profile(name)) {
    out.push_back({options.profile.empty() ? "amd_8x4" : "profile",
                   fmt::format("profile {} ({}), its asserted latencies", name, profile->topology),
                   std::move(profile->machine), options.profile.empty()});
  } else {
    fmt::print(stderr, "mk-bench vm: projection: {}\n", profile.error().describe());
  }
  const std::string topology =
      options.topology.empty() ? std::string(MK_BENCH_TOPOLOGY_96) : options.topology;
  if (auto skb = Skb::load(topology)) {
    out.push_back({options.topology.empty() ? "hwloc96" : "topology",
                   fmt::format("{}, latencies by SKB distance (simulator defaults)", topology),
                   std::move(*skb), false});
  } else {
    fmt::print(stderr, "mk-bench vm: projection: {}: {}\n", topology, skb.error().describe());
  }
  return out;
}

/// Prints one machine's curves in ns and in cycles at the paper's clock, with the paper's
/// readings where it has them.
void print_projection(const Machine& machine,
                      const std::map<std::size_t, std::array<double, 4>>& curves) {
  fmt::print(
      "\nvm.unmap projected on {}\n  (an ordered update from kernel 0, sequencer the last "
      "kernel, complete once every kernel\n  applied it, as VSpace::unmap's; plus "
      "linux.munmap.1 once: the kernels' own munmaps, all at once)\n",
      machine.what);
  fmt::print("{:>6}", "cores");
  for (RouteKind route : kRoutes)
    fmt::print(" {:>22}", route_name(route) + " ns (cycles)");
  if (machine.paper) fmt::print("   paper, cycles: barrelfish / linux / windows");
  fmt::print("\n");
  for (const auto& [cores, row] : curves) {
    fmt::print("{:>6}", cores);
    for (double ns : row) {
      fmt::print(" {:>22}", ns > 0 ? fmt::format("{:.0f} ({:.0f})", ns, ns * kPaperClockGhz) : "-");
    }
    if (machine.paper) {
      std::string readings;
      for (std::string_view os : {"barrelfish", "linux", "windows"}) {
        std::string value = "-";
        for (const PaperPoint& point : kPaper) {
          if (point.os == os && point.cores == cores) value = fmt::format("{:.0f}", point.cycles);
        }
        readings += (readings.empty() ? "" : " / ") + value;
      }
      fmt::print("   {}", readings);
    }
    fmt::print("\n");
  }
}

/// The simulator's unmap for each route and core count on each machine, every kernel's own
/// munmap costing `floor_ns` (Linux's munmap on one core, measured here); the paper's readings.
void project_unmap(const Options& options, double floor_ns, Report& report) {
  for (const PaperPoint& point : kPaper) {
    report.add(
        {paper_name(point), point.cycles / kPaperClockGhz, "ns", std::nullopt, std::nullopt});
  }
  SimCosts costs;
  costs.lines.enabled = true;
  const Duration floor(static_cast<Duration::rep>(floor_ns));
  for (const Machine& machine : machines(options)) {
    std::map<std::size_t, std::array<double, 4>> curves;
    for (std::size_t n : projected_counts(machine.skb->usable_cores().size(), options.quick)) {
      auto& row = curves[n];
      for (std::size_t r = 0; r < kRoutes.size(); ++r) {
        const RouteKind route = kRoutes[r];
        auto ns = project_everywhere_point(*machine.skb, n, route, costs, floor);
        if (!ns) {
          fmt::print(stderr, "mk-bench vm: projection on {}, {} over {}: {}\n", machine.label, n,
                     route_name(route), ns.error().describe());
          row[r] = -1;
          continue;
        }
        row[r] = *ns;
        std::optional<std::string> baseline;
        if (machine.paper) baseline = paper_baseline("barrelfish", n);
        if (!baseline && route != RouteKind::unicast && row[0] > 0) {
          baseline = fmt::format("vm.unmap.projected.{}.unicast.{}.latency_ns", machine.label, n);
        }
        report.add({fmt::format("vm.unmap.projected.{}.{}.{}.latency_ns", machine.label,
                                route_name(route), n),
                    *ns, "ns", baseline, std::nullopt});
      }
    }
    print_projection(machine, curves);
  }
  fmt::print(
      "\npaper.*: Figure 7 of the paper, read off the graph in cycles at 2 and 32 cores "
      "and scaled to ns at its {} GHz\n\n",
      kPaperClockGhz);
}

// ---- Report ----

double median_of(const std::vector<double>& samples) {
  std::vector<double> copy = samples;
  return median(copy);
}

bool usable(const Figure& figure, const std::vector<double>& samples) {
  return !figure.failed && !samples.empty();
}

}  // namespace

void run_vm(const Options& options, Report& report) {
  auto skb = Skb::discover();
  if (!skb) {
    fmt::print(stderr, "mk-bench vm: {}\n", skb.error().describe());
    return;
  }
  const auto& cores = skb->usable_cores();
  const std::size_t all = std::max<std::size_t>(cores.size(), 2);
  std::vector<Layout> layouts;
  for (std::size_t n = 2; n <= all; ++n)
    layouts.push_back(layout_for(cores, n));
  auto node = skb->memory_node(MemoryRequest::nearest_to(layouts.front().config.cores.front()));
  if (!node) {
    fmt::print(stderr, "mk-bench vm: {}\n", node.error().describe());
    return;
  }
  // Made before any System boots: the kernel processes inherit its pools and address range.
  const NodeBytes pool{*node, kPoolPages * page_bytes()};
  auto memory = CapabilityMemory::create(std::span(&pool, 1));
  auto page = PageFd::create();
  if (!memory || !page) {
    fmt::print(stderr, "mk-bench vm: {}\n", (!memory ? memory.error() : page.error()).describe());
    return;
  }
  fmt::print(stderr,
             "mk-bench vm: Figure 7 of the multikernel paper. linux.munmap.N: munmap of a 4 KiB\n"
             "  MAP_SHARED memfd page that N threads of one process, pinned on N cores, wrote\n"
             "  (Linux interrupts the other cores to flush their TLBs); linux.munmap.1 is the\n"
             "  local floor. vm.unmap.ROUTE.N: VSpace::unmap from kernel 0 of a page N kernels\n"
             "  wrote, each kernel a process that unmaps it from its own page table; it\n"
             "  completes once every kernel has. vm.unmap.best.N: the fastest route; target:\n"
             "  at most {} x linux.munmap.N. vm.map and vm.protect (read-write to read): on 2\n"
             "  kernels over the route fastest at unmap, beside mmap and mprotect on 2 threads.\n"
             "  The projection simulates unmap's protocol and adds linux.munmap.1 once, for\n"
             "  the kernels' own munmaps (done by all at the same time)\n",
             kTargetRatio);

  const std::size_t repetitions = options.quick ? 2 : 5;
  const std::size_t host_rounds = options.quick ? 5'000 : 50'000;
  const std::size_t mk_rounds = options.quick ? 2'000 : 20'000;
  // [0]: one thread; [n - 1]: n threads.
  std::vector<Figure> host(all);
  // [route][n - 2].
  std::vector<std::vector<Figure>> vm(kRoutes.size(), std::vector<Figure>(layouts.size()));
  // Repetitions interleave Linux and mk, so that noise from the rest of the machine hits both
  // alike; Linux's threads run while no kernel does, so the two never share a core.
  for (std::size_t r = 0; r < repetitions; ++r) {
    measure_linux(std::span(cores).first(1), *page, host_rounds, false, host[0]);
    for (const Layout& layout : layouts) {
      const bool with_protect = layout.kernels == 2;
      if (!layout.shared_cores) {
        measure_linux(layout.config.cores, *page, host_rounds, with_protect,
                      host[layout.kernels - 1]);
      }
      for (std::size_t route = 0; route < kRoutes.size(); ++route) {
        measure_vm(layout, *memory, *node, kRoutes[route], mk_rounds, with_protect,
                   vm[route][layout.kernels - 2]);
      }
    }
  }

  std::optional<double> floor;
  for (std::size_t n = 1; n <= all; ++n) {
    const Figure& figure = host[n - 1];
    if (!usable(figure, figure.unmap)) continue;
    const double value = median_of(figure.unmap);
    if (n == 1) floor = value;
    report.add(
        {fmt::format("linux.munmap.{}.latency_ns", n), value, "ns", std::nullopt, std::nullopt});
  }
  if (usable(host[1], host[1].map)) {
    report.add({"linux.mmap.latency_ns", median_of(host[1].map), "ns", std::nullopt, std::nullopt});
    report.add({"linux.mprotect.latency_ns", median_of(host[1].protect), "ns", std::nullopt,
                std::nullopt});
  }
  for (const Layout& layout : layouts) {
    const std::size_t n = layout.kernels;
    const std::string host_name = fmt::format("linux.munmap.{}.latency_ns", n);
    const bool have_host = usable(host[n - 1], host[n - 1].unmap);
    const std::optional<std::string> baseline = have_host ? std::optional(host_name) : std::nullopt;
    std::optional<std::size_t> best;
    double best_ns = 0;
    for (std::size_t route = 0; route < kRoutes.size(); ++route) {
      const Figure& figure = vm[route][n - 2];
      if (!usable(figure, figure.unmap)) continue;
      const double value = median_of(figure.unmap);
      report.add({fmt::format("vm.unmap.{}.{}.latency_ns", route_name(kRoutes[route]), n), value,
                  "ns", baseline, std::nullopt});
      if (!best || value < best_ns) {
        best = route;
        best_ns = value;
      }
    }
    if (!best) continue;
    fmt::print(stderr, "mk-bench vm: the fastest unmap on {} kernels: {}\n", n,
               route_name(kRoutes[*best]));
    report.add({fmt::format("vm.unmap.best.{}.latency_ns", n), best_ns, "ns", baseline,
                Target{Target::Kind::at_most, kTargetRatio}});
    if (n != 2) continue;
    const Figure& fastest = vm[*best][0];
    const bool have_map = usable(host[1], host[1].map);
    if (usable(fastest, fastest.map)) {
      report.add({"vm.map.latency_ns", median_of(fastest.map), "ns",
                  have_map ? std::optional<std::string>("linux.mmap.latency_ns") : std::nullopt,
                  std::nullopt});
    }
    if (usable(fastest, fastest.protect)) {
      report.add({"vm.protect.latency_ns", median_of(fastest.protect), "ns",
                  have_map ? std::optional<std::string>("linux.mprotect.latency_ns") : std::nullopt,
                  std::nullopt});
    }
  }
  if (!floor) {
    fmt::print(stderr, "mk-bench vm: no linux.munmap.1: the projection takes no local munmap\n");
  }
  project_unmap(options, floor.value_or(0.0), report);
}

}  // namespace mk::bench
