#pragma once
// Following an agent run from the command line: WatchRun until the run's outcome, reconnecting
// after the last sequence seen when the stream breaks (any orchestrator replica can resume it:
// ARCHITECTURE.md, "the flow of one prompt", step 7).
//
//   RunView view(inv.out, inv.err, {.live = inv.terminal.tty});
//   int code = FollowRun(options, run_id, {}, view, inv.err);   // 0: succeeded, 1: otherwise
//
// ShowRun wraps this for the commands (`qai watch`).

#include <cstdint>
#include <iosfwd>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "tools/qai/args.h"
#include "tools/qai/global_options.h"
#include "tools/qai/run_view.h"

namespace qai::cli {

// FollowOptions: where a watch starts and how hard it tries to keep going.
struct FollowOptions {
  // Events with a sequence above this are shown (0: from the start).
  int64_t after_sequence = 0;
  // Reconnects in a row without an event in between before giving up.
  int max_reconnects = 10;
  // The wait before the first reconnect; it doubles up to max_backoff.
  absl::Duration first_backoff = absl::Milliseconds(250);
  absl::Duration max_backoff = absl::Seconds(2);
};

// IsStreamBreak: whether a WatchRun that ended with `status` is worth resuming: the server went
// away or is restarting (UNAVAILABLE, CANCELLED by a draining server), or is busy for a moment
// (RESOURCE_EXHAUSTED).
bool IsStreamBreak(const grpc::Status& status);

// FollowRun: WatchRun(run_id, after_sequence) on options.orchestrator_addr, each event into
// `view`, until the run's outcome. A broken stream (IsStreamBreak, or one that ends before the
// outcome while the run goes on) is opened again after the last sequence shown, after a backoff,
// so nothing is missed or repeated; each reconnect is a Note on the view. Another error is
// printed to `err`. Returns the view's exit code: 0 when the run succeeded, 1 otherwise.
[[nodiscard]] int FollowRun(const GlobalOptions& options, const std::string& run_id, const FollowOptions& follow,
                            RunView& view, std::ostream& err);

// ShowRun: `qai watch`: a RunView on the invocation's output (live on a terminal, with a status
// line ticking ten times a second), a header naming the run, then FollowRun. Returns its code.
[[nodiscard]] int ShowRun(const Invocation& inv, const GlobalOptions& options, const std::string& run_id,
                          int64_t after_sequence);

}  // namespace qai::cli
