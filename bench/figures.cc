#include "figures.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "peers/peer.h"

namespace mk::bench {
namespace {

/// The results of a report by name.
class Lookup {
 public:
  explicit Lookup(const Report& report) {
    for (const Result& r : report.results())
      by_name_.emplace(r.name, &r);
  }
  const Result* operator[](const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  const std::map<std::string, const Result*>& all() const { return by_name_; }

 private:
  std::map<std::string, const Result*> by_name_;
};

/// "value low high" for a data line: the median and the lowest and highest run (the median
/// twice when it was measured once); "NaN NaN NaN", which gnuplot skips, when it is missing.
std::string point(const Result* r) {
  if (r == nullptr) return "NaN NaN NaN";
  const double lo = r->spread ? r->spread->min : r->value;
  const double hi = r->spread ? r->spread->max : r->value;
  return fmt::format("{:.6g} {:.6g} {:.6g}", r->value, lo, hi);
}

/// A gnuplot string literal.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

/// A named gnuplot data block of `lines`.
std::string block(std::string_view name, const std::vector<std::string>& lines) {
  std::string out = fmt::format("${} << EOD\n", name);
  for (const std::string& line : lines)
    out += line + "\n";
  return out + "EOD\n";
}

/// A series drawn against x: its title and (x, result) points.
struct Series {
  std::string title;
  std::vector<std::pair<double, const Result*>> points;
  std::string style = "using 1:2:3:4 with yerrorlines lw 2";  ///< How gnuplot draws it.
};

/// Plots `series` against x as lines with error bars from each point's spread (the lowest to
/// the highest run); `name` names its data blocks, `extra` adds plot elements.
std::string lines_plot(std::string_view name, const std::vector<Series>& series,
                       const std::string& extra = {}) {
  std::string out;
  std::vector<std::string> elements;
  for (std::size_t i = 0; i < series.size(); ++i) {
    std::vector<std::string> rows;
    auto points = series[i].points;
    std::sort(points.begin(), points.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [x, r] : points)
      rows.push_back(fmt::format("{:.6g} {}", x, point(r)));
    const std::string data = fmt::format("{}{}", name, i);
    out += block(data, rows);
    elements.push_back(
        fmt::format("${} {} title {}", data, series[i].style, quote(series[i].title)));
  }
  if (!extra.empty()) elements.push_back(extra);
  if (elements.empty()) return out;
  return out + fmt::format("plot {}\n", fmt::join(elements, ", \\\n     "));
}

/// A clustered bar chart with error bars: one cluster per category, one bar per series;
/// `cells[c][s]` the result of series s in category c (null when missing).
std::string bars_plot(
    std::string_view name, const std::vector<std::string>& series,
    const std::vector<std::pair<std::string, std::vector<const Result*>>>& cells) {
  std::vector<std::string> rows;
  for (const auto& [category, results] : cells) {
    std::string row = quote(category);
    for (const Result* r : results)
      row += fmt::format(" {}", point(r));
    rows.push_back(row);
  }
  std::string out = block(name, rows);
  out +=
      "set style data histogram\nset style histogram errorbars gap 1 lw 1\n"
      "set style fill solid 0.7 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
      "set xtics nomirror\nset key top left\n";
  std::vector<std::string> elements;
  for (std::size_t s = 0; s < series.size(); ++s) {
    const std::size_t column = 2 + 3 * s;
    elements.push_back(fmt::format("${} using {}:{}:{}{} title {}", name, column, column + 1,
                                   column + 2, s == 0 ? ":xtic(1)" : "", quote(series[s])));
  }
  return out + fmt::format("plot {}\n", fmt::join(elements, ", \\\n     "));
}

/// Every result whose name matches `pattern`, with its matches, in name order.
std::vector<std::pair<const Result*, std::smatch>> matching(const Lookup& results,
                                                            const std::regex& pattern) {
  std::vector<std::pair<const Result*, std::smatch>> out;
  for (const auto& [name, r] : results.all()) {
    std::smatch m;
    if (std::regex_match(name, m, pattern)) out.emplace_back(r, m);
  }
  return out;
}

Figure machine_figure(const Lookup& results, const MachineFacts& machine) {
  Figure f;
  f.file = "fig1-machine";
  f.title = "Figure 1: the machine";
  f.caption =
      "What mk's System Knowledge Base (SKB) sees of this machine (hwloc: packages, NUMA nodes, "
      "cores, caches), and the round trip of one message between every pair of usable cores "
      "over a pair of urpc channels, measured now (as `mk-skb measure` does). Each cell of the "
      "heat map is the median round trip in ns between the core on its row and the core on its "
      "column; darker is faster. Blocks of equal colour are cores that share a cache or a "
      "node: the SKB builds routes and places kernels by these figures.";
  f.facts = machine.rows;
  const std::size_t n = machine.cores.size();
  std::vector<std::string> matrix;
  std::vector<double> all;
  for (std::size_t i = 0; i < n; ++i) {
    std::string row;
    for (std::size_t j = 0; j < n; ++j) {
      const Result* r =
          i == j ? nullptr : results[machine_rtt_name(machine.cores[i], machine.cores[j])];
      if (r != nullptr) all.push_back(r->value);
      row += r == nullptr ? " NaN" : fmt::format(" {:.0f}", r->value);
    }
    matrix.push_back(row);
  }
  if (all.empty()) {
    f.notes.push_back("No round trips: fewer than two usable cores, or the measurement failed.");
    return f;
  }
  std::sort(all.begin(), all.end());
  f.facts.emplace_back(
      "core-to-core round trip",
      fmt::format("{:.0f} ns fastest pair, {:.0f} ns median pair, {:.0f} ns slowest pair",
                  all.front(), all[all.size() / 2], all.back()));
  // A table row per pair only where it stays readable.
  if (n <= 8) {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = i + 1; j < n; ++j)
        f.rows.push_back(machine_rtt_name(machine.cores[i], machine.cores[j]));
    }
  }
  std::string tics;
  if (n <= 32) {
    std::vector<std::string> labels;
    for (std::size_t i = 0; i < n; ++i)
      labels.push_back(fmt::format("\"{}\" {}", machine.cores[i], i));
    tics = fmt::format("({})", fmt::join(labels, ", "));
  }
  f.plot = block("rtt", matrix);
  f.plot += fmt::format(
      "set title \"core-to-core round trip (ns)\"\nset xlabel \"core\"\nset ylabel \"core\"\n"
      "set xrange [-0.5:{0}-0.5]\nset yrange [{0}-0.5:-0.5]\nset size ratio -1\n"
      "set palette defined (0 \"#08306b\", 1 \"#6baed6\", 2 \"#fff5eb\")\n"
      "set cblabel \"ns\"\nset cbrange [0:*]\n{1}{2}plot $rtt matrix with image notitle\n",
      n, tics.empty() ? std::string() : fmt::format("set xtics {}\n", tics),
      tics.empty() ? std::string() : fmt::format("set ytics {}\n", tics));
  return f;
}

Figure channels_figure(const Lookup& results) {
  Figure f;
  f.file = "fig2-channels";
  f.title = "Figure 2: channels against peers";
  f.caption =
      "mk's urpc channel beside the single-producer single-consumer queues people use instead "
      "(boost spsc_queue, DPDK rte_ring, ck_ring, moodycamel ReaderWriterQueue), each between "
      "two threads pinned to two cores. Left: round trip of one message (lower is better) by "
      "message size, with the floors: one cache line bounced between the cores (the hardware's "
      "limit) and the same through a ring slot. Right: one-way throughput, millions of "
      "messages per second (higher is better). Error bars span the lowest to the highest run.";
  f.suites = {"peers", "channel"};
  for (const char* name :
       {"floor.rtt_ns", "floor.ring.rtt_ns", "floor.short_ring.rtt_ns", "urpc.rtt_ns",
        "lockfree.rtt_ns", "urpc.throughput_mps", "lockfree.throughput_mps",
        "urpc.batched.throughput_mps", "lockfree.batched.throughput_mps"}) {
    if (results[name] != nullptr) f.rows.push_back(name);
  }
  std::vector<Series> rtt, mps;
  for (const PeerEntry& entry : peer_entries()) {
    if (entry.peer == nullptr) {
      f.notes.push_back(fmt::format("{} not built ({} was not found when mk-bench was configured)",
                                    entry.name, entry.package));
      continue;
    }
    Series r{std::string(entry.name), {}}, m{std::string(entry.name), {}};
    for (std::size_t size : kPeerSizes) {
      const std::string scope = size == kPeerSizes.front() ? "" : fmt::format("{}B.", size);
      const std::string rtt_name = fmt::format("peer.{}.{}rtt_ns", entry.name, scope);
      const std::string mps_name = fmt::format("peer.{}.{}throughput_mps", entry.name, scope);
      if (const Result* x = results[rtt_name]) {
        r.points.emplace_back(size, x);
        f.rows.push_back(rtt_name);
      }
      if (const Result* x = results[mps_name]) {
        m.points.emplace_back(size, x);
        f.rows.push_back(mps_name);
      }
    }
    if (!r.points.empty()) rtt.push_back(std::move(r));
    if (!m.points.empty()) mps.push_back(std::move(m));
  }
  if (rtt.empty()) return f;
  std::string floors;
  if (const Result* floor = results["floor.rtt_ns"]) {
    floors = fmt::format("{:.6g} with lines dt 2 lc rgb \"black\" title \"floor: cache line\"",
                         floor->value);
  }
  if (const Result* ring = results["floor.ring.rtt_ns"]) {
    floors += fmt::format("{}{:.6g} with lines dt 3 lc rgb \"gray40\" title \"floor: ring slot\"",
                          floors.empty() ? "" : ", ", ring->value);
  }
  f.plot =
      "set multiplot layout 1,2\nset logscale x 2\nset xlabel \"message size (bytes)\"\n"
      "set xrange [4:4096]\nset key top left\nset yrange [0:*]\n"
      "set title \"round trip (ns, lower is better)\"\n";
  f.plot += lines_plot("rtt", rtt, floors);
  f.plot += "set title \"throughput (Mmsg/s, higher is better)\"\nset key top right\n";
  f.plot += lines_plot("mps", mps);
  f.plot += "unset multiplot\n";
  return f;
}

Figure shm_figure(const Lookup& results, std::size_t usable) {
  Figure f;
  f.file = "fig3-shm-vs-msg";
  f.title = "Figure 3: shared memory against messages";
  f.caption =
      "The paper's Fig. 3: the cost of one update of N shared cache lines. shared: every core "
      "updates the lines with atomic fetch_add, the lines moving between caches; message: one "
      "server kernel owns the lines and each other core sends it the update, waiting for the "
      "reply (call) or not (one-way). Nanoseconds per update of one core (lower is better) "
      "against the number of lines; one curve per way and core count. Where the message "
      "curves fall below shared, messages beat shared memory.";
  f.suites = {"shm-vs-msg"};
  static const std::regex pattern(
      R"(shm_vs_msg\.(shared|message|message_oneway)\.(\d+)\.(cores_(\d+)\.)?ns_per_update)");
  std::map<std::string, Series> series;
  for (const auto& [r, m] : matching(results, pattern)) {
    const std::size_t cores = m[4].matched ? std::stoul(m[4].str()) : usable;
    const std::string title = fmt::format("{}, {} cores", m[1].str(), cores);
    series[title].title = title;
    series[title].points.emplace_back(std::stod(m[2].str()), r);
    f.rows.push_back(r->name);
  }
  if (series.empty()) return f;
  std::vector<Series> all;
  for (auto& [title, s] : series)
    all.push_back(std::move(s));
  f.plot =
      "set logscale x 2\nset xlabel \"cache lines updated\"\nset ylabel \"ns per update\"\n"
      "set yrange [0:*]\nset xrange [0.7:12]\nset key top left\n"
      "set title \"one update of N shared lines\"\n";
  f.plot += lines_plot("shm", all);
  return f;
}

Figure agreement_figure(const Lookup& results, std::size_t usable) {
  Figure f;
  f.file = "fig4-shootdown";
  f.title = "Figure 4: shootdown protocols";
  f.caption =
      "The paper's Fig. 6: one one-phase update (a TLB shootdown's shape: every kernel applies "
      "it and acknowledges) proposed by the last kernel, latency in ns until every kernel has "
      "acknowledged (lower is better), against the number of kernels, per route: unicast "
      "(one message to each), broadcast, multicast (one message per shared cache, forwarded) "
      "and NUMA-aware multicast. Points beyond the usable cores run several kernels per core, "
      "which then sleep instead of polling (wakeups dominate). Open points: the simulator's "
      "projection of the same update on this machine's measured costs, beside the measurement.";
  f.suites = {"agreement"};
  static const std::regex pattern(
      R"(agreement\.one_phase\.(\w+)\.(kernels_(\d+)(_on_\d+_cores)?\.)?latency_ns)");
  static const std::regex projected(R"(agreement\.one_phase\.(\w+)\.projected_ns)");
  std::map<std::string, Series> measured;
  for (const auto& [r, m] : matching(results, pattern)) {
    const double kernels = m[3].matched ? std::stod(m[3].str()) : static_cast<double>(usable);
    measured[m[1].str()].title = m[1].str();
    measured[m[1].str()].points.emplace_back(kernels, r);
    f.rows.push_back(r->name);
  }
  if (measured.empty()) return f;
  std::vector<std::string> projections;
  for (const auto& [r, m] : matching(results, projected)) {
    projections.push_back(fmt::format("{} {} {}", usable, point(r), quote(m[1].str())));
    f.rows.push_back(r->name);
  }
  if (results["agreement.rpc.rtt_ns"] != nullptr) f.rows.push_back("agreement.rpc.rtt_ns");
  std::vector<Series> all;
  for (auto& [route, s] : measured)
    all.push_back(std::move(s));
  std::string extra;
  if (!projections.empty()) {
    f.plot = block("projected", projections);
    extra = "$projected using 1:2 with points pt 6 ps 2 lc rgb \"black\" title \"projected\"";
  }
  f.plot +=
      "set logscale x 2\nset logscale y 10\nset xlabel \"kernels\"\n"
      "set ylabel \"ns until all acknowledged (log scale)\"\nset key top left\n"
      "set title \"one-phase update, per route\"\n";
  f.plot += fmt::format("set xrange [1.5:{}]\n", 2 * std::max<std::size_t>(usable, 8));
  f.plot += lines_plot("agree", all, extra);
  return f;
}

Figure vm_figure(const Lookup& results) {
  Figure f;
  f.file = "fig5-unmap";
  f.title = "Figure 5: unmap against Linux";
  f.caption =
      "The paper's Fig. 7: removing a page that N cores have touched. Left, measured here: "
      "VSpace::unmap from kernel 0 on N kernels (each a process unmapping the page from its "
      "own page table; done once every kernel has), per route, beside Linux's munmap of a "
      "page N threads of one process wrote (Linux interrupts the other cores to flush their "
      "TLBs); N = 1 is Linux's local floor. Right: the simulator's projection of the same "
      "unmap on larger machines (the fastest route at each count), with the paper's readings "
      "as points. Latency in ns, lower is better; error bars span the lowest to the highest "
      "run.";
  f.suites = {"vm"};
  static const std::regex measured(R"(vm\.unmap\.(\w+)\.(\d+)\.latency_ns)");
  static const std::regex linux_unmap(R"(linux\.munmap\.(\d+)\.latency_ns)");
  static const std::regex projected(R"(vm\.unmap\.projected\.(\w+)\.(\w+)\.(\d+)\.latency_ns)");
  static const std::regex paper(R"(paper\.(\w+)\.(\d+)\.ns)");
  std::map<std::string, Series> here;
  for (const auto& [r, m] : matching(results, measured)) {
    if (m[1] == "best") continue;
    here[m[1].str()].title = "mk, " + m[1].str();
    here[m[1].str()].points.emplace_back(std::stod(m[2].str()), r);
    f.rows.push_back(r->name);
  }
  Series host{"Linux munmap", {}};
  for (const auto& [r, m] : matching(results, linux_unmap)) {
    host.points.emplace_back(std::stod(m[1].str()), r);
    f.rows.push_back(r->name);
  }
  for (const char* name : {"linux.mmap.latency_ns", "vm.map.latency_ns",
                           "linux.mprotect.latency_ns", "vm.protect.latency_ns"}) {
    if (results[name] != nullptr) f.rows.push_back(name);
  }
  // The fastest route per machine and count: one curve per machine keeps the panel readable;
  // the table has every route.
  std::map<std::string, std::map<double, const Result*>> fastest;
  for (const auto& [r, m] : matching(results, projected)) {
    const Result*& best = fastest[m[1].str()][std::stod(m[3].str())];
    if (best == nullptr || r->value < best->value) best = r;
    f.rows.push_back(r->name);
  }
  std::map<std::string, Series> readings;
  for (const auto& [r, m] : matching(results, paper)) {
    Series& s = readings[m[1].str()];
    s.title = "paper: " + m[1].str();
    s.style = "using 1:2 with points pt 7 ps 1.5";
    s.points.emplace_back(std::stod(m[2].str()), r);
    f.rows.push_back(r->name);
  }
  if (here.empty() && host.points.empty()) return f;
  std::vector<Series> left;
  for (auto& [route, s] : here)
    left.push_back(std::move(s));
  if (!host.points.empty()) left.push_back(std::move(host));
  f.plot =
      "set multiplot layout 1,2\nset logscale x 2\nset logscale y 10\nset xlabel \"cores\"\n"
      "set ylabel \"ns (log scale)\"\nset key top left\nset title \"measured here\"\n"
      "";
  double widest = 2;
  for (const Series& series : left) {
    for (const auto& [n, r] : series.points)
      widest = std::max(widest, n);
  }
  f.plot += fmt::format("set xrange [0.7:{}]\n", widest * 1.4);
  f.plot += lines_plot("here", left);
  std::vector<Series> right;
  for (const auto& [machine, points] : fastest) {
    Series s{fmt::format("projected on {}", machine), {}};
    for (const auto& [n, r] : points)
      s.points.emplace_back(n, r);
    right.push_back(std::move(s));
  }
  for (auto& [os, s] : readings)
    right.push_back(std::move(s));
  if (!right.empty()) {
    f.plot += "set title \"projected, and the paper\"\nset xrange [1.5:45]\n";
    f.plot += lines_plot("far", right);
  }
  f.plot += "unset multiplot\n";
  return f;
}

Figure replica_figure(const Lookup& results, std::size_t usable) {
  Figure f;
  f.file = "fig6-replica";
  f.title = "Figure 6: replicated reads and updates";
  f.caption =
      "A map replicated on every kernel (ordered agreement over multicast) beside one map "
      "shared by every core's thread under a std::shared_mutex (reads) or a std::mutex "
      "(updates). Operations per second of all cores together (higher is better), per core "
      "count. replica read: a read that waits for agreed updates; local read: the kernel's "
      "replica as it is; process: kernels as processes. Error bars span the lowest to the "
      "highest run.";
  f.suites = {"replica"};
  std::set<std::size_t> counts;
  static const std::regex scoped(R"(.*\.cores_(\d+)\.(read|update)_ops)");
  for (const auto& [r, m] : matching(results, scoped))
    counts.insert(std::stoul(m[1].str()));
  if (results["shared_mutex.read_ops"] != nullptr) counts.insert(usable);
  if (counts.empty()) return f;
  const std::vector<std::string> readers = {"shared_mutex", "replica", "replica.local",
                                            "process.replica"};
  const auto name = [&](const std::string& what, std::size_t n, const char* figure) {
    const std::string scope = n == usable ? "" : fmt::format("cores_{}.", n);
    if (what == "replica.local") return fmt::format("replica.{}local_{}", scope, figure);
    return fmt::format("{}.{}{}", what, scope, figure);
  };
  std::vector<std::pair<std::string, std::vector<const Result*>>> reads, updates;
  for (std::size_t n : counts) {
    std::vector<const Result*> row;
    for (const std::string& what : readers) {
      row.push_back(results[name(what, n, "read_ops")]);
      if (row.back() != nullptr) f.rows.push_back(row.back()->name);
    }
    reads.emplace_back(fmt::format("{} cores", n), row);
    row = {results[name("mutex", n, "update_ops")], results[name("replica", n, "update_ops")]};
    for (const Result* r : row) {
      if (r != nullptr) f.rows.push_back(r->name);
    }
    updates.emplace_back(fmt::format("{} cores", n), row);
  }
  f.plot =
      "set multiplot layout 1,2\nset ylabel \"operations per second\"\nset format y \"%.1s%c\"\n"
      "set title \"reads\"\n";
  f.plot += bars_plot(
      "reads", {"shared_mutex", "replica read", "replica local read", "replica read, processes"},
      reads);
  f.plot += "set title \"updates\"\n";
  f.plot += bars_plot("updates", {"mutex", "replica update"}, updates);
  f.plot += "unset multiplot\n";
  return f;
}

Figure idle_figure(const Lookup& results) {
  Figure f;
  f.file = "fig7-idle";
  f.title = "Figure 7: idle and wakeup";
  f.caption =
      "Left: the round trip of a call to a kernel that is asleep (it polled, found nothing and "
      "slept) beside the same round trip between two threads over a futex, median and 99th "
      "percentile, and with both sides asleep (lower is better). Right: the CPU an idle mk "
      "system of two kernels uses, as a fraction of one CPU (lower is better): idle kernels "
      "must sleep, not spin.";
  f.suites = {"idle"};
  const std::vector<std::pair<std::string, std::vector<const Result*>>> wake = {
      {"median", {results["futex.rtt_ns"], results["idle.wake_rtt_ns"]}},
      {"p99", {results["futex.rtt_p99_ns"], results["idle.wake_rtt_p99_ns"]}},
      {"both asleep", {results["futex.both_asleep.rtt_ns"], results["idle.both_asleep.rtt_ns"]}},
  };
  for (const auto& [label, row] : wake) {
    for (const Result* r : row) {
      if (r != nullptr) f.rows.push_back(r->name);
    }
  }
  const Result* cpu = results["idle.cpu_fraction"];
  if (cpu != nullptr) f.rows.push_back(cpu->name);
  if (f.rows.empty()) return f;
  f.plot = "set multiplot layout 1,2\nset title \"wakeup round trip (ns)\"\nset ylabel \"ns\"\n";
  f.plot += bars_plot("wake", {"futex", "mk kernel asleep"}, wake);
  f.plot += "set title \"idle system's CPU\"\nset ylabel \"fraction of one CPU\"\n";
  f.plot += bars_plot("cpu", {"mk, 2 idle kernels"}, {{"idle", {cpu}}});
  f.plot += "unset multiplot\n";
  return f;
}

}  // namespace

std::vector<Figure> make_figures(const Report& report, const MachineFacts& machine) {
  const Lookup results(report);
  const std::size_t usable = machine.cores.size();
  return {machine_figure(results, machine),
          channels_figure(results),
          shm_figure(results, usable),
          agreement_figure(results, usable),
          vm_figure(results),
          replica_figure(results, usable),
          idle_figure(results)};
}

}  // namespace mk::bench
