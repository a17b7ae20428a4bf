#pragma once
// RunBatch: runs through the orchestrator's queue as fast as it can take them.
//
// `callers` threads call StartRun (as a SERVICE, like qai-messages' relay) for every prompt,
// each of a different project so the runs may go in parallel; the orchestrator's workers claim,
// run and finish them. The batch is over when none of the runs is queued or running any more
// (the database is polled for that: one small query every 50 ms). The figures come from the
// runs' own timestamps (PostgreSQL's clock): the rate is runs / (last end - first create).
//
//   absl::StatusOr<BatchResult> r = RunBatch(orchestrator, db, {.prompts = prompts, .callers = 4});

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/db_pool.h"
#include "tools/chainbench/distribution.h"
#include "tools/orchbench/calls.h"

namespace qai::orchbench {

struct BatchOptions {
  std::vector<Prompt> prompts;
  int callers = 4;
  absl::Duration timeout = absl::Minutes(10);  // for the whole batch
};

struct BatchResult {
  int runs = 0;          // StartRuns that succeeded
  int start_errors = 0;  // StartRuns that failed
  std::string first_error;
  int succeeded = 0;
  int failed = 0;
  int cancelled = 0;
  int unfinished = 0;          // still queued or running at the timeout
  double start_seconds = 0;    // the StartRun calls, first to last (this process's clock)
  double seconds = 0;          // first create to last end
  double rate = 0;             // finished runs per second over `seconds`
  chainbench::Summary queued;  // start - create of each run
  chainbench::Summary worked;  // end - start
  chainbench::Summary total;   // end - create
};

[[nodiscard]] absl::StatusOr<BatchResult> RunBatch(const Orchestrator& orchestrator,
                                                   common::DbPool& db, const BatchOptions& options);

}  // namespace qai::orchbench
