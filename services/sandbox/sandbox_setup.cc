#include "services/sandbox/sandbox_setup.h"

#include <unistd.h>

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/auth.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "services/sandbox/workspace.h"

namespace qai::sandbox {
namespace {

using common::Log;
using common::LogLevel;

constexpr char kProbeCommand[] = "echo probe > probe.txt && cat probe.txt";
constexpr absl::Duration kProbeTimeout = absl::Seconds(20);

}  // namespace

absl::StatusOr<std::optional<DiskQuota>> ChooseDiskQuota(const common::Config& config,
                                                         const std::string& root,
                                                         const absl::Status& private_mounts) {
  if (config.Get("sandbox-disk") == kSandboxDiskOff) {
    Log(LogLevel::kError,
        "sandbox: QAI_SANDBOX_DISK=off: workspaces have no disk quota, so one project's commands "
        "can fill the disk under QAI_SANDBOX_ROOT for every project (only single files are "
        "bounded)",
        {});
    return std::optional<DiskQuota>();
  }
  const DiskQuota quota{.bytes = static_cast<uint64_t>(config.GetInt("sandbox-disk-mb")) << 20,
                        .files = static_cast<uint64_t>(config.GetInt("sandbox-disk-files")),
                        .total_bytes = static_cast<uint64_t>(config.GetInt("sandbox-disk-total-mb"))
                                       << 20};
  QAI_RETURN_IF_ERROR(ProbeDiskQuota(root, private_mounts));
  QAI_RETURN_IF_ERROR(MountRootInMemory(root));
  Log(LogLevel::kInfo, "sandbox: each workspace is a tmpfs of its own",
      {{"max_bytes", static_cast<int64_t>(quota.bytes)},
       {"max_files", static_cast<int64_t>(quota.files)},
       {"max_total_bytes", static_cast<int64_t>(quota.total_bytes)}});
  return std::optional<DiskQuota>(quota);
}

absl::Status ProbeSandbox(const std::shared_ptr<const Sandbox>& sandbox, const std::string& root) {
  QAI_RETURN_IF_ERROR(PrepareRoot(root));
  std::optional<SandboxUser> user;
  if (sandbox->switches_users())
    user = SandboxUser{.uid = sandbox->ProbeUid(), .gid = sandbox->ProbeUid()};
  const std::string project = common::NewUuid();
  QAI_ASSIGN_OR_RETURN(std::unique_ptr<Workspace> ws, Workspace::Open(root, project, user));
  CommandResult r = ws->Run(kProbeCommand, {.timeout = kProbeTimeout, .sandbox = sandbox}, nullptr);
  (void)ws->Remove();
  if (sandbox->cgroups() != nullptr) (void)sandbox->cgroups()->Remove(project);
  if (r.exit_code == 0 && r.output == "probe\n") return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("sandbox ", SandboxModeName(sandbox->mode()), ": a probe command in ", root,
                   " ended with exit code ", r.exit_code, r.timed_out ? " (timed out)" : "", ": ",
                   absl::StripTrailingAsciiWhitespace(r.output.substr(0, 2000))));
}

