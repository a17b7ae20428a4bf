#include "tools/qai/versions_commands.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "tools/qai/global_options.h"
#include "tools/qai/output.h"
#include "tools/qai/printable.h"
#include "tools/qai/run_follow.h"
#include "tools/qai/run_view.h"
#include "tools/qai/runs_commands.h"
#include "tools/qai/service_client.h"

namespace qai::cli {
namespace {

using qai::orchestrator::v1::AgentOrchestrator;
using qai::orchestrator::v1::DiffVersionsRequest;
using qai::orchestrator::v1::DiffVersionsResponse;
using qai::orchestrator::v1::DownloadVersionRequest;
using qai::orchestrator::v1::DownloadVersionResponse;
using qai::orchestrator::v1::FileDiff;
using qai::orchestrator::v1::GetVersionRequest;
using qai::orchestrator::v1::ListVersionsRequest;
using qai::orchestrator::v1::ListVersionsResponse;
using qai::orchestrator::v1::RestoreVersionRequest;
using qai::orchestrator::v1::Run;
using qai::orchestrator::v1::Version;
using qai::orchestrator::v1::VersionFile;
using qai::orchestrator::v1::VersionRef;

class VersionsClient : public ServiceClient<AgentOrchestrator> {
 public:
  explicit VersionsClient(const Invocation& inv)
      : ServiceClient(inv, &GlobalOptions::orchestrator_addr, "AgentOrchestrator") {}
};

// Number: the NUMBER argument, or nullopt (and a usage error said) when it is not 1 or more.
std::optional<int32_t> Number(const Invocation& inv) {
  int32_t n = 0;
  if (!absl::SimpleAtoi(inv.args.positional(0), &n) || n < 1) {
    inv.err << "error: NUMBER must be a version number, 1 or more\n";
    return std::nullopt;
  }
  return n;
}

int VersionList(const Invocation& inv) {
  VersionsClient client(inv);
  ListVersionsRequest request;
  request.set_project_id(inv.args.Get("project"));
  request.set_page_size(static_cast<int32_t>(inv.args.GetInt("page-size")));
  request.set_page_token(inv.args.Get("page-token"));
  return client.PrintPages("ListVersions", &AgentOrchestrator::Stub::ListVersions, request,
                           inv.args.Switch("all"), [&](const ListVersionsResponse& page) {
                             for (const Version& v : page.versions())
                               inv.out << FormatVersionRow(v);
                           });
}

int VersionGet(const Invocation& inv) {
  const std::optional<int32_t> number = Number(inv);
  if (!number) return kExitUsage;
  VersionsClient client(inv);
  const std::string& cat = inv.args.Get("cat");
  GetVersionRequest request;
  request.set_project_id(inv.args.Get("project"));
  request.set_number(*number);
  request.set_view(cat.empty() ? GetVersionRequest::VIEW_BASIC : GetVersionRequest::VIEW_FULL);
  Version version;
  auto context = client.NewContext("GetVersion");
  if (grpc::Status s = client.stub().GetVersion(context.get(), request, &version); !s.ok()) {
    return client.Fail(s);
  }
  if (!cat.empty()) {
    for (const VersionFile& f : version.files()) {
      if (f.path() == cat) {
        inv.out << f.content();
        return kExitOk;
      }
    }
    inv.err << "error: version " << version.number() << " has no file " << cat << "\n";
    return kExitRpcError;
  }
  inv.out << (client.options().json ? ToJsonLine(version)
                                    : FormatVersion(version, inv.args.Switch("files")));
  return kExitOk;
}

// kWorkspace: what --from and --to take, besides a number, for the project's workspace now.
constexpr char kWorkspace[] = "workspace";

std::string IsVersionOrWorkspace(std::string_view value) {
  return value == kWorkspace ? "" : IsInt32(value);
}

// SetRef: a --from or --to value into its VersionRef.
void SetRef(const std::string& value, VersionRef& ref) {
  int32_t number = 0;
  if (value == kWorkspace) {
    ref.set_workspace(true);
  } else if (absl::SimpleAtoi(value, &number)) {
    ref.set_number(number);
  }
}

int VersionDiff(const Invocation& inv) {
  VersionsClient client(inv);
  DiffVersionsRequest request;
  request.set_project_id(inv.args.Get("project"));
  SetRef(inv.args.Get("from"), *request.mutable_from());
  if (const std::string& draft = inv.args.Get("to-draft"); !draft.empty()) {
    request.mutable_to()->set_draft_of_run(draft);
  } else {
    SetRef(inv.args.Get("to"), *request.mutable_to());
  }
  DiffVersionsResponse diff;
  auto context = client.NewContext("DiffVersions");
  if (grpc::Status s = client.stub().DiffVersions(context.get(), request, &diff); !s.ok()) {
    return client.Fail(s);
  }
  inv.out << (client.options().json ? ToJsonLine(diff) : FormatDiff(diff));
  return kExitOk;
}

int VersionRestore(const Invocation& inv) {
  const std::optional<int32_t> number = Number(inv);
  if (!number) return kExitUsage;
  VersionsClient client(inv);
  RestoreVersionRequest request;
  request.set_project_id(inv.args.Get("project"));
  request.set_number(*number);
  request.set_request_id(client.options().request_id);
  Run run;
  auto context = client.NewContext("RestoreVersion");
  if (grpc::Status s = client.stub().RestoreVersion(context.get(), request, &run); !s.ok()) {
    inv.err << FormatMutationError(s, request.request_id());
    return kExitRpcError;
  }
  if (client.options().json) {
    inv.out << ToJsonLine(run);
  } else {
    inv.out << FormatRun(run, absl::Now()) << "request_id: " << request.request_id() << "\n";
  }
  if (!inv.args.Switch("watch")) return kExitOk;
  return ShowRun(inv, client.options(), run.id(), 0);
}

// SafeFileName: whether the server's file name may be written in the current directory.
bool SafeFileName(const std::string& name) {
  return !name.empty() && name.size() <= 200 && name.front() != '.' &&
         name.find_first_of("/\\") == std::string::npos;
}

// SaveArchive: the stream's pieces written to `path` as they come (to PATH.part, renamed at
// the end, so a cut download leaves no file that looks whole); the bytes written, or -1 after
// saying why on `err`.
int64_t SaveArchive(grpc::ClientReader<DownloadVersionResponse>& reader,
                    DownloadVersionResponse first, const std::string& path, std::ostream& err) {
  const std::string part = path + ".part";
  std::ofstream file(part, std::ios::binary | std::ios::trunc);
  int64_t bytes = 0;
  for (DownloadVersionResponse piece = std::move(first); file;) {
    file.write(piece.data().data(), static_cast<std::streamsize>(piece.data().size()));
    bytes += static_cast<int64_t>(piece.data().size());
    if (!reader.Read(&piece)) break;
  }
  file.close();
  if (!file) {
    err << "error: cannot write " << part << "\n";
    std::filesystem::remove(part);
    return -1;
  }
  std::filesystem::rename(part, path);
  return bytes;
}

int VersionDownload(const Invocation& inv) {
  const std::optional<int32_t> number = Number(inv);
  if (!number) return kExitUsage;
  const std::string& format = inv.args.Get("format");
  if (format != "zip" && format != "tar.gz") {
    inv.err << "error: --format must be zip or tar.gz\n";
    return kExitUsage;
  }
  VersionsClient client(inv);
  DownloadVersionRequest request;
  request.set_project_id(inv.args.Get("project"));
  request.set_number(*number);
  request.set_format(format == "zip" ? DownloadVersionRequest::FORMAT_ZIP
                                     : DownloadVersionRequest::FORMAT_TAR_GZ);
  auto context = client.NewContext("DownloadVersion");
  // The archive streams as long as it takes; the server ends a download after 30 minutes.
  context->set_deadline(std::chrono::system_clock::time_point::max());
  auto reader = client.stub().DownloadVersion(context.get(), request);
  DownloadVersionResponse first;
  if (!reader->Read(&first)) return client.Fail(reader->Finish());
  std::string path = inv.args.Get("output");
  if (path.empty()) path = first.file_name();
  if (!SafeFileName(first.file_name()) && inv.args.Get("output").empty()) {
    inv.err << "error: the server's file name is not usable here; give --output\n";
    context->TryCancel();
    return kExitRpcError;
  }
  const int64_t bytes = SaveArchive(*reader, std::move(first), path, inv.err);
  if (grpc::Status s = reader->Finish(); !s.ok()) {
    std::filesystem::remove(path);
    return client.Fail(s);
  }
  if (bytes < 0) return kExitRpcError;
  inv.out << "saved " << path << " (" << bytes << " bytes)\n";
  return kExitOk;
}

const FlagSpec kProject{
    .name = "project", .value_name = "ID", .help = "the project's id", .required = true};

}  // namespace

std::vector<CommandSpec> VersionCommands() {
  return {
      {.path = {"versions", "list"},
       .flags = {kProject,
                 {.name = "page-size",
                  .value_name = "N",
                  .help = "versions per page",
                  .validate = IsInt32},
                 {.name = "page-token",
                  .value_name = "TOKEN",
                  .help = "continue from a previous `next page`"},
                 {.name = "all", .help = "follow the pages to the end"}},
       .summary = "list a project's versions, newest first",
       .run = VersionList},
      {.path = {"versions", "get"},
       .positionals = {"NUMBER"},
       .flags = {kProject,
                 {.name = "files", .help = "list its files (size, sha256, path)"},
                 {.name = "cat", .value_name = "PATH", .help = "print one file's content"}},
       .summary = "show one version",
       .run = VersionGet},
      {.path = {"versions", "diff"},
       .flags = {kProject,
                 {.name = "from",
                  .value_name = "N|workspace",
                  .help = "the version to diff from, or the project's workspace now",
                  .required = true,
                  .validate = IsVersionOrWorkspace},
                 {.name = "to",
                  .value_name = "N|workspace",
                  .help = "the version to diff to, or the workspace now (a run's edits so far)",
                  .validate = IsVersionOrWorkspace},
                 {.name = "to-draft",
                  .value_name = "RUN_ID",
                  .help = "instead: what a failed or cancelled run had changed"}},
       .summary = "what changed between two versions, file by file (unified diffs)",
       .run = VersionDiff},
      {.path = {"versions", "download"},
       .positionals = {"NUMBER"},
       .flags = {kProject,
                 {.name = "format",
                  .value_name = "zip|tar.gz",
                  .help = "the archive's format",
                  .default_value = "zip"},
                 {.name = "output",
                  .value_name = "FILE",
                  .help = "where to save it (default: the name the server gives, here)"}},
       .summary = "save a version's files as a .zip or .tar.gz, as it streams",
       .run = VersionDownload},
      {.path = {"versions", "restore"},
       .positionals = {"NUMBER"},
       .flags = {kProject, {.name = "watch", .help = "follow the restore until it ends"}},
       .summary = "bring a version back as the next one (every version is kept)",
       .run = VersionRestore},
  };
}

std::string FormatVersion(const Version& v, bool files) {
  std::string out =
      absl::StrCat("number: ", v.number(), "\n", "project_id: ", v.project_id(), "\n");
  if (!v.title().empty()) absl::StrAppend(&out, "title: ", Printable(v.title(), false), "\n");
  if (!v.author().empty()) absl::StrAppend(&out, "author: ", v.author(), "\n");
  absl::StrAppend(&out, "created: ", FormatTimestamp(v.create_time()), "\n");
  if (v.restored_from() > 0) absl::StrAppend(&out, "restored_from: ", v.restored_from(), "\n");
  absl::StrAppend(&out, "run_id: ", v.run_id(), "\n");
  if (!v.message_id().empty()) absl::StrAppend(&out, "message_id: ", v.message_id(), "\n");
  absl::StrAppend(&out, "sandbox_url: ", v.sandbox_url(), "\n");
  if (!v.download_url().empty()) {
    absl::StrAppend(&out, "download_url: ", Printable(v.download_url(), false), "\n");
  }
  if (!files) return out;
  absl::StrAppend(&out, "files: ", v.files_size(), "\n");
  for (const VersionFile& f : v.files()) {
    absl::StrAppend(&out, "  ", f.size(), "  ", f.sha256(), "  ",
                    Printable(f.path(), /*keep_newlines=*/false), "\n");
  }
  return out;
}

std::string FormatDiff(const DiffVersionsResponse& diff) {
  std::string out;
  for (const FileDiff& f : diff.files()) {
    const std::string path = Printable(f.path(), /*keep_newlines=*/false);
    const std::string change = FileDiff::Change_Name(f.change()).substr(7);  // after "CHANGE_"
    absl::StrAppend(&out, change, " ", path, " (", f.old_size(), " -> ", f.new_size(), " bytes)",
                    f.binary() ? ", binary" : "", f.truncated() ? ", diff cut" : "", "\n");
    if (f.unified_diff().empty()) continue;
    absl::StrAppend(&out, "--- a/", path, "\n+++ b/", path, "\n",
                    Printable(f.unified_diff(), /*keep_newlines=*/true));
  }
  if (diff.files().empty()) out = "no change\n";
  if (diff.truncated()) absl::StrAppend(&out, "(some diffs were cut or left out)\n");
  if (diff.workspace_not_open()) {
    absl::StrAppend(
        &out, "(the workspace is not open on its replica: the latest version stood for it)\n");
  }
  return out;
}

std::string FormatVersionRow(const Version& v) {
  std::string title = v.title().empty() ? "-" : FirstLine(Printable(v.title(), false), 60);
  if (v.restored_from() > 0) absl::StrAppend(&title, " (restored from ", v.restored_from(), ")");
  return absl::StrCat(v.number(), "  ", FormatTimestamp(v.create_time()), "  ",
                      v.author().empty() ? "-" : v.author(), "  ", title, "  ", v.sandbox_url(),
                      "\n");
}

}  // namespace qai::cli
