#include "tools/qai/run_follow.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <ostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "tools/qai/channel.h"
#include "tools/qai/output.h"

namespace qai::cli {
namespace {

using qai::orchestrator::v1::AgentOrchestrator;
using qai::orchestrator::v1::GetRunRequest;
using qai::orchestrator::v1::ListRunsRequest;
using qai::orchestrator::v1::ListRunsResponse;
using qai::orchestrator::v1::Run;
using qai::orchestrator::v1::RunEvent;
using qai::orchestrator::v1::WatchRunRequest;

// Ticker: redraws a live view's status line ten times a second, from its own thread, while it
// exists.
class Ticker {
 public:
  Ticker(RunView& view, bool live) : view_(view) {
    if (!live) return;
    view_.Tick(absl::Now());
    thread_ = std::thread([this] {
      mu_.Lock();
      for (;;) {
        const absl::Time tick_at = absl::Now() + absl::Milliseconds(100);
        while (!stop_ && !cv_.WaitWithDeadline(&mu_, tick_at)) {
        }
        if (stop_) break;
        mu_.Unlock();
        view_.Tick(absl::Now());
        mu_.Lock();
      }
      mu_.Unlock();
    });
  }
  ~Ticker() { Stop(); }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    if (thread_.joinable()) thread_.join();
  }