namespace {

// ProjectCgroups: the projects' cgroups, set up (and logged) when required: FAILED_PRECONDITION
// saying why where they cannot be. Not required: none, with an error-level line saying what
// that leaves unbounded.
absl::StatusOr<std::shared_ptr<Cgroups>> ProjectCgroups(const CgroupRequest& cgroups,
                                                        const std::string& root) {
  if (!cgroups.required) {
    Log(LogLevel::kError,
        "sandbox: UNLIMITED: QAI_SANDBOX_CGROUPS=off: no limit holds for all of a project's "
        "processes together: "
        "one project's commands can use all the memory (the kernel then kills whatever it picks, "
        "other projects' "
        "commands or the service) and all the CPUs the service may, limited per process only; in "
        "unsafe-none mode "
        "a process that leaves its process group survives its command");
    return nullptr;
  }
  // One parent per sandbox root: an instance sweeps up only what its predecessors on the same
  // root left (a replica restarted on its disk), never judges by pid an instance it may not
  // see (another PID namespace: containers sharing a cgroup, the attack tests' replicas).
  CgroupOptions scoped = cgroups.options;
  scoped.name = absl::StrCat(scoped.name, "-", common::Sha256Hex(root).substr(0, 12));
  absl::StatusOr<std::shared_ptr<Cgroups>> set_up = Cgroups::SetUp(scoped);
  if (absl::IsInvalidArgument(set_up.status())) return set_up.status();
  if (!set_up.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(set_up.status().message(),
                     " (qai-sandbox does not start without limits for all of a project's "
                     "processes: run it as root where "
                     "/sys/fs/cgroup is writable, cgroup v2 with cpu, memory and pids delegated "
                     "to its cgroup, or v1; or, "
                     "accepting that one project can take the memory and CPUs of all, set "
                     "QAI_SANDBOX_CGROUPS=off)"));
  }
  std::shared_ptr<Cgroups> cgroups_set_up = *std::move(set_up);
  Log(LogLevel::kInfo,
      absl::StrCat("sandbox: cgroup ", CgroupVersionName(cgroups_set_up->version()),
                   ": each project's processes are limited together"),
      cgroups_set_up->Describe());
  return cgroups_set_up;
}

// ProbedSandbox: the sandbox of options, once a probe command ran in it under root; for
// bwrap, a failed probe says what the service needs to start.
absl::StatusOr<std::shared_ptr<const Sandbox>> ProbedSandbox(const SandboxOptions& options,
                                                             const std::string& root, bool unsafe) {
  QAI_ASSIGN_OR_RETURN(std::shared_ptr<const Sandbox> sandbox, Sandbox::Create(options));
  if (absl::Status s = ProbeSandbox(sandbox, root); !s.ok()) {
    if (unsafe) return s;
    return absl::FailedPreconditionError(
        absl::StrCat(s.message(),
                     " (qai-sandbox does not start without isolation: install bubblewrap and allow "
                     "user namespaces, "
                     "or, for development only, set QAI_SANDBOX=unsafe-none)"));
  }
  return sandbox;
}

// LogWhatItLeavesOpen: an error-level line for the unsafe mode, a warning when not root.
void LogWhatItLeavesOpen(std::string_view requested, bool unsafe) {
  if (unsafe) {
    Log(LogLevel::kError,
        "sandbox: UNSAFE: QAI_SANDBOX=unsafe-none: commands run WITHOUT isolation: they can use "
        "the network (the "
        "database and every service included), read what the host lets any user read, write where "
        "any user may, see "
        "other processes and leave processes behind. For development only; health reports "
        "isolation NOT_SERVING",
        {{"requested", std::string(requested)}});
  }
  if (::geteuid() != 0) {
    Log(LogLevel::kWarn,
        "sandbox: the service is not root, so commands run as its own user: the processes limit "
        "counts its own "
        "threads too, and all projects share one user");
  }
}

}  // namespace

absl::StatusOr<SandboxChoice> ChooseSandbox(std::string_view requested, SandboxOptions options,
                                            const std::string& root, const CgroupRequest& cgroups) {
  if (requested != "bwrap" && requested != kSandboxUnsafeNone) {
    return absl::InvalidArgumentError(
        absl::StrCat("sandbox: \"", std::string(requested), "\" must be bwrap or unsafe-none"));
  }
  SandboxChoice choice{.unsafe = requested == kSandboxUnsafeNone};
  options.mode = choice.unsafe ? SandboxMode::kUnsafeNone : SandboxMode::kBwrap;
  QAI_ASSIGN_OR_RETURN(options.cgroups, ProjectCgroups(cgroups, root));
  absl::StatusOr<std::shared_ptr<const Sandbox>> sandbox =
      ProbedSandbox(options, root, choice.unsafe);
  if (!sandbox.ok()) {
    // A sandbox that fails leaves no cgroup behind.
    if (options.cgroups != nullptr) options.cgroups->RemoveAll();
    return sandbox.status();
  }
  choice.sandbox = *std::move(sandbox);
  LogWhatItLeavesOpen(requested, choice.unsafe);
  Log(LogLevel::kInfo, "sandbox", choice.sandbox->Describe());
  return choice;
}

}  // namespace qai::sandbox
