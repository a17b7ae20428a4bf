#include "services/orchestrator/api/watch.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/validation.h"
#include "services/orchestrator/store/events.h"

namespace qai::orchestrator {
namespace {

class WatchReactor final : public grpc::ServerWriteReactor<v1::RunEvent>,
                           public WatchRegistry::Stream {
 public:
  WatchReactor(grpc::CallbackServerContext* ctx, const v1::WatchRunRequest& req,
               const WatchEnv& env)
      : env_(env), run_id_(req.run_id()), last_sent_(req.after_sequence()), start_(absl::Now()) {
    call_.request_id = common::RequestIdFrom(*ctx);
    ctx->AddInitialMetadata("x-request-id", call_.request_id);
    if (auto deadline = ctx->deadline(); deadline != std::chrono::system_clock::time_point::max()) {
      call_.deadline = absl::FromChrono(deadline);
    }
    absl::StatusOr<common::Principal> principal = common::AdmitCall(*env.rpc, *ctx, "WatchRun");
    if (!principal.ok()) {
      End(principal.status());
      return;
    }
    call_.principal = *std::move(principal);
    const std::string holder =
        call_.principal.role == common::Role::kService
            ? ""
            : absl::StrCat(common::ToAbsl(common::RoleName(call_.principal.role)), ":",
                           call_.principal.id);
    if (absl::Status s = env_.registry->Add(this, holder); !s.ok()) {
      End(s);
      return;
    }
    const auto& md = ctx->client_metadata();
    if (auto it = md.find("authorization"); it != md.end())
      call_.authorization.assign(it->second.data(), it->second.size());
    common::FieldViolations bad;
    common::CheckUuid(bad, "run_id", run_id_, /*required=*/true);
    if (req.after_sequence() < 0) bad.Add("after_sequence", "must not be negative");
    if (absl::Status s = bad.ToStatus(); !s.ok()) {
      End(s);
      return;
    }
    // The visibility check asks ProjectService: it blocks, so it runs on the executor.
    Schedule([this] { Open(); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return EndLocked(absl::CancelledError("the watcher went away"));
    const bool terminal = events::IsTerminal(batch_.front());
    last_sent_ = batch_.front().sequence();
    batch_.pop_front();
    if (terminal) return EndLocked(absl::OkStatus());
    PumpLocked();
  }

  void Close() override {
    absl::MutexLock lock(&mu_);
    EndLocked(
        absl::UnavailableError("this replica is shutting down; reconnect with your last sequence"));
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    EndLocked(absl::CancelledError("the watcher cancelled"));
  }

  void OnDone() override {
    std::optional<EventHub::Subscription> subscription;
    {
      absl::MutexLock lock(&mu_);
      subscription.swap(subscription_);
    }
    // Outside the lock: a hub callback running right now takes it, and Unsubscribe waits for
    // that callback to return.
    if (subscription) env_.hub->Unsubscribe(*subscription);
    env_.registry->Remove(this);
    mu_.Lock();
    done_ = true;
    UnlockAndMaybeDelete();
  }

 private:
  // Schedule: fn on the executor, keeping the reactor alive until it ran.
  void Schedule(std::function<void()> fn) {
    {
      absl::MutexLock lock(&mu_);
      ++jobs_;
    }
    auto job = [this, fn = std::move(fn)] {
      common::RequestScope scope(call_.request_id);
      fn();
      mu_.Lock();
      --jobs_;
      UnlockAndMaybeDelete();
    };
    if (!env_.executor->TrySubmit(job)) {
      absl::MutexLock lock(&mu_);
      --jobs_;
      EndLocked(common::WithRetryDelay(absl::ResourceExhaustedError("server busy, retry later"),
                                       absl::Milliseconds(200)));
    }
  }

  void Open() {
    absl::StatusOr<RunRecord> run = env_.handlers->VisibleRun(call_, run_id_);
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    if (!run.ok()) return EndLocked(run.status());
    checked_ = absl::Now();
    // A watcher resumes after an event it received: one past the run's last is a mistake (it
    // would wait for events that never come), and refused.
    if (last_sent_ > run->last_sequence) {
      common::FieldViolations bad;
      bad.Add("after_sequence", absl::StrCat("is past the run's last event (", run->last_sequence,
                                             "); resume after the last sequence received"));
      return EndLocked(bad.ToStatus());
    }
    if (run->Finished() && last_sent_ >= run->last_sequence) return EndLocked(absl::OkStatus());
    known_last_ = run->last_sequence;
    subscription_ = env_.hub->Subscribe(run_id_, [this](int64_t last) {
      absl::MutexLock inner(&mu_);
      known_last_ = std::max(known_last_, last);
      ++announcements_;
      PumpLocked();
    });
    // Events written between the Get above and the subscription were announced to nobody:
    // one read now finds them.
    known_last_ = std::max(known_last_, last_sent_ + 1);
    PumpLocked();
  }

  // PumpLocked: the next write, or the next read when the batch is used up and more exists.
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ended_ || writing_ || reading_) return;
    if (!batch_.empty()) {
      writing_ = true;
      StartWrite(&batch_.front());
      return;
    }
    if (known_last_ <= last_sent_) return;  // idle until the hub announces more
    reading_ = true;
    const int64_t after = last_sent_;
    const uint64_t announcements = announcements_;
    mu_.Unlock();
    Schedule([this, after, announcements] { Read(after, announcements); });
    mu_.Lock();
  }

  void Read(int64_t after, uint64_t announcements) {
    if (absl::Status s = RecheckIfDue(); !s.ok()) return End(s);
    absl::StatusOr<std::vector<StoredEvent>> stored = env_.hub->Read(run_id_, after, env_.batch);
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (ended_) return;
    if (!stored.ok()) return EndLocked(stored.status());
    // Nothing new and nothing announced meanwhile: wait for the hub (the hint that sent this
    // read was only a guess).
    if (stored->empty() && announcements == announcements_) known_last_ = last_sent_;
    for (const StoredEvent& e : *stored) {
      v1::RunEvent event;
      if (!event.ParseFromString(e.event))
        return EndLocked(absl::InternalError("unreadable event"));
      event.set_run_id(run_id_);
      event.set_sequence(e.sequence);
      common::SetTimestamp(e.time, event.mutable_time());
      batch_.push_back(std::move(event));
    }
    PumpLocked();
  }

  // RecheckIfDue: whether the caller may still see the run, asked again once recheck_after has
  // passed since the last answer (on the executor: it may call ProjectService).
  absl::Status RecheckIfDue() {
    {
      absl::MutexLock lock(&mu_);
      if (absl::Now() - checked_ < env_.recheck_after) return absl::OkStatus();
    }
    // The token first, here: an expired one is never sent on to ProjectService.
    if (!call_.authorization.empty()) {
      QAI_ASSIGN_OR_RETURN(
          common::Principal still,
          env_.rpc->auth->Authenticate(call_.authorization, std::nullopt, absl::Now()));
    }
    QAI_ASSIGN_OR_RETURN(RunRecord run, env_.handlers->VisibleRun(call_, run_id_));
    absl::MutexLock lock(&mu_);
    checked_ = absl::Now();
    return absl::OkStatus();
  }

  void End(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    EndLocked(status);
  }

  void EndLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ended_) return;
    ended_ = true;
    common::LogRpc(*env_.rpc, "WatchRun", status, start_, call_.principal.id);
    Finish(common::ToGrpcStatus(status));
  }

