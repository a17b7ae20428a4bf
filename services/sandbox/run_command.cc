#include "services/sandbox/run_command.h"

#include <atomic>
#include <deque>

#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status.h"

namespace qai::sandbox {
namespace {

class RunCommandReactor final : public grpc::ServerWriteReactor<v1::RunCommandResponse> {
 public:
  RunCommandReactor(grpc::CallbackServerContext* ctx, const v1::RunCommandRequest& req,
                    const RunCommandEnv& env)
      : env_(env), req_(req), start_(absl::Now()) {
    call_.request_id = common::RequestIdFrom(*ctx);
    ctx->AddInitialMetadata("x-request-id", call_.request_id);
    absl::StatusOr<common::Principal> principal = common::AdmitCall(*env.rpc, *ctx, "RunCommand");
    if (!principal.ok()) {
      EndNow(principal.status());
      return;
    }
    call_.principal = *std::move(principal);
    if (absl::Status s = env_.handlers->CheckRunCommand(call_, req_); !s.ok()) {
      EndNow(s);
      return;
    }
    running_ = true;
    if (!env_.executor->TrySubmit([this] { Work(); })) {
      running_ = false;
      EndNow(common::WithRetryDelay(
          absl::ResourceExhaustedError("too many commands running here; retry later"),
          absl::Milliseconds(500)));
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    queue_.pop_front();
    if (!ok) cancelled_ = true;  // the client is gone: the command stops
    PumpLocked();
  }

  void OnCancel() override { cancelled_ = true; }

  void OnDone() override {
    mu_.Lock();
    done_ = true;
    UnlockAndMaybeDelete();
  }

 private:
  void Work() {
    common::RequestScope scope(call_.request_id);
    v1::RunCommandResponse end;
    absl::Status status = env_.handlers->RunCommand(
        call_, req_,
        [this](std::string text) {
          v1::RunCommandResponse piece;
          piece.set_output(std::move(text));
          absl::MutexLock lock(&mu_);
          queue_.push_back(std::move(piece));
          PumpLocked();
        },
        [this] { return cancelled_.load(); }, *end.mutable_end());
    mu_.Lock();
    running_ = false;
    if (status.ok()) queue_.push_back(std::move(end));
    status_ = status;
    PumpLocked();
    UnlockAndMaybeDelete();
  }

  // PumpLocked: the next write, or the end once everything is written and the command ended.
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!queue_.empty() && !cancelled_) {
      writing_ = true;
      StartWrite(&queue_.front());
      return;
    }
    if (running_) return;
    finished_ = true;
    common::LogRpc(*env_.rpc, "RunCommand", status_, start_, call_.principal.id);
    Finish(common::ToGrpcStatus(status_));
  }

  void EndNow(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    status_ = status;
    PumpLocked();
  }

  // UnlockAndMaybeDelete: releases mu_, and deletes the reactor once gRPC is done with it and
  // the command has ended.
  void UnlockAndMaybeDelete() ABSL_UNLOCK_FUNCTION(mu_) {
    const bool last = done_ && !running_;
    mu_.Unlock();
    if (last) delete this;
  }

  const RunCommandEnv env_;
  const v1::RunCommandRequest req_;
  common::CallContext call_;
  const absl::Time start_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::deque<v1::RunCommandResponse> queue_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<v1::RunCommandResponse>* StartRunCommand(grpc::CallbackServerContext* ctx,
                                                                  const v1::RunCommandRequest* req,
                                                                  const RunCommandEnv& env) {
  return new RunCommandReactor(ctx, *req, env);
}

}  // namespace qai::sandbox
