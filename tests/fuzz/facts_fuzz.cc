// Facts files (docs/skb.md): any bytes are applied whole, or refused with an error naming the
// file and the machine is left as it was.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/skb_checks.h"
#include "mk/skb.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A machine with NUMA and package distance matrices, so that asserted distances and
  // latencies meet every kind of derived distance.
  static const mk::Skb machine =
      mk::Skb::from_xml_file(MK_TOPOLOGIES_DIR "/16amd64-4distances.xml").value();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  mk::Skb skb = machine;
  if (auto applied = skb.assert_facts_json(text, "fuzz.json"); !applied) {
    mk::fuzz::check_error(applied.error(), "fuzz.json");
    mk::fuzz::require(skb.facts().size() == machine.facts().size(),
                      "a refused facts file changes nothing");
    return 0;
  }
  mk::fuzz::check_queries(skb);
  return 0;
}
