#include "tools/qai/projects_commands.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "tools/qai/channel.h"
#include "tools/qai/global_options.h"
#include "tools/qai/messages_commands.h"
#include "tools/qai/output.h"
#include "tools/qai/printable.h"
#include "tools/qai/run_follow.h"
#include "tools/qai/service_client.h"

namespace qai::cli {
namespace {

using qai::messages::v1::Message;
using qai::projects::v1::CreateProjectRequest;
using qai::projects::v1::DeleteProjectRequest;
using qai::projects::v1::ForkProjectRequest;
using qai::projects::v1::GetProjectRequest;
using qai::projects::v1::ListProjectsRequest;
using qai::projects::v1::ListProjectsResponse;
using qai::projects::v1::Project;
using qai::projects::v1::ProjectService;
using qai::projects::v1::UpdateProjectRequest;

// ProjectsClient: the state one `projects` command needs to make its calls.
class ProjectsClient : public ServiceClient<ProjectService> {
 public:
  explicit ProjectsClient(const Invocation& inv)
      : ServiceClient(inv, &GlobalOptions::projects_addr, "ProjectService") {}

  // FailMutation: reports a failed mutation, with its request id when a repeat makes sense.
  int FailMutation(const grpc::Status& status) const {
    inv_.err << FormatMutationError(status, options_.request_id);
    return kExitRpcError;
  }

  // PrintProject: the outcome of a call that returns a Project.
  int PrintProject(const grpc::Status& status, const Project& project) const {
    if (!status.ok()) return Fail(status);
    inv_.out << (options_.json ? ToJsonLine(project) : FormatProject(project));
    return kExitOk;
  }

  // PrintMutated: the outcome of a mutation that returns a Project; the human form also shows
  // the request id it was sent with.
  int PrintMutated(const grpc::Status& status, const Project& project) const {
    if (!status.ok()) return FailMutation(status);
    inv_.out << (options_.json ? ToJsonLine(project)
                               : absl::StrCat(FormatProject(project),
                                              "request_id: ", options_.request_id, "\n"));
    return kExitOk;
  }
};

// Indented: every line of text with two spaces in front.
std::string Indented(const std::string& text) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  return out;
}

// PrintFirstMessage: the project's first message, once it is there (see WaitForFirstMessage);
// a message that cannot be shown is worth a warning, not a failure: the project exists.
std::optional<Message> PrintFirstMessage(const Invocation& inv, const GlobalOptions& options,
                                         const std::string& project_id) {
  const absl::Duration wait = inv.args.GetDuration("wait");
  if (wait <= absl::ZeroDuration()) return std::nullopt;
  FirstMessage first = WaitForFirstMessage(options, inv.err, project_id, wait);
  if (first.message) {
    inv.out << (options.json
                    ? ToJsonLine(*first.message)
                    : absl::StrCat("\nfirst message:\n", Indented(FormatMessage(*first.message))));
  } else if (!first.status.ok()) {
    inv.err << "warning: cannot show the project's first message: "
            << StatusCodeName(first.status.error_code())
            << (first.status.error_message().empty() ? "" : ": ") << first.status.error_message()
            << "\n";
  } else {
    inv.err << "warning: the project's first message has not appeared within "
            << absl::FormatDuration(wait) << "; see `qai messages list --project " << project_id
            << "`\n";
  }
  return first.message;
}

int RunCreate(const Invocation& inv) {
  const bool watch = inv.args.Switch("watch");
  if (watch && inv.args.GetDuration("wait") <= absl::ZeroDuration()) {
    inv.err << "error: --watch follows the run of the first message: --wait must be more than 0\n";
    return kExitUsage;
  }
  ProjectsClient client(inv);
  CreateProjectRequest request;
  request.set_initial_prompt(inv.args.Get("prompt"));
  request.set_display_name(inv.args.Get("display-name"));
  request.set_request_id(client.options().request_id);
  Project project;
  auto context = client.NewContext("CreateProject");
  if (int code = client.PrintMutated(client.stub().CreateProject(context.get(), request, &project),
                                     project);
      code != kExitOk) {
    return code;
  }
  std::optional<Message> first = PrintFirstMessage(inv, client.options(), project.id());
  if (!watch) return kExitOk;
  if (!first) {
    inv.err << "error: cannot watch the first run without the first message\n";
    return kExitRpcError;
  }
  if (!client.options().json) inv.out << "\n";
  return ShowPromptRun(inv, client.options(), project.id(), first->id());
}

int RunGet(const Invocation& inv) {
  ProjectsClient client(inv);
  GetProjectRequest request;
  request.set_id(inv.args.positional(0));
  Project project;
  auto context = client.NewContext("GetProject");
  return client.PrintProject(client.stub().GetProject(context.get(), request, &project), project);
}

int RunList(const Invocation& inv) {
  ProjectsClient client(inv);
  const bool all = inv.args.Switch("all");
  ListProjectsRequest request;
  request.set_page_size(static_cast<int32_t>(inv.args.GetInt("page-size")));
  request.set_page_token(inv.args.Get("page-token"));
  return client.PrintPages("ListProjects", &ProjectService::Stub::ListProjects, request, all,
                           [&](const ListProjectsResponse& page) {
                             for (const Project& project : page.projects())
                               inv.out << FormatProjectRow(project);
                           });
}

int RunRename(const Invocation& inv) {
  ProjectsClient client(inv);
  UpdateProjectRequest request;
  request.mutable_project()->set_id(inv.args.positional(0));
  request.mutable_project()->set_display_name(inv.args.positional(1));
  request.mutable_project()->set_etag(inv.args.Get("etag"));
  request.mutable_update_mask()->add_paths("display_name");
  request.set_request_id(client.options().request_id);
  Project project;
  auto context = client.NewContext("UpdateProject");
  return client.PrintMutated(client.stub().UpdateProject(context.get(), request, &project),
                             project);
}

int RunFork(const Invocation& inv) {
  ProjectsClient client(inv);
  ForkProjectRequest request;
  request.set_project_id(inv.args.positional(0));
  request.set_version(static_cast<int32_t>(inv.args.GetInt("version")));
  request.set_display_name(inv.args.Get("display-name"));
  request.set_request_id(client.options().request_id);
  Project project;
  auto context = client.NewContext("ForkProject");
  return client.PrintMutated(client.stub().ForkProject(context.get(), request, &project), project);
}

int RunDelete(const Invocation& inv) {
  ProjectsClient client(inv);
  DeleteProjectRequest request;
  request.set_id(inv.args.positional(0));
  request.set_etag(inv.args.Get("etag"));
  request.set_request_id(client.options().request_id);
  google::protobuf::Empty empty;
  auto context = client.NewContext("DeleteProject");
  if (grpc::Status status = client.stub().DeleteProject(context.get(), request, &empty);
      !status.ok()) {
    return client.FailMutation(status);
  }
  inv.out << (client.options().json ? ToJsonLine(empty)
                                    : absl::StrCat("deleted ", request.id(), "\n"));
  return kExitOk;
}

}  // namespace

