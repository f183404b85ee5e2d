#include "runs.h"

#include <algorithm>
#include <map>
#include <vector>

#include "stats.h"

namespace mk::bench {

Report merge_runs(std::string bench, std::span<const Report> runs) {
  std::vector<Result> order;
  std::map<std::string, std::vector<double>> values;
  for (const Report& run : runs) {
    for (const Result& r : run.results()) {
      auto [it, fresh] = values.try_emplace(r.name);
      if (fresh) order.push_back(r);
      it->second.push_back(r.value);
    }
  }
  Report merged(std::move(bench));
  for (Result r : order) {
    std::vector<double>& v = values[r.name];
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    r.spread = Spread{*lo, *hi, v.size()};
    r.value = median(v);
    merged.add(std::move(r));
  }
  return merged;
}

}  // namespace mk::bench
