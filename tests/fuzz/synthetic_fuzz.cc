// hwloc synthetic descriptions (Skb::from_synthetic): a machine or an error naming the bad
// token or the limit passed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/skb_checks.h"
#include "mk/skb.h"
#include "skb/hwloc_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // mk accepts machines hwloc takes up to a minute to build; the fuzzer keeps to those it
  // builds in about a millisecond, to try many descriptions rather than a few big ones.
  constexpr std::uint64_t kMaxBuildWork = 1'000'000;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto measured = mk::detail::measure_synthetic(text);
      measured && measured->build_work > kMaxBuildWork) {
    return 0;
  }
  auto skb = mk::Skb::from_synthetic(text);
  if (!skb) {
    mk::fuzz::check_error(skb.error(), "synthetic");
    return 0;
  }
  mk::fuzz::check_queries(*skb);
  return 0;
}