 private:
  RunView& view_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

bool Ended(const Run& run) {
  return run.state() == Run::STATE_SUCCEEDED || run.state() == Run::STATE_FAILED ||
         run.state() == Run::STATE_CANCELLED;
}

std::string Brief(const grpc::Status& status) {
  return absl::StrCat(StatusCodeName(status.error_code()),
                      status.error_message().empty() ? "" : ": ", status.error_message());
}

RunViewOptions ViewOptions(const Invocation& inv, const GlobalOptions& options) {
  return {.json = options.json,
          .live = inv.terminal.tty && !options.json,
          .columns = inv.terminal.columns};
}

int Follow(const Invocation& inv, const GlobalOptions& options, const std::string& run_id,
           int64_t after, RunView& view, Ticker& ticker) {
  view.Header(run_id);
  const int code = FollowRun(options, run_id, {.after_sequence = after}, view, inv.err);
  ticker.Stop();
  view.Close();
  return code;
}

}  // namespace

bool IsStreamBreak(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

int FollowRun(const GlobalOptions& options, const std::string& run_id, const FollowOptions& follow,
              RunView& view, std::ostream& err) {
  Connection connection(options, options.orchestrator_addr, err);
  std::unique_ptr<AgentOrchestrator::Stub> stub = AgentOrchestrator::NewStub(connection.channel());
  int64_t after = follow.after_sequence;
  int reconnects = 0;
  while (true) {
    WatchRunRequest request;
    request.set_run_id(run_id);
    request.set_after_sequence(after);
    auto context = connection.NewContext("AgentOrchestrator.WatchRun");
    // The stream lasts as long as the run; only its calls' silence is bounded, by the server.
    context->set_deadline(std::chrono::system_clock::time_point::max());
    std::unique_ptr<grpc::ClientReader<RunEvent>> reader = stub->WatchRun(context.get(), request);
    RunEvent event;
    while (reader->Read(&event)) {
      // A server that repeats itself (it must not) is not shown twice: the view skips the old.
      view.Event(event);
      if (view.last_sequence() > after) {
        after = view.last_sequence();
        reconnects = 0;
      }
    }
    grpc::Status status = reader->Finish();
    if (view.ended()) return view.ExitCode();

    std::string why;
    if (status.ok()) {
      // The stream ended before the outcome: the run had ended before `after` (nothing left to
      // send), or a server went away politely. The run itself says which.
      Run run;
      GetRunRequest get;
      get.set_id(run_id);
      auto get_context = connection.NewContext("AgentOrchestrator.GetRun");
      grpc::Status got = stub->GetRun(get_context.get(), get, &run);
      if (got.ok() && Ended(run) && run.last_sequence() <= after) {
        view.FinishFrom(run);
        return view.ExitCode();
      }
      if (!got.ok() && !IsStreamBreak(got)) {
        view.Close();
        err << FormatRpcError(got);
        return kExitRpcError;
      }
      why = got.ok() ? "the stream ended before the run did" : Brief(got);
    } else if (IsStreamBreak(status)) {
      why = Brief(status);
    } else {
      view.Close();
      err << FormatRpcError(status);
      return kExitRpcError;
    }

    if (++reconnects > follow.max_reconnects) {
      view.Close();
      err << "error: the run's stream broke " << follow.max_reconnects + 1 << " times in a row ("
          << why << "); resume with `qai runs watch " << run_id << " --after " << after << "`\n";
      return kExitRpcError;
    }
    absl::Duration backoff = follow.first_backoff;
    for (int i = 1; i < reconnects && backoff < follow.max_backoff; ++i) backoff *= 2;
    backoff = std::min(backoff, follow.max_backoff);
    view.Note(absl::StrCat("qai: the stream broke (", why, "); reconnecting after event ", after,
                           " in ", absl::FormatDuration(backoff), " (", reconnects, "/",
                           follow.max_reconnects, ")"));
    absl::SleepFor(backoff);
  }
}

FoundRun WaitForRun(const GlobalOptions& options, std::ostream& log, const std::string& project_id,
                    const std::string& message_id, absl::Duration wait) {
  Connection connection(options, options.orchestrator_addr, log);
  std::unique_ptr<AgentOrchestrator::Stub> stub = AgentOrchestrator::NewStub(connection.channel());
  ListRunsRequest request;
  request.set_project_id(project_id);
  // Newest first: a prompt's run is among the first few unless many more were sent after it.
  request.set_page_size(20);
  const absl::Time until = absl::Now() + wait;
  while (true) {
    ListRunsResponse response;
    auto context = connection.NewContext("AgentOrchestrator.ListRuns");
    context->set_deadline(absl::ToChronoTime(std::min(until, absl::Now() + options.timeout)));
    const grpc::Status status = stub->ListRuns(context.get(), request, &response);
    if (status.ok()) {
      for (const Run& run : response.runs()) {
        if (run.message_id() == message_id) return {.run = run};
      }
    }
    const bool out_of_time = absl::Now() >= until;
    const bool waitable =
        status.ok() || status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && out_of_time);
    if (!waitable) return {.status = status};
    if (out_of_time) return {.status = status};
    absl::SleepFor(std::min(kRunPoll, until - absl::Now()));
    if (absl::Now() >= until) return {.status = status};
  }
}

int ShowRun(const Invocation& inv, const GlobalOptions& options, const std::string& run_id,
            int64_t after_sequence) {
  RunView view(inv.out, inv.err, ViewOptions(inv, options));
  Ticker ticker(view, ViewOptions(inv, options).live);
  return Follow(inv, options, run_id, after_sequence, view, ticker);
}

int ShowPromptRun(const Invocation& inv, const GlobalOptions& options,
                  const std::string& project_id, const std::string& message_id) {
  RunView view(inv.out, inv.err, ViewOptions(inv, options));
  Ticker ticker(view, ViewOptions(inv, options).live);
  view.Waiting("waiting for the run to start");
  FoundRun found = WaitForRun(options, inv.err, project_id, message_id, kRunAppearWait);
  if (!found.run) {
    ticker.Stop();
    view.Close();
    if (!found.status.ok() && found.status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      inv.err << FormatRpcError(found.status);
    } else {
      inv.err << "error: no run of message " << message_id << " has appeared within "
              << absl::FormatDuration(kRunAppearWait) << "; see `qai runs list --project "
              << project_id << "`\n";
    }
    return kExitRpcError;
  }
  return Follow(inv, options, found.run->id(), 0, view, ticker);
}

}  // namespace qai::cli
