#include "tools/loadgen/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace qai::loadgen {

int LatencyHistogram::BucketOf(int64_t micros) {
  const auto v = static_cast<uint64_t>(std::clamp<int64_t>(micros, 0, kMaxMicros));
  if (v < kLinearLimit) return static_cast<int>(v);
  // Keep the top kSubBucketBits + 1 bits: `top` is in [128, 256) and `shift` names the octave.
  const int shift = std::bit_width(v) - (kSubBucketBits + 1);
  const auto top = static_cast<int>(v >> shift);
  return kLinearLimit + (shift - 1) * (1 << kSubBucketBits) + (top - (1 << kSubBucketBits));
}

int64_t LatencyHistogram::HighestIn(int bucket) {
  if (bucket < kLinearLimit) return bucket;
  const int k = bucket - kLinearLimit;
  const int shift = k / (1 << kSubBucketBits) + 1;
  const int64_t top = k % (1 << kSubBucketBits) + (1 << kSubBucketBits);
  return ((top + 1) << shift) - 1;
}

void LatencyHistogram::Record(int64_t micros) {
  micros = std::clamp<int64_t>(micros, 0, kMaxMicros);
  ++counts_[BucketOf(micros)];
  ++count_;
  max_ = std::max(max_, micros);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

int64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(HighestIn(i), max_);
  }
  return max_;
}

}  // namespace qai::loadgen