std::vector<CommandSpec> ProjectCommands() {
  return {
      {.path = {"projects", "create"},
       .flags =
           {{.name = "prompt", .value_name = "TEXT", .help = "the first prompt", .required = true},
            {.name = "display-name", .value_name = "NAME", .help = "human-chosen name"},
            {.name = "wait",
             .value_name = "DURATION",
             .help = "how long to wait for the first message to show it (0: do not)",
             .default_value = "5s",
             .required = true,
             .validate = common::IsDuration},
            {.name = "watch",
             .help = "then follow the first run live until it ends (exit 0 if it succeeded, 1 if "
                     "not)"}},
       .summary = "create a project and show its first message; the prompt starts the first\n      "
                  "agent run (a repeat with the same --request-id returns the first result)",
       .run = RunCreate},
      {.path = {"projects", "get"},
       .positionals = {"ID"},
       .summary = "show one project",
       .run = RunGet},
      {.path = {"projects", "list"},
       .flags = {{.name = "page-size",
                  .value_name = "N",
                  .help = "projects per page",
                  .validate = IsInt32},
                 {.name = "page-token",
                  .value_name = "TOKEN",
                  .help = "continue from a previous `next page`"},
                 {.name = "all", .help = "follow the pages to the end"}},
       .summary = "list your projects, most recently updated first",
       .run = RunList},
      {.path = {"projects", "rename"},
       .positionals = {"ID", "NAME"},
       .flags = {{.name = "etag",
                  .value_name = "ETAG",
                  .help = "rename only if the project still has this etag"}},
       .summary = "change a project's display name",
       .run = RunRename},
      {.path = {"projects", "fork"},
       .positionals = {"ID"},
       .flags = {{.name = "version",
                  .value_name = "N",
                  .help = "the version to start from",
                  .required = true,
                  .validate = IsInt32},
                 {.name = "display-name",
                  .value_name = "NAME",
                  .help = "the new project's name (default: the source's, with \" (fork)\")"}},
       .summary = "a new project of yours that starts from a version of this one",
       .run = RunFork},
      {.path = {"projects", "delete"},
       .positionals = {"ID"},
       .flags = {{.name = "etag",
                  .value_name = "ETAG",
                  .help = "delete only if the project still has this etag"}},
       .summary = "delete a project, its messages and its runs (idempotent with --request-id)",
       .run = RunDelete},
  };
}

std::string FormatProject(const Project& project) {
  std::string out = absl::StrCat("id: ", Printable(project.id(), false), "\n",
                                 "name: ", Printable(project.name(), false), "\n",
                                 "display_name: ", Printable(project.display_name(), false), "\n",
                                 "owner: ", Printable(project.owner(), false), "\n",
                                 "created: ", FormatTimestamp(project.create_time()), "\n",
                                 "updated: ", FormatTimestamp(project.update_time()), "\n",
                                 "etag: ", Printable(project.etag(), false), "\n");
  if (!project.latest_run().id().empty()) {
    absl::StrAppend(&out, "latest_run: ", Printable(project.latest_run().id(), false), " ",
                    Printable(project.latest_run().state(), false), "\n");
  }
  return out;
}

std::string FormatProjectRow(const Project& project) {
  return absl::StrCat(
      Printable(project.id(), false), "  ", Printable(project.name(), false), "  ",
      project.display_name().empty() ? "-" : Printable(project.display_name(), false), "  ",
      FormatTimestamp(project.update_time()), "\n");
}

}  // namespace qai::cli
