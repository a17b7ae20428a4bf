#pragma once
// WorkerPool: one replica's workers, taking runs from the shared queue and running them.
//
// Each worker claims a due run (RunStore::Claim), runs the agent in the project's workspace,
// and ends the run: SUCCEEDED (the files snapshotted for the preview server, the ASSISTANT
// message and its fragment stored through MessageService), FAILED (an ERROR message sent
// through the outbox, written with the run's end) or CANCELLED. Workers wake when a run becomes due
// (NOTIFY, see Wake) and otherwise poll. A keeper thread renews every lease this replica holds,
// notices cancels and lost leases, and rescues runs whose worker elsewhere died (lapsed leases).
// Transient faults (model or MessageService unavailable) put the run back in the queue with
// exponential backoff and jitter, up to max_attempts. Stop() hands running runs back to the queue
// at once, so another replica continues them.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/messages/client/messages_client.h"
#include "services/orchestrator/agent/agent.h"
#include "services/orchestrator/runs/run_metrics.h"
#include "services/orchestrator/runs/sandbox_workspace.h"
#include "services/orchestrator/store/run_store.h"
#include "services/orchestrator/store/version_store.h"

namespace qai::orchestrator {

struct WorkerOptions {
  std::string replica;  // names this replica in leases and logs
  int workers = 2;
  absl::Duration lease = absl::Seconds(30);
  absl::Duration poll_interval = absl::Seconds(2);
  int max_attempts = 3;
  absl::Duration base_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
  // Where projects' workspaces are (qai-sandbox); a fragment's sandbox_url is its snapshot's
  // preview URL.
  SandboxClient* sandbox = nullptr;
  size_t history_messages = 20;
  AgentLimits limits;
  // Finished runs' events are archived (RunStore::ArchiveEvents) this long after the run ended.
  absl::Duration archive_after = absl::Hours(1);
  // Called after outbox rows were written (to wake the relay).
  std::function<void()> outbox_written;
  // Delivers the outbox rows of an ordering key now, on the worker's thread
  // (OutboxRelay::DeliverNow): a run's result (ResultKey) is stored without waiting for the
  // relay's next pass. Unset: the relay is woken instead.
  std::function<void(const std::string& ordering_key)> deliver_now;
  // Where claims and finished runs are counted; nullptr: nowhere.
  RunMetrics* metrics = nullptr;
  // The versions restores bring back. Must be set.
  VersionStore* versions = nullptr;
};

class WorkerPool {
 public:
  // All pointers must outlive the pool.
  WorkerPool(RunStore* store, messages::MessagesClient* messages, Model* model,
             WorkerOptions options);
  ~WorkerPool();  // Stop()s

  void Start();
  // Stop: no more claims; running agents stop and their runs go back to the queue.
  void Stop();
  // Wake: a run may have become due.
  void Wake();
  // CancelRequested: a run was asked to stop (NOTIFY); its worker, if here, stops soon.
  void CancelRequested(const std::string& run_id);
  int running() const;

 private:
  struct Active;
  void Work(int index);
  void Keep();
  // Execute: the claimed run, in its prepared workspace: the agent, or a restore.
  void Execute(const RunRecord& run, const std::shared_ptr<Active>& active);
  void RunTheAgent(const RunRecord& run, const std::shared_ptr<Active>& active,
                   std::vector<std::string> steps, SandboxWorkspace& workspace);
  // Restore: the workspace becomes the version's files, a snapshot of them the result (Post).
  void Restore(const RunRecord& run, Active& active, SandboxWorkspace& workspace);
  // Post: the run's result, with the snapshot its workspace is now, goes out
  // (RunStore::PostResult); the run ends SUCCEEDED once MessageService has stored it.
  void Post(const RunRecord& run, Active& active,
            const messages::v1::RecordAgentResultRequest& result, const std::string& snapshot_id);
  void Finish(const RunRecord& run, Active& active, FinishParams params);
  // RetryOrFail: after a fault, the run fails (a fault retrying cannot fix), goes back to the
  // queue costing an attempt (the model's transient faults, up to max_attempts), or goes back
  // without costing one (HandBack: a QAI service or the database briefly down).
  void RetryOrFail(const RunRecord& run, Active& active, const absl::Status& fault,
                   bool model_fault = false);
  // HandBack: the run back to the queue with its attempt given back, to wait (up to its timeout)
  // for a dependency to return; asked again until the database takes it.
  void HandBack(const RunRecord& run, Active& active, const absl::Status& fault);
  // RescueLostRuns: the rescuer's pass over lapsed leases, once the database has been reachable
  // for a whole lease since `reachable_since` (after an outage, the runs' own workers get that
  // long to renew their leases first). Returns what the database answered.
  absl::Status RescueLostRuns(absl::Time reachable_since);
  void FailWithMessage(const RunRecord& run, Active& active, const std::string& error);
  // DeliverResult: the run's result, just written to the outbox, goes to MessageService now.
  void DeliverResult(const RunRecord& run);
  void ArchiveFinished();
  // Succeed: saves the workspace's snapshot, asks `model` (the run's metered one) for a title
  // and an answer, and posts the result (RunStore::PostResult); the run ends SUCCEEDED once
  // MessageService has stored it.
  void Succeed(const RunRecord& run, Active& active, const AgentOutcome& outcome,
               SandboxWorkspace& workspace, Model& model);
  // StillHolds: whether the lease is surely still this worker's: known locally while most of
  // it is left, else renewed now; false when it is gone (or cannot be renewed right now).
  bool StillHolds(Active& active);
  absl::Status Emit(Active& active, std::vector<v1::RunEvent> events, std::optional<int> iteration,
                    const std::vector<std::string>& steps);
  // PrepareWorkspace: opens the project's workspace in the sandbox and rebuilds it from the
  // project's last state and the run's journal unless it is known to be current.
  absl::Status PrepareWorkspace(const RunRecord& run, const std::vector<std::string>& steps,
                                SandboxWorkspace& workspace);

  RunStore* const store_;
  messages::MessagesClient* const messages_;
  Model* const model_;
  const WorkerOptions options_;

  mutable absl::Mutex mu_;
  absl::CondVar wake_cv_;
  uint64_t wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::shared_ptr<Active>> active_ ABSL_GUARDED_BY(mu_);  // by run id
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);  // shared by the workers
  // Started by Start and joined by Stop, which the owner calls from one thread.
  std::vector<std::thread> threads_;
};

}  // namespace qai::orchestrator
