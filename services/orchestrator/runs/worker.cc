#include "services/orchestrator/runs/worker.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "services/orchestrator/agent/journal.h"
#include "services/orchestrator/model/metered_model.h"
#include "services/orchestrator/model/prompts.h"
#include "services/orchestrator/runs/conversation.h"
#include "services/orchestrator/runs/run_result.h"
#include "services/orchestrator/store/events.h"

namespace qai::orchestrator {
using common::ToValidUtf8;
using common::TruncateUtf8;

namespace mpb = ::qai::messages::v1;
using common::Log;
using common::LogLevel;

// InterruptedBy: a model call's observer that only says when to give up.
class InterruptedBy final : public ModelObserver {
 public:
  explicit InterruptedBy(std::function<bool()> interrupted)
      : interrupted_(std::move(interrupted)) {}
  bool Cancelled() override { return interrupted_(); }

 private:
  const std::function<bool()> interrupted_;
};

// Active: a run this replica is working on, and what the keeper learned about it.
struct WorkerPool::Active {
  Lease lease;
  std::atomic<bool> cancel{false};   // the run was asked to stop
  std::atomic<bool> lost{false};     // the lease is gone: write nothing more
  std::atomic<bool> release{false};  // this replica is stopping: hand the run back
  // The worker is ending the run (finishing it or handing it back): no more heartbeats, so the
  // keeper never renews, or reports as lost, a lease its own worker is just giving up. A lease
  // lasts long enough for that last write; if it fails, the rescuer takes the run later.
  std::atomic<bool> ending{false};
  SandboxWorkspace* workspace = nullptr;         // once open: its state is saved with the run's end
  absl::Time deadline = absl::InfiniteFuture();  // the run's timeout, from its first start
  // Until when (steady clock) the lease surely holds: no other worker may take the run before
  // then. Counted from when its last claim or renewal was sent, so clocks of other hosts
  // never matter.
  std::atomic<std::chrono::steady_clock::time_point> held_until{};
  void Renewed(std::chrono::steady_clock::time_point sent, absl::Duration lease_for) {
    held_until = sent + absl::ToChronoMicroseconds(lease_for);
  }
  bool TimedOut() const { return absl::Now() >= deadline; }
  bool Interrupted() const { return cancel || lost || release || TimedOut(); }
};

WorkerPool::WorkerPool(RunStore* store, messages::MessagesClient* messages, Model* model,
                       WorkerOptions options)
    : store_(store), messages_(messages), model_(model), options_(std::move(options)) {}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Start() {
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this, i] { Work(i); });
  threads_.emplace_back([this] { Keep(); });
}

void WorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    for (auto& [id, active] : active_) active->release = true;
  }
  wake_cv_.SignalAll();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void WorkerPool::Wake() {
  {
    absl::MutexLock lock(&mu_);
    ++wakeups_;
  }
  wake_cv_.SignalAll();
}

void WorkerPool::CancelRequested(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  if (auto it = active_.find(run_id); it != active_.end()) it->second->cancel = true;
}

int WorkerPool::running() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(active_.size());
}

void WorkerPool::Work(int index) {
  const std::string worker = absl::StrCat(options_.replica, "/", index);
  uint64_t seen_wakeups = 0;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    const absl::Time claim_start = absl::Now();
    const auto claim_sent = std::chrono::steady_clock::now();
    absl::StatusOr<std::optional<RunStore::Claimed>> claimed =
        store_->Claim(worker, options_.lease, [](int attempt) { return events::Started(attempt); });
    if (options_.metrics != nullptr)
      options_.metrics->ObservedClaim(absl::Now() - claim_start, claimed);
    if (claimed.ok() && claimed->has_value()) {
      auto active = std::make_shared<Active>();
      active->lease = (*claimed)->lease;
      active->Renewed(claim_sent, options_.lease);
      {
        absl::MutexLock lock(&mu_);
        active_[active->lease.run_id] = active;
        if (stopping_) active->release = true;
      }
      active->cancel = (*claimed)->run.cancel_requested;
      Execute((*claimed)->run, active);
      active->ending = true;
      {
        absl::MutexLock lock(&mu_);
        active_.erase(active->lease.run_id);
      }
      continue;  // there may be more
    }
    if (!claimed.ok()) {
      Log(LogLevel::kWarn, "claiming a run failed",
          {{"error", std::string(claimed.status().message())}});
    }
    // Every idle worker wakes on a wake-up (a burst of runs needs them all), and one that was
    // claiming while it came looks again at once.
    absl::MutexLock lock(&mu_);
    const absl::Time poll_end = absl::Now() + options_.poll_interval;
    while (!stopping_ && wakeups_ == seen_wakeups && !wake_cv_.WaitWithDeadline(&mu_, poll_end)) {
    }
    seen_wakeups = wakeups_;
  }
}

