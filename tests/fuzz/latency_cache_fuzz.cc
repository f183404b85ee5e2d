// The latency cache (docs/skb.md): any bytes in the cache file are loaded whole, or refused
// with an error naming the file, and a machine that loads the cache either takes everything it
// holds or is left as it was.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "fuzz/skb_checks.h"
#include "mk/latency_cache.h"
#include "mk/skb.h"

namespace {

/// A directory of this process's own for the one cache file each input becomes, removed when
/// the process exits.
const std::string& cache_dir() {
  struct Dir {
    std::string path;
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Dir dir{[] {
    std::string pattern = "/tmp/mk-latency-cache-fuzz-XXXXXX";
    mk::fuzz::require(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    return pattern;
  }()};
  return dir.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The corpus's files carry this machine's fingerprint, so that inputs get past it.
  static const mk::Skb machine =
      mk::Skb::from_xml_file(MK_TOPOLOGIES_DIR "/16amd64-4distances.xml").value();
  const std::string path = mk::latency_cache_path(cache_dir(), machine);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    mk::fuzz::require(out.good(), "writing the cache file");
  }

  if (auto latencies = mk::load_latency_cache(path, machine); !latencies) {
    mk::fuzz::check_error(latencies.error(), path);
  }
  if (auto wakes = mk::load_wake_cost_cache(path, machine);
      !wakes && wakes.error().code != mk::Errc::not_found) {
    mk::fuzz::check_error(wakes.error(), path);
  }
  if (auto channels = mk::load_channel_measurements(path, machine); !channels) {
    mk::fuzz::check_error(channels.error(), path);
  }

  mk::Skb skb = machine;
  auto loaded = mk::load_cached_measurements(skb, cache_dir());
  if (!loaded) {
    mk::fuzz::check_error(loaded.error(), path);
    mk::fuzz::require(skb.facts().size() == machine.facts().size(),
                      "a refused cache changes nothing");
    return 0;
  }
  mk::fuzz::require(*loaded, "a cache file that exists is loaded");
  mk::fuzz::check_queries(skb);
  return 0;
}
