#include "tools/chainbench/distribution.h"

#include <algorithm>
#include <cmath>

namespace qai::chainbench {
namespace {

double Millis(int64_t nanos) { return static_cast<double>(nanos) / 1e6; }

}  // namespace

Summary Summarize(std::vector<int64_t> nanos) {
  Summary s;
  if (nanos.empty()) return s;
  std::sort(nanos.begin(), nanos.end());
  const auto n = static_cast<int64_t>(nanos.size());
  auto at = [&](double q) {
    const auto rank =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(n))));
    return Millis(nanos[static_cast<size_t>(std::min(rank, n) - 1)]);
  };
  // Summed as long double: 1000 samples of seconds in nanoseconds fit an int64 too, but the
  // function takes any count.
  long double sum = 0;
  for (int64_t v : nanos) sum += static_cast<long double>(v);
  s.count = n;
  s.negative = std::count_if(nanos.begin(), nanos.end(), [](int64_t v) { return v < 0; });
  s.min_ms = Millis(nanos.front());
  s.p50_ms = at(0.50);
  s.p90_ms = at(0.90);
  s.p99_ms = at(0.99);
  s.max_ms = Millis(nanos.back());
  s.mean_ms = static_cast<double>(sum / static_cast<long double>(n)) / 1e6;
  return s;
}

}  // namespace qai::chainbench