  // UnlockAndMaybeDelete: releases mu_, and deletes the reactor once gRPC is done with it and
  // no job of it is queued or running.
  void UnlockAndMaybeDelete() ABSL_UNLOCK_FUNCTION(mu_) {
    const bool last = done_ && jobs_ == 0;
    mu_.Unlock();
    if (last) delete this;
  }

  const WatchEnv env_;
  const std::string run_id_;
  common::CallContext call_;
  absl::Mutex mu_;
  int64_t last_sent_ ABSL_GUARDED_BY(mu_);
  int64_t known_last_ ABSL_GUARDED_BY(mu_) = 0;  // the newest sequence known to exist
  // How many times the hub announced new events.
  uint64_t announcements_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::RunEvent> batch_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  int jobs_ ABSL_GUARDED_BY(mu_) = 0;
  // When the caller was last found allowed to see the run.
  absl::Time checked_ ABSL_GUARDED_BY(mu_);
  std::optional<EventHub::Subscription> subscription_ ABSL_GUARDED_BY(mu_);
  const absl::Time start_;
};

}  // namespace

absl::Status WatchRegistry::Add(Stream* stream, const std::string& principal) {
  bool close = false;
  {
    absl::MutexLock lock(&mu_);
    if (!principal.empty()) {
      int& held = per_principal_[principal];
      if (max_per_principal_ > 0 && held >= max_per_principal_) {
        return absl::ResourceExhaustedError(
            absl::StrCat("too many open WatchRun streams (QAI_WATCH_MAX_PER_PRINCIPAL ",
                         max_per_principal_, " on this replica); close one first"));
      }
      ++held;
    }
    streams_.emplace(stream, principal);
    close = closing_;
  }
  if (close) stream->Close();
  return absl::OkStatus();
}

void WatchRegistry::Remove(Stream* stream) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  if (!it->second.empty() && --per_principal_[it->second] == 0) per_principal_.erase(it->second);
  streams_.erase(it);
}

void WatchRegistry::CloseAll() {
  // Under the lock: a stream cannot finish its OnDone (which Removes it) and be deleted while
  // it is being closed.
  absl::MutexLock lock(&mu_);
  closing_ = true;
  for (const auto& [stream, principal] : streams_) stream->Close();
}

bool WatchRegistry::closing() const {
  absl::MutexLock lock(&mu_);
  return closing_;
}

grpc::ServerWriteReactor<v1::RunEvent>* StartWatch(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchRunRequest* req,
                                                   const WatchEnv& env) {
  return new WatchReactor(ctx, *req, env);
}

}  // namespace qai::orchestrator