void WorkerPool::Keep() {
  const absl::Duration period = options_.lease / 3;
  absl::Time next_rescue = absl::Now();
  // Since when the database has answered every call of this loop (a refusal is an answer; only
  // UNAVAILABLE means it could not be reached). From the start, as after an outage, the runs'
  // own workers get a whole lease to renew before anyone's run is rescued.
  absl::Time reachable_since = absl::Now();
  auto saw = [&](const absl::Status& s) {
    if (s.code() == absl::StatusCode::kUnavailable) {
      reachable_since = absl::InfiniteFuture();
    } else if (reachable_since == absl::InfiniteFuture()) {
      reachable_since = absl::Now();
    }
  };
  for (;;) {
    std::vector<std::shared_ptr<Active>> active;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time wait_end = absl::Now() + std::min(period, absl::Seconds(1));
      while (!(stopping_ && active_.empty()) && !wake_cv_.WaitWithDeadline(&mu_, wait_end)) {
      }
      if (stopping_ && active_.empty()) return;
      for (auto& [id, a] : active_) active.push_back(a);
    }
    for (const auto& a : active) {
      if (a->ending) continue;
      const auto sent = std::chrono::steady_clock::now();
      absl::StatusOr<bool> cancel = store_->Heartbeat(a->lease, options_.lease);
      saw(cancel.status());
      if (cancel.ok()) {
        a->Renewed(sent, options_.lease);
        if (*cancel) a->cancel = true;
      } else if (cancel.status().code() == absl::StatusCode::kFailedPrecondition && !a->ending) {
        Log(LogLevel::kWarn, "lease lost; the run continues elsewhere",
            {{"run_id", a->lease.run_id}});
        a->lost = true;
      }
    }
    if (absl::Now() >= next_rescue) {
      next_rescue = absl::Now() + options_.lease / 2;
      saw(RescueLostRuns(reachable_since));
      ArchiveFinished();
    }
  }
}

void WorkerPool::ArchiveFinished() {
  constexpr int kBatch = 200;
  int total = 0;
  // A bounded amount per pass, so a large backlog (after an upgrade, or a long outage) is worked
  // off over several passes without holding up the keeper's heartbeats.
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<int> archived =
        store_->ArchiveEvents(absl::Now() - options_.archive_after, kBatch);
    if (!archived.ok()) {
      Log(LogLevel::kWarn, "archiving finished runs' events failed",
          {{"error", std::string(archived.status().message())}});
      break;
    }
    total += *archived;
    if (*archived < kBatch) break;
  }
  if (total > 0) Log(LogLevel::kInfo, "finished runs' events archived", {{"runs", total}});
}

absl::Status WorkerPool::Emit(Active& active, std::vector<v1::RunEvent> evs,
                              std::optional<int> iteration, const std::vector<std::string>& steps) {
  if (active.lost) return absl::FailedPreconditionError("lease lost");
  std::vector<std::string> payloads;
  payloads.reserve(evs.size());
  for (const v1::RunEvent& e : evs) payloads.push_back(e.SerializeAsString());
  absl::StatusOr<int64_t> appended = store_->Append(active.lease, payloads, iteration, steps);
  if (appended.status().code() == absl::StatusCode::kFailedPrecondition) active.lost = true;
  return appended.status();
}

