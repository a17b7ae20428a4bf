#include "common/proto_time.h"

namespace qai::common {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  // Timestamp nanos are never negative: floor the seconds.
  const int64_t us = absl::ToUnixMicros(t);
  int64_t seconds = us / 1000000, rest = us % 1000000;
  if (rest < 0) {
    seconds -= 1;
    rest += 1000000;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rest) * 1000);
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  // Duration seconds and nanos share the sign: truncate toward zero.
  const int64_t us = absl::ToInt64Microseconds(d);
  out->set_seconds(us / 1000000);
  out->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
}

}  // namespace qai::common
