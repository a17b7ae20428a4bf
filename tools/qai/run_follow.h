#pragma once
// Following an agent run from the command line: WatchRun until the run's outcome, reconnecting
// after the last sequence seen when the stream breaks (any orchestrator replica can resume it:
// ARCHITECTURE.md, "the flow of one prompt", step 7), and finding the run a prompt started.
//
//   RunView view(inv.out, inv.err, {.live = inv.terminal.tty});
//   int code = FollowRun(options, run_id, {}, view, inv.err);   // 0: succeeded, 1: otherwise
//
// ShowRun and ShowPromptRun wrap this for the commands (`qai watch`, `--watch`).

#include <cstdint>
#include <iosfwd>
#include <optional>
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
[[nodiscard]] int FollowRun(const GlobalOptions& options, const std::string& run_id,
                            const FollowOptions& follow, RunView& view, std::ostream& err);

// FoundRun: what WaitForRun found.
struct FoundRun {
  // Set when the run appeared in time.
  std::optional<qai::orchestrator::v1::Run> run;
  // Not OK when a failed call ended the wait.
  grpc::Status status;
};

// kRunPoll: how often WaitForRun asks. kRunAppearWait: how long `--watch` waits for the run a
// prompt starts (it goes through the messages outbox, so it may trail the message a little).
inline constexpr absl::Duration kRunPoll = absl::Milliseconds(200);
inline constexpr absl::Duration kRunAppearWait = absl::Seconds(30);

// WaitForRun: asks AgentOrchestrator.ListRuns for the project's newest runs at once and then
// every kRunPoll, until one of them was started by `message_id`, or `wait` has passed. A failed
// call ends the wait, except UNAVAILABLE (the orchestrator may be starting).
[[nodiscard]] FoundRun WaitForRun(const GlobalOptions& options, std::ostream& log,
                                  const std::string& project_id, const std::string& message_id,
                                  absl::Duration wait);

// ShowRun: `qai watch`: a RunView on the invocation's output (live on a terminal, with a status
// line ticking ten times a second), a header naming the run, then FollowRun. Returns its code.
[[nodiscard]] int ShowRun(const Invocation& inv, const GlobalOptions& options,
                          const std::string& run_id, int64_t after_sequence);

// ShowPromptRun: `--watch` of `projects create` and `messages send`: waits (up to
// kRunAppearWait) for the run that `message_id` started, then ShowRun from its first event.
[[nodiscard]] int ShowPromptRun(const Invocation& inv, const GlobalOptions& options,
                                const std::string& project_id, const std::string& message_id);

}  // namespace qai::cli