void WorkerPool::Execute(const RunRecord& run, const std::shared_ptr<Active>& active) {
  common::RequestScope scope(run.id);
  Log(LogLevel::kInfo, "run started",
      {{"run_id", run.id}, {"project_id", run.project_id}, {"attempt", run.attempt}});
  // Past it the agent stops as for a cancel (a running command is killed) and the run fails.
  if (run.timeout > absl::ZeroDuration() && run.start_time)
    active->deadline = *run.start_time + run.timeout;
  // The run's lease token fences the workspace: a worker that lost the run can no longer touch it.
  SandboxWorkspace workspace(options_.sandbox, run.project_id, active->lease.token);
  absl::StatusOr<std::vector<std::string>> steps = store_->Steps(run.id);
  if (!steps.ok()) return RetryOrFail(run, *active, steps.status());
  if (absl::Status s = PrepareWorkspace(run, *steps, workspace); !s.ok())
    return RetryOrFail(run, *active, s);
  active->workspace = &workspace;
  if (run.restore_version > 0) return Restore(run, *active, workspace);
  RunTheAgent(run, active, *std::move(steps), workspace);
}

void WorkerPool::RunTheAgent(const RunRecord& run, const std::shared_ptr<Active>& active,
                             std::vector<std::string> steps, SandboxWorkspace& workspace) {
  absl::StatusOr<std::vector<mpb::Message>> before =
      messages_->Before(run.project_id, run.message_id, options_.history_messages);
  if (before.status().code() == absl::StatusCode::kNotFound) {
    // The project (and its messages) was deleted: nothing to answer.
    return Finish(run, *active, {.state = kCancelled, .terminal_event = events::Cancelled()});
  }
  if (!before.ok()) return RetryOrFail(run, *active, before.status());
  std::vector<ChatMessage> history = ChatTurns(*before);

  // The run's own model, if it asked for one; every call's token usage is added to the run's
  // as it comes back.
  const std::unique_ptr<Model> chosen = model_->ForModel(run.model);
  MeteredModel model(chosen ? chosen.get() : model_, [&](const TokenUsage& usage) {
    absl::Status s = store_->AddUsage(active->lease, usage.prompt_tokens, usage.completion_tokens);
    if (s.code() == absl::StatusCode::kFailedPrecondition) active->lost = true;
    if (!s.ok())
      Log(LogLevel::kWarn, "could not record token usage",
          {{"run_id", run.id}, {"error", std::string(s.message())}});
  });
  AgentOutcome outcome = RunAgent(
      {.prompt = run.prompt,
       .history = std::move(history),
       .max_iterations = run.max_iterations,
       .journal = std::move(steps)},
      model, workspace, options_.limits, [&] { return active->Interrupted(); },
      [&](std::vector<v1::RunEvent> evs, std::optional<int> iteration,
          std::vector<std::string> steps) {
        return Emit(*active, std::move(evs), iteration, steps);
      });
  if (active->lost) return;  // another worker has the run now
  const bool finished = outcome.kind == AgentOutcome::Kind::kSummary ||
                        outcome.kind == AgentOutcome::Kind::kNoSummary;
  if (active->release && !finished) {
    // This replica is stopping: the run goes back to the queue for another one, at once.
    active->ending = true;
    absl::Status s = store_->Requeue(
        active->lease, absl::ZeroDuration(),
        events::Retrying(run.attempt, "its replica shut down", absl::ZeroDuration()),
        /*refund_attempt=*/true);
    if (!s.ok())
      Log(LogLevel::kWarn, "could not hand a run back",
          {{"run_id", run.id}, {"error", std::string(s.message())}});
    return;
  }
  switch (outcome.kind) {
    case AgentOutcome::Kind::kCancelled:
      if (!active->cancel && active->TimedOut()) {
        return FailWithMessage(run, *active,
                               absl::StrCat("the run took longer than its timeout of ",
                                            absl::FormatDuration(run.timeout)));
      }
      return Finish(run, *active, {.state = kCancelled, .terminal_event = events::Cancelled()});
    case AgentOutcome::Kind::kStopped:
      return RetryOrFail(run, *active, outcome.status, outcome.model_fault);
    case AgentOutcome::Kind::kNoSummary:
      return FailWithMessage(run, *active,
                             absl::StrCat("the agent reached its limit of ", run.max_iterations,
                                          " iterations without finishing"));
    case AgentOutcome::Kind::kSummary:
      if (outcome.files_written.empty())
        return FailWithMessage(run, *active, "the agent finished without writing any files");
      return Succeed(run, *active, outcome, workspace, model);
  }
}

