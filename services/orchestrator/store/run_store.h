#pragma once
// RunStore: the `orchestrator` schema behind plain structs: the durable run queue, leases with
// fencing tokens, and each run's gap-free event log. SQL lives here and nowhere else.
//
// A worker Claim()s a due run (FOR UPDATE SKIP LOCKED) and gets a Lease: the run id plus a
// fencing token. Every later write of that worker names the lease, and is refused
// (FAILED_PRECONDITION, "lease lost"; not ABORTED, which stays a deadlock or serialization
// failure worth a retry) once the lease lapsed and the run was queued again or taken by another
// worker, so two workers can never both write to one run. Events are written in the
// transaction of the state change they report, numbered from runs.last_sequence under the run
// row's lock (so
// 1, 2, 3... with no gaps), and announced with NOTIFY when that transaction commits.
//
// Events are opaque bytes here (serialized RunEvents with only their payload set); the store
// supplies sequence numbers and times.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/db_pool.h"
#include "services/orchestrator/client/run_settings.h"
#include "services/orchestrator/store/effects.h"

namespace qai::orchestrator {

// Run states: the numbers of qai.orchestrator.v1.Run.State.
inline constexpr int kQueued = 1;
inline constexpr int kRunning = 2;
inline constexpr int kSucceeded = 3;
inline constexpr int kFailed = 4;
inline constexpr int kCancelled = 5;

// NOTIFY channels: a run became due; a run has new events ("<run id>:<last sequence>");
// a running run was asked to stop ("<run id>").
inline constexpr char kRunsChannel[] = "qai_runs";
inline constexpr char kEventsChannel[] = "qai_run_events";
inline constexpr char kCancelChannel[] = "qai_run_cancel";

// A run entered `state`; `sequence` is the run's last event sequence with that change.
struct RunStateChange {
  std::string run_id;
  std::string project_id;
  int state = 0;
  absl::Time run_create_time;
  int64_t sequence = 0;
};
// StateNews: the outbox payload announcing a state change (a serialized RecordLatestRunRequest).
using StateNews = std::function<std::string(const RunStateChange&)>;

struct RunRecord {
  std::string id;
  std::string project_id;
  std::string message_id;
  std::string prompt;
  int state = kQueued;
  int attempt = 0;
  int iteration = 0;
  int max_iterations = 0;
  absl::Time create_time;
  std::optional<absl::Time> start_time;
  std::optional<absl::Time> end_time;
  std::string error;
  std::string result_message_id;
  std::string sandbox_url;
  int64_t last_sequence = 0;
  bool cancel_requested = false;
  int64_t prompt_tokens = 0;  // token usage of the run's model calls so far
  int64_t completion_tokens = 0;
  std::string model;  // "" for runs queued before runs had their own: the default
  absl::Duration timeout = absl::ZeroDuration();  // from the first start; zero: none
  int64_t steps = 0;                              // journal steps recorded over all attempts
  std::string author;             // the principal the run counts against; "" for none
  std::string draft_url;          // a failed or cancelled run's draft: the preview of what it left
  std::string draft_snapshot_id;  // and the snapshot that holds it
  int version = 0;                // the version the run made; 0: none (yet)
  int restore_version = 0;  // a restore: the version it brings back (no model); 0: an agent's run
  std::string restore_project_id;  // and the project it is of, when another (a fork's start)
  bool Finished() const { return state == kSucceeded || state == kFailed || state == kCancelled; }
};

struct StartParams {
  std::string id;  // the new run's id (ignored when the message already has a run)
  std::string project_id;
  std::string message_id;  // the USER message it answers; "" for a restore
  std::string prompt;
  int max_iterations = 15;
  std::string model;
  absl::Duration timeout = absl::ZeroDuration();
  // Refuse (FAILED_PRECONDITION) instead of queueing while the project has an active run.
  bool reject_if_active = false;
  std::string queued_event;  // the first event
  // The principal the run counts against (the prompt's author); "": none, only the project's
  // cap applies.
  std::string author;
  // The most runs queued or running at once per project and per author (0: no cap); a new run
  // past one of them is refused with RESOURCE_EXHAUSTED (orchestrator::CheckActiveRuns).
  orchestrator::RunCaps caps{.per_project = 0, .per_principal = 0};
  // A restore: the version it brings back, and "<principal>:<request id>" of the request, which
  // a repeat names to get this run back (another version under the same key is
  // INVALID_ARGUMENT on request_id).
  int restore_version = 0;
  std::string request_key;
  // A fork's first run: the project whose version it restores ("": its own).
  std::string restore_project_id;
};

// Lease: a worker's hold on a RUNNING run.
struct Lease {
  std::string run_id;
  int64_t token = 0;
};

struct StoredEvent {
  int64_t sequence = 0;
  absl::Time time;
  std::string event;  // serialized RunEvent payload
};

// WorkspaceState: the project's last state: the snapshot (in qai-sandbox) of its workspace as
// its last finished run left it.
struct WorkspaceState {
  std::string run_id;
  std::string snapshot_id;
};

// Finish: the end of a run, written with its terminal event.
struct FinishParams {
  int state = kSucceeded;  // kSucceeded, kFailed or kCancelled
  std::string error;
  std::string result_message_id;
  std::string sandbox_url;
  std::string terminal_event;
  // kFailed: the ERROR message to store (outbox payload, see kTopicRecordResult); empty: none.
  std::string error_result;
  // kFailed, kCancelled: the snapshot of the workspace as the run left it, and its preview: the
  // run's draft. The project's state stays its last version.
  std::string draft_snapshot_id;
  std::string draft_url;
};

class RunStore {
 public:
  // With `news`, every state change also writes a kTopicRecordLatestRun outbox row.
  explicit RunStore(common::DbPool* db, StateNews news = nullptr)
      : db_(db), news_(std::move(news)) {}

