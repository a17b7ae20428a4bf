#pragma once
// Summarize: exact order statistics of a benchmark's samples, which may be negative.
//
// qai-loadgen's LatencyHistogram bounds memory for millions of calls and clamps negative
// values to zero. A chain benchmark has a thousand samples of a *difference* of two instants,
// and a negative one is a finding (the far end saw the work before the caller saw the reply),
// so here every sample is kept, sorted, and read exactly.
//
//   std::vector<int64_t> nanos = ...;
//   qai::chainbench::Summary s = qai::chainbench::Summarize(nanos);
//   double p99_ms = s.p99_ms;

#include <cstdint>
#include <vector>

namespace qai::chainbench {

// Summary: a distribution in milliseconds. Quantiles are nearest-rank: the smallest sample s
// such that at least q·count samples are <= s (the same rule as LatencyHistogram), so p50 of
// {1, 2, 3, 4} is 2. All zero when there are no samples.
struct Summary {
  int64_t count = 0;
  // Samples below zero.
  int64_t negative = 0;
  double min_ms = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  double mean_ms = 0;
};

// Summarize: the distribution of `nanos` (nanoseconds, any sign).
[[nodiscard]] Summary Summarize(std::vector<int64_t> nanos);

}  // namespace qai::chainbench
