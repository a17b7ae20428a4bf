#include "services/sandbox/sandbox_setup.h"

#include <unistd.h>

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/auth.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "services/sandbox/workspace.h"

namespace qai::sandbox {
namespace {

using common::Log;
using common::LogLevel;
using common::ToAbsl;

constexpr char kUnsafeNone[] = "unsafe-none";
constexpr char kCgroupsRequired[] = "required";
constexpr char kCgroupsOff[] = "off";
constexpr char kDiskTmpfs[] = "tmpfs";
constexpr char kDiskOff[] = "off";
constexpr char kProbeCommand[] = "echo probe > probe.txt && cat probe.txt";
constexpr absl::Duration kProbeTimeout = absl::Seconds(20);

// ParseCpus: "0" (no limit) or 0.01..4096 CPUs.
bool ParseCpus(std::string_view text, double* cpus) {
  double value = 0;
  if (!absl::SimpleAtod(ToAbsl(text), &value) || !(value == 0 || (value >= 0.01 && value <= 4096)))
    return false;
  *cpus = value;
  return true;
}

}  // namespace

std::vector<common::Option> WithSandboxOptions(std::vector<common::Option> options) {
  const SandboxOptions defaults;
  const ProjectLimits defaults_cg;
  options.insert(
      options.end(),
      {
          {.name = "sandbox",
           .default_value = "bwrap",
           .help =
               "how commands are isolated: bwrap (bubblewrap; start-up fails when it does not run "
               "here) or, for "
               "development only, unsafe-none (no isolation but limits and a user of their own)",
           .validate = [](std::string_view v) -> std::string {
             return v == "bwrap" || v == kUnsafeNone ? "" : "must be bwrap or unsafe-none";
           }},
          {.name = "sandbox-cpu-time",
           .default_value = "60s",
           .help = "CPU time of each process of a command",
           .validate = [](std::string_view v) -> std::string {
             if (std::string why = common::IsDuration(v); !why.empty()) return why;
             absl::Duration d;
             return absl::ParseDuration(ToAbsl(v), &d) && d >= absl::Seconds(1)
                        ? ""
                        : "must be at least 1s";
           }},
          {.name = "sandbox-memory-mb",
           .default_value = "2048",
           .help = "address space of each process of a command, in MiB",
           .validate = common::IsIntIn(64, 1 << 24)},
          {.name = "sandbox-processes",
           .default_value = "256",
           .help = "processes (and threads) a project's commands may have at once",
           .validate = common::IsIntIn(4, 1 << 22)},
          {.name = "sandbox-file-size-mb",
           .default_value = "128",
           .help = "the largest file a command may write, in MiB (and the size of its private /tmp "
                   "in bwrap mode)",
           .validate = common::IsIntIn(1, 1 << 24)},
          {.name = "sandbox-uids",
           .default_value =
               absl::StrCat(defaults.first_uid, "-", defaults.first_uid + (defaults.uid_count - 1)),
           .help = "when run as root: the uids (FIRST-LAST, or one) that projects' commands run "
                   "as, one per project",
           .validate = [](std::string_view v) -> std::string {
             uint32_t first, count;
             return ParseUidRange(v, &first, &count)
                        ? ""
                        : "must be FIRST-LAST, within 1..4294967294, at least 2 uids (the last is "
                          "the start-up probe's)";
           }},
          {.name = "sandbox-cgroups",
           .default_value = kCgroupsRequired,
           .help = "limits for all of a project's processes together, through cgroups (v2 or v1, "
                   "found at start-up): "
                   "required (start-up fails where no cgroup hierarchy can be written) or off "
                   "(none; logged as an error)",
           .validate = [](std::string_view v) -> std::string {
             return v == kCgroupsRequired || v == kCgroupsOff ? "" : "must be required or off";
           }},
          {.name = "sandbox-project-memory-mb",
           .default_value = absl::StrCat(defaults_cg.memory_bytes >> 20),
           .help =
               "memory of all of a project's processes together, in MiB, without swap (cgroups)",
           .validate = common::IsIntIn(32, 1 << 24)},
          {.name = "sandbox-project-pids",
           .default_value = absl::StrCat(defaults_cg.pids),
           .help = "processes and threads of all of a project's commands together (cgroups)",
           .validate = common::IsIntIn(8, 1 << 22)},
          {.name = "sandbox-cpu-weight",
           .default_value = absl::StrCat(defaults_cg.cpu_weight),
           .help = "a project's share of busy CPUs against the other projects', 1..10000 (cgroups: "
                   "cpu.weight; "
                   "v1: cpu.shares = weight * 1024 / 100)",
           .validate = common::IsIntIn(1, 10000)},
          {.name = "sandbox-cpus",
           .default_value = "1",
           .help = "the CPUs all of a project's processes may use together at most, e.g. 0.5 or 2 "
                   "(cgroups: cpu.max; "
                   "v1: cpu.cfs_quota_us); 0: no limit",
           .validate = [](std::string_view v) -> std::string {
             double cpus = 0;
             return ParseCpus(v, &cpus)
                        ? ""
                        : "must be 0 (no limit) or a number of CPUs from 0.01 to 4096";
           }},
          {.name = "sandbox-disk",
           .default_value = kDiskTmpfs,
           .help = "a disk quota per workspace: tmpfs (each workspace a filesystem of its own of "
                   "that size; start-up fails "
                   "where it cannot be mounted) or off (none: a project can fill the disk; logged "
                   "as an error)",
           .validate = [](std::string_view v) -> std::string {
             return v == kDiskTmpfs || v == kDiskOff ? "" : "must be tmpfs or off";
           }},
          {.name = "sandbox-disk-mb",
           .default_value = absl::StrCat(DiskQuota{}.bytes >> 20),
           .help = "the most a project's workspace may hold, in MiB (memory: the pages count "
                   "against the project's "
                   "cgroup, or the service's for files it writes)",
           .validate = common::IsIntIn(1, 1 << 20)},
          {.name = "sandbox-disk-files",
           .default_value = absl::StrCat(DiskQuota{}.files),
           .help = "the most files, directories and links a project's workspace may hold",
           .validate = common::IsIntIn(16, 100000000)},
          {.name = "sandbox-disk-total-mb",
           .default_value = "4096",
           .help = "the most this replica's workspaces may hold together, in MiB (memory); beyond "
                   "it the workspaces "
                   "idle longest are dropped, to be restored from their snapshot when next used; "
                   "0: no bound",
           .validate = common::IsIntIn(0, 1 << 30)},
      });
  return options;
}

absl::StatusOr<std::optional<DiskQuota>> ChooseDiskQuota(const common::Config& config,
                                                         const std::string& root,
                                                         const absl::Status& private_mounts) {
  if (config.Get("sandbox-disk") == kDiskOff) {
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

SandboxOptions SandboxOptionsFrom(const common::Config& config) {
  SandboxOptions options;
  options.limits.cpu_time = config.GetDuration("sandbox-cpu-time");
  options.limits.memory_bytes = static_cast<uint64_t>(config.GetInt("sandbox-memory-mb")) << 20;
  options.limits.processes = static_cast<uint64_t>(config.GetInt("sandbox-processes"));
  options.limits.file_bytes = static_cast<uint64_t>(config.GetInt("sandbox-file-size-mb")) << 20;
  ParseUidRange(config.Get("sandbox-uids"), &options.first_uid, &options.uid_count);
  return options;
}

CgroupRequest CgroupRequestFrom(const common::Config& config) {
  CgroupRequest request{.required = config.Get("sandbox-cgroups") != kCgroupsOff};
  ProjectLimits& l = request.options.limits;
  l.memory_bytes = static_cast<uint64_t>(config.GetInt("sandbox-project-memory-mb")) << 20;
  l.pids = static_cast<uint64_t>(config.GetInt("sandbox-project-pids"));
  l.cpu_weight = static_cast<uint32_t>(config.GetInt("sandbox-cpu-weight"));
  ParseCpus(config.Get("sandbox-cpus"), &l.cpus);
  return request;
}

bool ParseUidRange(std::string_view text, uint32_t* first, uint32_t* count) {
  if (text.find_first_not_of("0123456789-") != std::string_view::npos) return false;
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return false;
  uint64_t low = 0, high = 0;
  if (!absl::SimpleAtoi(ToAbsl(text.substr(0, dash)), &low)) return false;
  if (!absl::SimpleAtoi(ToAbsl(text.substr(dash + 1)), &high)) return false;
  if (low < 1 || high <= low || high > 0xFFFFFFFE) return false;
  *first = static_cast<uint32_t>(low);
  *count = static_cast<uint32_t>(high - low + 1);
  return true;
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

absl::StatusOr<SandboxChoice> ChooseSandbox(std::string_view requested, SandboxOptions options,
                                            const std::string& root, const CgroupRequest& cgroups) {
  if (requested != "bwrap" && requested != kUnsafeNone) {
    return absl::InvalidArgumentError(
        absl::StrCat("sandbox: \"", std::string(requested), "\" must be bwrap or unsafe-none"));
  }
  SandboxChoice choice{.unsafe = requested == kUnsafeNone};
  options.mode = choice.unsafe ? SandboxMode::kUnsafeNone : SandboxMode::kBwrap;
  if (cgroups.required) {
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
    options.cgroups = *std::move(set_up);
    Log(LogLevel::kInfo,
        absl::StrCat("sandbox: cgroup ", CgroupVersionName(options.cgroups->version()),
                     ": each project's processes are limited together"),
        options.cgroups->Describe());
  } else {
    options.cgroups = nullptr;
    Log(LogLevel::kError,
        "sandbox: UNLIMITED: QAI_SANDBOX_CGROUPS=off: no limit holds for all of a project's "
        "processes together: "
        "one project's commands can use all the memory (the kernel then kills whatever it picks, "
        "other projects' "
        "commands or the service) and all the CPUs the service may, limited per process only; in "
        "unsafe-none mode "
        "a process that leaves its process group survives its command");
  }
  // Whatever fails from here on leaves no cgroup behind.
  auto fail = [&](absl::Status s) {
    if (options.cgroups != nullptr) options.cgroups->RemoveAll();
    return s;
  };
  absl::StatusOr<std::shared_ptr<const Sandbox>> sandbox = Sandbox::Create(options);
  if (!sandbox.ok()) return fail(sandbox.status());
  if (absl::Status s = ProbeSandbox(*sandbox, root); !s.ok()) {
    if (choice.unsafe) return fail(s);
    return fail(absl::FailedPreconditionError(
        absl::StrCat(s.message(),
                     " (qai-sandbox does not start without isolation: install bubblewrap and allow "
                     "user namespaces, "
                     "or, for development only, set QAI_SANDBOX=unsafe-none)")));
  }
  choice.sandbox = *std::move(sandbox);
  if (choice.unsafe) {
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
  Log(LogLevel::kInfo, "sandbox", choice.sandbox->Describe());
  return choice;
}

}  // namespace qai::sandbox
