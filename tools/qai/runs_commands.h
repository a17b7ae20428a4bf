#pragma once
// `qai runs list|get|cancel|watch` and `qai watch`: the AgentOrchestrator from the command
// line. A watch shows the run's progress as it happens (see run_view.h) and exits 0 when the run
// succeeded, 1 when it failed or was cancelled.
//
//   qai runs list --project 3f0c... --all       # newest first
//   qai runs get 9a1b...
//   qai watch 9a1b...                           # = qai runs watch 9a1b...
//   qai runs watch 9a1b... --after 12           # events after sequence 12 only
//   qai runs cancel 9a1b...

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "tools/qai/args.h"

namespace qai::cli {

// RunCommands: the declarations and handlers of every `runs` command, and `watch`.
std::vector<CommandSpec> RunCommands();

// FormatRun: one "key: value" line per field that is set: id, project_id, message_id, state,
// attempt, iteration (as N/MAX), steps, model, tokens ("P prompt, C completion"), created,
// started, ended, queued_for (start - create), ran_for (end - start), timeout, error,
// result_message_id, sandbox_url, version, restores_version, draft_url, last_sequence. A run still
// queued or running is timed up to `now` ("12.3s (so far)").
std::string FormatRun(const qai::orchestrator::v1::Run& run, absl::Time now);

// FormatRunRow: "ID  STATE  ITERATION/MAX  MODEL  RAN_FOR  CREATED  DETAIL" on one line, where
// RAN_FOR is how long the run has been running (up to `now` while it runs; "-" before it
// starts) and DETAIL the preview URL of a succeeded run, the error of a failed one, else "-".
std::string FormatRunRow(const qai::orchestrator::v1::Run& run, absl::Time now);

// RunStateName: "RUNNING" for STATE_RUNNING, or the number of a state this build does not know.
std::string RunStateName(qai::orchestrator::v1::Run::State state);

}  // namespace qai::cli