absl::Status WorkerPool::PrepareWorkspace(const RunRecord& run,
                                          const std::vector<std::string>& steps,
                                          SandboxWorkspace& workspace) {
  QAI_ASSIGN_OR_RETURN(HeldWorkspace held, workspace.Open());
  QAI_ASSIGN_OR_RETURN(std::optional<WorkspaceState> state, store_->WorkspaceOf(run.project_id));
  // The sandbox's workspace is trusted only when it is known to hold the project's last state
  // and the run has no steps yet: otherwise (the project ran elsewhere since, this attempt
  // follows a crash, the sandbox replica is new) it is rebuilt from that state plus the journal.
  const std::string head = state ? state->snapshot_id : "";
  if (steps.empty() && !head.empty() && held.snapshot_id == head) return absl::OkStatus();
  // A project's first run finds its new workspace empty, as it should be.
  if (steps.empty() && head.empty() && held.empty) return absl::OkStatus();
  Log(LogLevel::kInfo, "rebuilding the workspace",
      {{"run_id", run.id}, {"steps", static_cast<int64_t>(steps.size())}});
  QAI_ASSIGN_OR_RETURN(journal::Changes changes, journal::NetChanges(steps));
  return workspace.Restore(head, changes);
}

void WorkerPool::Finish(const RunRecord& run, Active& active, FinishParams params) {
  const int state = params.state;
  if (params.draft_snapshot_id.empty() && active.workspace != nullptr) {
    // What the run left is kept as its draft; the project's next run starts from its last
    // version (its workspace is restored to it: it no longer holds that state). A draft that
    // cannot be saved (too large, the sandbox down) is lost, the version is not.
    absl::StatusOr<SavedSnapshot> saved = active.workspace->Snapshot(common::NewUuid(), run.id);
    if (saved.ok()) {
      params.draft_snapshot_id = saved->id;
      params.draft_url = saved->preview_url;
    } else {
      Log(LogLevel::kWarn, "could not save the workspace",
          {{"run_id", run.id}, {"error", std::string(saved.status().message())}});
    }
  }
  active.ending = true;
  absl::Status s = store_->Finish(active.lease, params);
  if (s.ok() && options_.metrics != nullptr) options_.metrics->RunFinished(state);
  if (!s.ok()) {
    // A lost lease means another worker owns the run; anything else is retried by the rescuer
    // once this lease lapses.
    Log(LogLevel::kWarn, "could not finish a run",
        {{"run_id", run.id}, {"error", std::string(s.message())}});
    return;
  }
  Log(LogLevel::kInfo, "run finished", {{"run_id", run.id}, {"state", state}});
}

void WorkerPool::RetryOrFail(const RunRecord& run, Active& active, const absl::Status& fault,
                             bool model_fault) {
  if (active.lost) return;
  const bool transient = common::IsRetryable(fault);
  if (!transient) return FailWithMessage(run, active, std::string(fault.message()));
  if (!model_fault) return HandBack(run, active, fault);
  if (run.attempt >= options_.max_attempts) {
    return FailWithMessage(
        run, active, absl::StrCat("gave up after ", run.attempt, " attempts: ", fault.message()));
  }
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);  // the generator is shared by the workers
    delay =
        common::BackoffDelay(run.attempt - 1, options_.base_backoff, options_.max_backoff, rng_);
  }
  // A server that said when to come back (Retry-After) is not asked sooner.
  if (std::optional<absl::Duration> asked = common::GetRetryDelay(fault)) {
    delay = std::max(delay, std::min(*asked, options_.max_backoff));
  }
  Log(LogLevel::kWarn, "run attempt failed; retrying",
      {{"run_id", run.id},
       {"attempt", run.attempt},
       {"error", std::string(fault.message())},
       {"retry_in_ms", absl::ToInt64Milliseconds(delay)}});
  active.ending = true;
  absl::Status s = store_->Requeue(
      active.lease, delay, events::Retrying(run.attempt, std::string(fault.message()), delay));
  if (!s.ok())
    Log(LogLevel::kWarn, "could not requeue a run",
        {{"run_id", run.id}, {"error", std::string(s.message())}});
}

