#pragma once
// LatencyHistogram: call latencies in microseconds, with bounded memory and bounded error.
//
// Buckets are log-linear, as in HdrHistogram: values below 256 µs have a bucket each (exact);
// above that every power of two is split into 128 equal buckets, so a reported value is within
// 1/128 (< 0.8 %) of the true one. Values are clamped to about 19 hours. The fixed 3840
// counters (30 KiB) make one histogram per caller cheap, which avoids sharing one between
// threads; Merge combines them at the end.
//
//   qai::loadgen::LatencyHistogram h;
//   h.Record(1234);                      // µs
//   int64_t p99 = h.ValueAtQuantile(0.99);

#include <array>
#include <cstdint>

namespace qai::loadgen {

class LatencyHistogram {
 public:
  // kMaxMicros: larger values are recorded as this (2^36 - 1 µs, about 19 hours).
  static constexpr int64_t kMaxMicros = (int64_t{1} << 36) - 1;

  // Record: one value; negative values (a clock step) count as 0.
  void Record(int64_t micros);

  // Merge: adds every count of `other` to this one.
  void Merge(const LatencyHistogram& other);

  // count / max: how many values were recorded, and the largest (exact, not bucketed).
  int64_t count() const { return count_; }
  int64_t max() const { return max_; }

  // ValueAtQuantile: the smallest bucketed value v such that at least q·count values are ≤ v,
  // reported as the top of its bucket (never above max()), so percentiles err on the slow side.
  // 0 when empty; q is clamped to [0, 1].
  int64_t ValueAtQuantile(double q) const;

 private:
  static constexpr int kSubBucketBits = 7;                        // 128 buckets per octave
  static constexpr int kLinearLimit = 1 << (kSubBucketBits + 1);  // 256: exact below this
  static constexpr int kBuckets = kLinearLimit + (36 - kSubBucketBits - 1) * (1 << kSubBucketBits);

  static int BucketOf(int64_t micros);
  static int64_t HighestIn(int bucket);

  std::array<int64_t, kBuckets> counts_ = {};
  int64_t count_ = 0;
  int64_t max_ = 0;
};

}  // namespace qai::loadgen
