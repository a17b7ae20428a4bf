#pragma once
// ServePullStream: a server stream whose messages a source makes one at a time, on an executor
// (a source may block: it reads a database, or another service's stream). The next message is
// made only once the last one was written, so a slow client holds no thread, at most one
// message of a stream is in memory, and a download of any size costs what one message does.
// At most StreamSlots' count of such streams are served at once; beyond it a call is refused
// with RESOURCE_EXHAUSTED and a retry delay.
//
//   grpc::ServerWriteReactor<Chunk>* Download(grpc::CallbackServerContext* ctx,
//                                            const DownloadRequest* req) override {
//     return ServePullStream<Chunk>(ctx, env_, "Download", [=, this](const CallContext& call)
//         -> absl::StatusOr<PullSource<Chunk>> { return handlers_.OpenDownload(call, *req); });
//   }
//
// Every call is admitted as a unary one is (common/rpc.h AdmitCall) and logged once at its end.

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "common/log.h"
#include "common/rpc.h"
#include "common/status.h"

namespace qai::common {

// PullSource: the stream's next message; nullopt at its end; an error ends the stream with it.
template <typename Message>
using PullSource = std::function<absl::StatusOr<std::optional<Message>>()>;

// StreamSlots: how many pulled streams a server serves at once.
class StreamSlots {
 public:
  explicit StreamSlots(int max) : max_(max) {}
  [[nodiscard]] bool TryTake() {
    int used = used_.load();
    while (used < max_) {
      if (used_.compare_exchange_weak(used, used + 1)) return true;
    }
    return false;
  }
  void Give() { used_.fetch_sub(1); }

 private:
  const int max_;
  std::atomic<int> used_{0};
};

struct PullStreamEnv {
  const RpcEnv* rpc = nullptr;
  Executor* executor = nullptr;  // where sources run; its queue must hold a task per slot
  StreamSlots* slots = nullptr;
};

// PullStreams: an executor and slots for at most `max` pulled streams at once.
class PullStreams {
 public:
  PullStreams(std::string name, int max)
      : executor_(std::move(name), max, static_cast<size_t>(max)), slots_(max) {}
  // env: for a service's RpcEnv (set by the service).
  PullStreamEnv env() { return {.executor = &executor_, .slots = &slots_}; }
  void Shutdown() { executor_.Shutdown(); }

 private:
  Executor executor_;
  StreamSlots slots_;
};

template <typename Message>
using OpenPullSource = std::function<absl::StatusOr<PullSource<Message>>(const CallContext&)>;

template <typename Message>
class PullStreamReactor final : public grpc::ServerWriteReactor<Message> {
 public:
  PullStreamReactor(grpc::CallbackServerContext* ctx, const PullStreamEnv& env, std::string method,
                    OpenPullSource<Message> open)
      : env_(env), method_(std::move(method)), open_(std::move(open)), call_(BeginCall(*ctx)) {
    absl::StatusOr<Principal> principal = AdmitCall(*env_.rpc, *ctx, method_);
    if (!principal.ok()) {
      End(principal.status());
      return;
    }
    call_.principal = *std::move(principal);
    if (!env_.slots->TryTake()) {
      End(WithRetryDelay(absl::ResourceExhaustedError("too many downloads here; retry later"),
                         absl::Seconds(1)));
      return;
    }
    has_slot_ = true;
    Schedule();
  }
  ~PullStreamReactor() override {
    if (has_slot_) env_.slots->Give();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(absl::CancelledError("the client went away"));
      return;
    }
    Schedule();
  }
  void OnCancel() override { cancelled_ = true; }
  void OnDone() override {
    mu_.Lock();
    done_ = true;
    UnlockAndMaybeDelete();
  }

 private:
  void Schedule() {
    {
      absl::MutexLock lock(&mu_);
      ++pulling_;
    }
    if (!env_.executor->TrySubmit([this] { Pull(); })) {
      End(WithRetryDelay(absl::UnavailableError("server busy, retry later"), absl::Seconds(1)));
      mu_.Lock();
      --pulling_;
      UnlockAndMaybeDelete();
    }
  }

  // Pull: the next message written, or the end (on the executor).
  void Pull() {
    RequestScope scope(call_.request_id);
    absl::StatusOr<bool> writing = PullOne();
    if (!writing.ok()) {
      End(writing.status());
    } else if (!*writing) {
      End(absl::OkStatus());
    }
    mu_.Lock();
    --pulling_;
    UnlockAndMaybeDelete();
  }

  // PullOne: opens the source first; whether a message is being written (false: the end).
  absl::StatusOr<bool> PullOne() {
    if (cancelled_) return absl::CancelledError("call cancelled");
    if (!source_) {
      absl::StatusOr<PullSource<Message>> source = open_(call_);
      if (!source.ok()) return source.status();
      source_ = *std::move(source);
    }
    absl::StatusOr<std::optional<Message>> next = source_();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return false;
    message_ = **std::move(next);
    this->StartWrite(&message_);
    return true;
  }

  void End(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    LogRpc(*env_.rpc, method_, status, start_, call_.principal.id);
    this->Finish(ToGrpcStatus(status));
  }

  // UnlockAndMaybeDelete: releases mu_; deletes the reactor once gRPC is done with it and no
  // pull runs.
  void UnlockAndMaybeDelete() ABSL_UNLOCK_FUNCTION(mu_) {
    const bool last = done_ && pulling_ == 0;
    mu_.Unlock();
    if (last) delete this;
  }

  const PullStreamEnv env_;
  const std::string method_;
  const OpenPullSource<Message> open_;
  const absl::Time start_ = absl::Now();
  CallContext call_;
  bool has_slot_ = false;
  std::atomic<bool> cancelled_{false};
  // Touched by one pull at a time (the next is scheduled only after this one's write is done).
  PullSource<Message> source_;
  Message message_;
  absl::Mutex mu_;
  int pulling_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

template <typename Message>
grpc::ServerWriteReactor<Message>* ServePullStream(grpc::CallbackServerContext* ctx,
                                                   const PullStreamEnv& env,
                                                   std::string_view method,
                                                   OpenPullSource<Message> open) {
  return new PullStreamReactor<Message>(ctx, env, std::string(method), std::move(open));
}

}  // namespace qai::common