void WorkerPool::HandBack(const RunRecord& run, Active& active, const absl::Status& fault) {
  if (active.TimedOut()) {
    return FailWithMessage(run, active,
                           absl::StrCat("gave up at its timeout of ",
                                        absl::FormatDuration(run.timeout), ": ", fault.message()));
  }
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);
    delay = common::BackoffDelay(2, options_.base_backoff, options_.max_backoff, rng_);
  }
  Log(LogLevel::kWarn, "a dependency failed; the run waits for it without losing an attempt",
      {{"run_id", run.id},
       {"error", std::string(fault.message())},
       {"retry_in_ms", absl::ToInt64Milliseconds(delay)}});
  active.ending = true;
  const std::string retrying = events::Retrying(run.attempt, std::string(fault.message()), delay);
  for (;;) {
    absl::Status s = store_->Requeue(active.lease, delay, retrying, /*refund_attempt=*/true);
    // Done, or the run is another worker's now (the lease lapsed and was rescued meanwhile).
    if (s.ok() || s.code() == absl::StatusCode::kFailedPrecondition) return;
    // The database is down too: this worker keeps the run until it can give it back (its
    // lease is safe for a whole lease after the database returns, see RescueLostRuns).
    if (active.release) {
      Log(LogLevel::kWarn, "could not hand a run back",
          {{"run_id", run.id}, {"error", std::string(s.message())}});
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

absl::Status WorkerPool::RescueLostRuns(absl::Time reachable_since) {
  if (absl::Now() - reachable_since < options_.lease) return store_->Ping();
  const RunStore::RescueEvents rescue{
      [](int attempt) {
        return events::Retrying(attempt, "its worker stopped answering", absl::ZeroDuration());
      },
      [](const std::string& error) { return events::Failed(error); }, events::Cancelled(),
      ErrorResult};
  absl::StatusOr<int> rescued = store_->RescueExpired(options_.max_attempts, rescue);
  if (rescued.ok() && *rescued > 0) {
    Log(LogLevel::kWarn, "runs of lost workers requeued or failed", {{"runs", *rescued}});
    Wake();
    if (options_.outbox_written) options_.outbox_written();
  }
  return rescued.status();
}

bool WorkerPool::StillHolds(Active& active) {
  if (active.lost) return false;
  // Most of the lease left (the keeper renews it every third of it): it holds, no need to ask.
  const auto now = std::chrono::steady_clock::now();
  if (now + absl::ToChronoMicroseconds(options_.lease / 2) < active.held_until.load()) return true;
  absl::StatusOr<bool> renewed = store_->Heartbeat(active.lease, options_.lease);
  if (renewed.status().code() == absl::StatusCode::kFailedPrecondition) active.lost = true;
  if (renewed.ok()) active.Renewed(now, options_.lease);
  return renewed.ok();
}

void WorkerPool::FailWithMessage(const RunRecord& run, Active& active, const std::string& error) {
  // The ERROR message goes out through the outbox, written with the run's end: both or neither.
  Finish(run, active,
         {.state = kFailed,
          .error = error,
          .terminal_event = events::Failed(error),
          .error_result = ErrorResult(run.id, run.project_id)});
  DeliverResult(run);
}

void WorkerPool::DeliverResult(const RunRecord& run) {
  if (options_.deliver_now) return options_.deliver_now(ResultKey(run.project_id));
  if (options_.outbox_written) options_.outbox_written();
}

void WorkerPool::Succeed(const RunRecord& run, Active& active, const AgentOutcome& outcome,
                         SandboxWorkspace& workspace, Model& model) {
  // The snapshot's preview serves this version for good, whatever later runs change.
  absl::StatusOr<SavedSnapshot> snapshot = workspace.Snapshot(common::NewUuid(), run.id);
  if (absl::IsFailedPrecondition(snapshot.status())) {
    // qai-sandbox's own reasons already say "snapshot: ".
    const std::string why(snapshot.status().message());
    return FailWithMessage(run, active,
                           why.starts_with("snapshot: ") ? why : absl::StrCat("snapshot: ", why));
  }
  if (!snapshot.ok()) return RetryOrFail(run, active, snapshot.status());

  // The title and the friendly answer come from the model too; a fault there is no reason to
  // lose the work, so plain fallbacks stand in. Like every model call of the run, they stop as
  // soon as the run is cancelled, times out or this replica drains (the fallbacks then too).
  InterruptedBy interrupted([&] { return active.Interrupted(); });
  auto ask = [&](const char* system, std::string fallback) {
    if (active.Interrupted()) return fallback;
    absl::StatusOr<ModelReply> reply =
        model.Stream({{.role = ChatMessage::Role::kSystem, .content = system},
                      {.role = ChatMessage::Role::kUser, .content = outcome.summary}},
                     {}, interrupted);
    return reply.ok() && !reply->text.empty() ? reply->text : fallback;
  };
  // Within MessageService's limits, so a talkative model cannot cost the run its result.
  const std::string title = TruncateUtf8(ask(kTitleSystemPrompt, "Your App"), 200);
  const std::string response = TruncateUtf8(ask(kResponseSystemPrompt, outcome.summary), 100000);
  const std::string summary = TruncateUtf8(outcome.summary, 20000);

  // Cancelled while it finished: cancelled it is (what it made is its draft).
  if (active.cancel) {
    return Finish(run, active,
                  {.state = kCancelled,
                   .terminal_event = events::Cancelled(),
                   .draft_snapshot_id = snapshot->id,
                   .draft_url = snapshot->preview_url});
  }
  if (!StillHolds(active)) return;

  Post(run, active,
       RunResult(run, {.content = response, .title = title, .summary = summary}, *snapshot),
       snapshot->id);
}

void WorkerPool::Restore(const RunRecord& run, Active& active, SandboxWorkspace& workspace) {
  // A fork's first run brings another project's version.
  const std::string& source =
      run.restore_project_id.empty() ? run.project_id : run.restore_project_id;
  absl::StatusOr<VersionRecord> version = options_.versions->Get(source, run.restore_version);
  if (absl::IsNotFound(version.status())) {
    return FailWithMessage(run, active, std::string(version.status().message()));
  }
  if (!version.ok()) return RetryOrFail(run, active, version.status());
  if (absl::Status s = workspace.Restore(version->snapshot_id, {}, run.restore_project_id);
      !s.ok()) {
    return RetryOrFail(run, active, s);
  }
  // A snapshot of its own: the new version's preview, whatever later runs change.
  absl::StatusOr<SavedSnapshot> snapshot = workspace.Snapshot(common::NewUuid(), run.id);
  if (!snapshot.ok()) return RetryOrFail(run, active, snapshot.status());
  if (!StillHolds(active)) return;
  Post(run, active,
       RunResult(run, RestoredText(*version, /*fork=*/!run.restore_project_id.empty()), *snapshot),
       snapshot->id);
}

void WorkerPool::Post(const RunRecord& run, Active& active,
                      const mpb::RecordAgentResultRequest& result, const std::string& snapshot_id) {
  // The result goes to MessageService through the outbox, as a failure's does; the run ends
  // SUCCEEDED once its message is stored (effects.h), whichever replica delivers it.
  active.ending = true;
  absl::Status posted = store_->PostResult(
      active.lease, {.result = result.SerializeAsString(), .workspace_snapshot_id = snapshot_id});
  if (absl::IsFailedPrecondition(posted)) return;  // the run is another worker's now
  if (!posted.ok()) return RetryOrFail(run, active, posted);
  DeliverResult(run);
  if (options_.metrics != nullptr) options_.metrics->RunFinished(kSucceeded);
  Log(LogLevel::kInfo, "run result posted", {{"run_id", run.id}});
}

}  // namespace qai::orchestrator
