#include "tools/qai/runs_commands.h"

#include <cstdint>
#include <memory>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/config.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "tools/qai/channel.h"
#include "tools/qai/global_options.h"
#include "tools/qai/output.h"
#include "tools/qai/run_follow.h"
#include "tools/qai/run_view.h"
#include "tools/qai/service_client.h"

namespace qai::cli {
namespace {

using qai::orchestrator::v1::AgentOrchestrator;
using qai::orchestrator::v1::CancelRunRequest;
using qai::orchestrator::v1::GetRunRequest;
using qai::orchestrator::v1::ListRunsRequest;
using qai::orchestrator::v1::ListRunsResponse;
using qai::orchestrator::v1::Run;

// RunsClient: the state one `runs` command needs to make its calls.
class RunsClient : public ServiceClient<AgentOrchestrator> {
 public:
  explicit RunsClient(const Invocation& inv)
      : ServiceClient(inv, &GlobalOptions::orchestrator_addr, "AgentOrchestrator") {}
};

int RunGet(const Invocation& inv) {
  RunsClient client(inv);
  GetRunRequest request;
  request.set_id(inv.args.positional(0));
  Run run;
  auto context = client.NewContext("GetRun");
  if (grpc::Status status = client.stub().GetRun(context.get(), request, &run); !status.ok()) {
    return client.Fail(status);
  }
  inv.out << (client.options().json ? ToJsonLine(run) : FormatRun(run, absl::Now()));
  return kExitOk;
}

int RunList(const Invocation& inv) {
  RunsClient client(inv);
  const bool all = inv.args.Switch("all");
  ListRunsRequest request;
  request.set_project_id(inv.args.Get("project"));
  request.set_page_size(static_cast<int32_t>(inv.args.GetInt("page-size")));
  request.set_page_token(inv.args.Get("page-token"));
  return client.PrintPages("ListRuns", &AgentOrchestrator::Stub::ListRuns, request, all,
                           [&](const ListRunsResponse& page) {
                             for (const Run& run : page.runs())
                               inv.out << FormatRunRow(run, absl::Now());
                           });
}

int RunCancel(const Invocation& inv) {
  RunsClient client(inv);
  CancelRunRequest request;
  request.set_id(inv.args.positional(0));
  request.set_request_id(client.options().request_id);
  Run run;
  auto context = client.NewContext("CancelRun");
  if (grpc::Status status = client.stub().CancelRun(context.get(), request, &run); !status.ok()) {
    inv.err << FormatMutationError(status, request.request_id());
    return kExitRpcError;
  }
  inv.out << (client.options().json ? ToJsonLine(run)
                                    : absl::StrCat(FormatRun(run, absl::Now()),
                                                   "request_id: ", request.request_id(), "\n"));
  return kExitOk;
}

int RunWatch(const Invocation& inv) {
  const GlobalOptions options = GlobalOptionsFrom(inv.args);
  return ShowRun(inv, options, inv.args.positional(0), inv.args.GetInt("after"));
}

std::string NonNegativeInt(std::string_view value) {
  if (std::string why = common::IsInt(value); !why.empty()) return why;
  return value.starts_with('-') ? "must not be negative" : "";
}

}  // namespace

std::vector<CommandSpec> RunCommands() {
  const FlagSpec after{
      .name = "after",
      .value_name = "N",
      .help = "show only the events after sequence N (a watch that broke off resumes there)",
      .default_value = "0",
      .required = true,
      .validate = NonNegativeInt};
  const char* const kWatchSummary =
      "follow a run's progress live until it ends; exit 0 if it succeeded, 1 if it\n"
      "      failed or was cancelled (a broken stream is resumed where it stopped)";
  return {
      {.path = {"runs", "list"},
       .flags =
           {{.name = "project", .value_name = "ID", .help = "the project's id", .required = true},
            {.name = "page-size", .value_name = "N", .help = "runs per page", .validate = IsInt32},
            {.name = "page-token",
             .value_name = "TOKEN",
             .help = "continue from a previous `next page`"},
            {.name = "all", .help = "follow the pages to the end"}},
       .summary = "list a project's agent runs, newest first",
       .run = RunList},
      {.path = {"runs", "get"},
       .positionals = {"RUN_ID"},
       .summary = "show one run",
       .run = RunGet},
      {.path = {"runs", "cancel"},
       .positionals = {"RUN_ID"},
       .summary = "cancel a run (a finished run is shown unchanged)",
       .run = RunCancel},
      {.path = {"runs", "watch"},
       .positionals = {"RUN_ID"},
       .flags = {after},
       .summary = kWatchSummary,
       .run = RunWatch},
      {.path = {"watch"},
       .positionals = {"RUN_ID"},
       .flags = {after},
       .summary = "the same as `runs watch`",
       .run = RunWatch},
  };
}

std::string RunStateName(Run::State state) {
  const std::string& name = Run::State_Name(state);
  if (name.empty()) return absl::StrCat(static_cast<int>(state));
  return name.starts_with("STATE_") ? name.substr(6) : name;
}

std::string FormatRun(const Run& run, absl::Time now) {
  std::string out = absl::StrCat("id: ", run.id(), "\n", "project_id: ", run.project_id(), "\n");
  if (!run.message_id().empty()) absl::StrAppend(&out, "message_id: ", run.message_id(), "\n");
  if (!run.author().empty()) absl::StrAppend(&out, "author: ", run.author(), "\n");
  absl::StrAppend(&out, "state: ", RunStateName(run.state()), "\n", "attempt: ", run.attempt(),
                  "\n", "iteration: ", run.iteration(), "/", run.max_iterations(), "\n",
                  "steps: ", run.steps(), "\n");
  if (!run.model().empty()) absl::StrAppend(&out, "model: ", run.model(), "\n");
  absl::StrAppend(&out, "tokens: ", run.prompt_tokens(), " prompt, ", run.completion_tokens(),
                  " completion\n", "created: ", FormatTimestamp(run.create_time()), "\n");
  if (run.has_start_time())
    absl::StrAppend(&out, "started: ", FormatTimestamp(run.start_time()), "\n");
  if (run.has_end_time()) absl::StrAppend(&out, "ended: ", FormatTimestamp(run.end_time()), "\n");
  // Until the run starts (or ends without starting) the clocks run on `now`.
  const absl::Time created = ToTime(run.create_time());
  const bool ended = run.has_end_time();
  const absl::Time end = ended ? ToTime(run.end_time()) : now;
  if (run.has_start_time()) {
    const absl::Time started = ToTime(run.start_time());
    absl::StrAppend(&out, "queued_for: ", FormatElapsed(started - created), "\n",
                    "ran_for: ", FormatElapsed(end - started), ended ? "" : " (so far)", "\n");
  } else {
    absl::StrAppend(&out, "queued_for: ", FormatElapsed(end - created), ended ? "" : " (so far)",
                    "\n");
  }
  if (run.has_timeout())
    absl::StrAppend(&out, "timeout: ", FormatElapsed(ToDuration(run.timeout())), "\n");
  if (!run.error().empty()) absl::StrAppend(&out, "error: ", FirstLine(run.error(), 1000), "\n");
  if (!run.result_message_id().empty())
    absl::StrAppend(&out, "result_message_id: ", run.result_message_id(), "\n");
  if (!run.sandbox_url().empty()) absl::StrAppend(&out, "sandbox_url: ", run.sandbox_url(), "\n");
  if (run.version() > 0) absl::StrAppend(&out, "version: ", run.version(), "\n");
  if (run.restore_version() > 0)
    absl::StrAppend(&out, "restores_version: ", run.restore_version(), "\n");
  if (!run.draft_url().empty()) absl::StrAppend(&out, "draft_url: ", run.draft_url(), "\n");
  absl::StrAppend(&out, "last_sequence: ", run.last_sequence(), "\n");
  return out;
}

std::string FormatRunRow(const Run& run, absl::Time now) {
  std::string detail = "-";
  if (!run.sandbox_url().empty()) {
    detail = run.sandbox_url();
  } else if (!run.error().empty()) {
    detail = FirstLine(run.error(), 100);
  }
  std::string ran_for = "-";
  if (run.has_start_time()) {
    ran_for = FormatElapsed((run.has_end_time() ? ToTime(run.end_time()) : now) -
                            ToTime(run.start_time()));
  }
  return absl::StrCat(run.id(), "  ", RunStateName(run.state()), "  ",
                      run.author().empty() ? "-" : run.author(), "  ", run.iteration(), "/",
                      run.max_iterations(), "  ", run.model().empty() ? "-" : run.model(), "  ",
                      ran_for, "  ", FormatTimestamp(run.create_time()), "  ", detail, "\n");
}

}  // namespace qai::cli