  // Start: queues a run with its `queued` event. A message that already has a run gets that
  // run back unchanged (whatever its state, whatever the caps). A new run that would make the
  // project's or the author's active runs exceed params.caps is refused (RESOURCE_EXHAUSTED
  // with a QuotaFailure); the count and the insert are serialised per project and per author
  // (transaction-scoped advisory locks), so concurrent Starts never get past a cap together.
  [[nodiscard]] absl::StatusOr<RunRecord> Start(const StartParams& params);
  // CountActive: the runs queued or running now of the project and, when `author` is not empty,
  // of the author (over every project).
  [[nodiscard]] absl::StatusOr<orchestrator::ActiveRuns> CountActive(const std::string& project_id,
                                                                     const std::string& author);
  [[nodiscard]] absl::StatusOr<RunRecord> Get(const std::string& id);
  // Ping: whether the database answers (UNAVAILABLE when it cannot be reached).
  [[nodiscard]] absl::Status Ping();
  // List: a project's runs, newest first, after the keyset cursor (create_time µs, id).
  [[nodiscard]] absl::StatusOr<std::vector<RunRecord>> List(
      const std::string& project_id, int limit,
      std::optional<std::pair<int64_t, std::string>> before);

  // Claim: the next due run whose project has no running run (the earliest queued of its
  // project), now RUNNING under a new lease for `lease_for`, with its `started` event built
  // by started_event(attempt). nullopt when nothing is due.
  struct Claimed {
    RunRecord run;
    Lease lease;
  };
  [[nodiscard]] absl::StatusOr<std::optional<Claimed>> Claim(
      const std::string& worker, absl::Duration lease_for,
      const std::function<std::string(int attempt)>& started_event);
  // Heartbeat: extends the lease; FAILED_PRECONDITION when it was lost. Returns whether a
  // cancel was asked.
  [[nodiscard]] absl::StatusOr<bool> Heartbeat(const Lease& lease, absl::Duration lease_for);
  // Append: events of a running run (and its current iteration, when given), and with them
  // the next entries of the run's journal (JSON documents, counted in the run's steps), in one
  // transaction; FAILED_PRECONDITION when the lease was lost. Returns the new last sequence.
  [[nodiscard]] absl::StatusOr<int64_t> Append(const Lease& lease,
                                               const std::vector<std::string>& events,
                                               std::optional<int> iteration = std::nullopt,
                                               const std::vector<std::string>& steps = {});
  // Steps: the run's journal, in order (kept until the run ends).
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> Steps(const std::string& run_id);
  // WorkspaceOf: the project's workspace state (as its last finished run left it), if any.
  [[nodiscard]] absl::StatusOr<std::optional<WorkspaceState>> WorkspaceOf(
      const std::string& project_id);
  // AddUsage: adds a model call's token usage to the run's; FAILED_PRECONDITION when the lease
  // was lost.
  [[nodiscard]] absl::Status AddUsage(const Lease& lease, int64_t prompt_tokens,
                                      int64_t completion_tokens);
  // Requeue: a transient fault: the run goes back to the queue, due after `delay`, with the
  // `retrying` event; FAILED_PRECONDITION when the lease was lost. refund_attempt: the attempt
  // does not count (its replica was stopped, nothing failed).
  [[nodiscard]] absl::Status Requeue(const Lease& lease, absl::Duration delay,
                                     const std::string& retrying_event,
                                     bool refund_attempt = false);
  // Finish: ends the run with its terminal event; FAILED_PRECONDITION when the lease was lost.
  [[nodiscard]] absl::Status Finish(const Lease& lease, const FinishParams& params);
  // Cancel: a queued run ends CANCELLED at once (with its event); a running one is asked to
  // stop (its worker ends it between tool calls); a finished one is left as it is.
  [[nodiscard]] absl::StatusOr<RunRecord> Cancel(const std::string& id,
                                                 const std::string& cancelled_event);
  // CancelProject: Cancel for every active run of the project.
  [[nodiscard]] absl::Status CancelProject(const std::string& project_id,
                                           const std::string& cancelled_event);
  // PurgeProject: forgets a deleted project's saved workspace and versions and asks qai-sandbox,
  // through the outbox, to purge it (its snapshots, so its previews stop). Idempotent.
  [[nodiscard]] absl::Status PurgeProject(const std::string& project_id);

