#pragma once
// MeasureLatency: how long an event takes from its append's commit to a watcher.
//
// The probe run appends stamped events at a steady pace, one per transaction as a worker does;
// each open stream notes when each event reached it; both instants come from this process's
// steady clock. First `warmup` events go unmeasured (and prove every stream is subscribed).
//
//   LatencyResult r = MeasureLatency(probe, {&on_a, &on_b}, {.events = 1000, .rate = 200});
//   r.streams[0].from_commit.p99_ms

#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/chainbench/distribution.h"
#include "tools/orchbench/event_stream.h"
#include "tools/orchbench/probe_run.h"

namespace qai::orchbench {

struct LatencyOptions {
  int events = 1000;
  double rate = 200;  // appends per second
  int warmup = 20;
  absl::Duration wait = absl::Seconds(30);  // for the streams to catch up
};

struct StreamLatency {
  chainbench::Summary from_commit;  // arrival - the append's return (it had committed)
  chainbench::Summary from_send;    // arrival - the stamp (before the append began)
  int missing = 0;                  // measured events that never arrived
};

struct LatencyResult {
  chainbench::Summary append;  // the appends themselves: commit - stamp
  double seconds = 0;          // the measured appends, first to last
  std::vector<StreamLatency> streams;
};

[[nodiscard]] absl::StatusOr<LatencyResult> MeasureLatency(ProbeRun& probe,
                                                           const std::vector<EventStream*>& streams,
                                                           const LatencyOptions& options);

}  // namespace qai::orchbench
