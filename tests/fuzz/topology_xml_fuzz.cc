// hwloc XML exports from bytes (Skb::from_xml_text): a machine or an error naming the file,
// even when hwloc itself crashes on the text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/skb_checks.h"
#include "mk/skb.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto skb = mk::Skb::from_xml_text(text, "fuzz.xml");
  if (!skb) {
    mk::fuzz::check_error(skb.error(), "fuzz.xml");
    return 0;
  }
  mk::fuzz::check_queries(*skb);
  return 0;
}