  // RescueExpired: running runs whose lease lapsed (their worker died or hung) go back to the
  // queue with a `retrying` event, or end FAILED once they used max_attempts. Returns how many.
  struct RescueEvents {
    std::function<std::string(int attempt)> retrying;
    std::function<std::string(const std::string& error)> failed;
    std::string cancelled;  // for a run that was asked to stop anyway
    // The ERROR message of a run failed here (outbox payload, see kTopicRecordResult).
    std::function<std::string(const std::string& run_id, const std::string& project_id)>
        error_result;
  };
  [[nodiscard]] absl::StatusOr<int> RescueExpired(int max_attempts, const RescueEvents& events);

  // A run's result: the worker posts it and MessageService stores it; the run is SUCCEEDED only
  // once its ASSISTANT message exists.
  //
  // PostResult: the result's outbox row (kTopicRecordResult, `result` its payload) and the
  // project's new workspace state, in one transaction. The lease ends with it (no later write
  // of this worker counts, the rescuer leaves the run alone): the run stays RUNNING, waiting
  // for its result, until ResultStored or ResultRefused ends it. FAILED_PRECONDITION when the
  // lease was lost.
  struct PostedResult {
    std::string result;
    std::string workspace_snapshot_id;
  };
  [[nodiscard]] absl::Status PostResult(const Lease& lease, const PostedResult& posted);
  // ResultStored: MessageService stored the run's result (the outbox's delivery). A run waiting
  // for it ends SUCCEEDED with the message and the sandbox URL, and makes the project's next
  // version (VersionStore) of the snapshot PostResult recorded; its terminal event is
  // succeeded_event(version number). For a run that failed, the message (its ERROR) is only
  // noted. Once: later calls change nothing.
  struct StoredResult {
    std::string run_id;
    std::string message_id;
    std::string sandbox_url;
    std::string title;
    std::function<std::string(int version)> succeeded_event;
  };
  [[nodiscard]] absl::Status ResultStored(const StoredResult& stored);
  // ResultRefused: MessageService refused the run's result for good (the project is gone, the
  // result is invalid): a run waiting for it ends FAILED with `error` and `failed_event`, on
  // `conn` in the transaction that parks the outbox row. Any other run is left as it is.
  [[nodiscard]] absl::Status ResultRefused(common::DbConnection& conn, const std::string& run_id,
                                           const std::string& error,
                                           const std::string& failed_event);

  // Events: up to `limit` events of a run with sequence > after, in order (archived or not).
  [[nodiscard]] absl::StatusOr<std::vector<StoredEvent>> Events(const std::string& run_id,
                                                                int64_t after, int limit);
  // ArchiveEvents: the events of up to `batch` runs that finished before `finished_before` move
  // out of the event table into one compact row per run (Events reads both), so the table runs
  // append to holds only recent work. Returns how many runs were archived.
  [[nodiscard]] absl::StatusOr<int> ArchiveEvents(absl::Time finished_before, int batch);

  // QueueCounts: the runs queued (due now or waiting out a retry's backoff), due, and running,
  // over every replica, counted through the partial indexes of queued and running runs (for
  // metrics, so it never reads the finished runs).
  struct QueueCounts {
    int64_t queued = 0;
    int64_t due = 0;
    int64_t running = 0;
  };
  [[nodiscard]] absl::StatusOr<QueueCounts> CountQueue();

  // Appended: what AppendEvents wrote, and the run's fields an announcement needs.
  struct Appended {
    int64_t last = 0;  // the run's last sequence now
    std::string project_id;
    absl::Time run_create_time;
  };

 private:
  // Announce: the state change's outbox row (when there is a StateNews), in `conn`'s
  // transaction, right after the events that report it.
  absl::Status Announce(common::DbConnection& conn, const std::string& run_id, int state,
                        const Appended& appended);
  // End: the run ends as `p` says (its terminal event already appended), in `conn`'s
  // transaction: its journal goes, the change is announced, the project's next run may go.
  absl::Status End(common::DbConnection& conn, const std::string& run_id, const FinishParams& p,
                   const Appended& appended);

  common::DbPool* const db_;
  const StateNews news_;
};

}  // namespace qai::orchestrator
