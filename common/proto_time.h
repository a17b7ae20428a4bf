#pragma once
// Conversions between absl time types and the protobuf well-known types, at µs precision
// (what PostgreSQL keeps).

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace qai::common {

// SetTimestamp: t as a google.protobuf.Timestamp (µs precision, also before 1970).
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
// SetDuration: d as a google.protobuf.Duration (µs precision).
void SetDuration(absl::Duration d, google::protobuf::Duration* out);

}  // namespace qai::common
