#include "services/sandbox/sandbox_options.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "services/sandbox/disk_quota.h"

namespace qai::sandbox {
namespace {

using common::ToAbsl;

constexpr char kCgroupsRequired[] = "required";
constexpr char kCgroupsOff[] = "off";
constexpr char kDiskTmpfs[] = "tmpfs";

// ParseCpus: "0" (no limit) or 0.01..4096 CPUs.
bool ParseCpus(std::string_view text, double* cpus) {
  double value = 0;
  if (!absl::SimpleAtod(ToAbsl(text), &value) || !(value == 0 || (value >= 0.01 && value <= 4096)))
    return false;
  *cpus = value;
  return true;
}

// The options' validators that are more than a range: each returns why a value is refused, or
// "".
std::string IsSandboxMode(std::string_view v) {
  return v == "bwrap" || v == kSandboxUnsafeNone ? "" : "must be bwrap or unsafe-none";
}
std::string IsCpuTime(std::string_view v) {
  if (std::string why = common::IsDuration(v); !why.empty()) return why;
  absl::Duration d;
  return absl::ParseDuration(ToAbsl(v), &d) && d >= absl::Seconds(1) ? "" : "must be at least 1s";
}
std::string IsUidRange(std::string_view v) {
  uint32_t first, count;
  return ParseUidRange(v, &first, &count)
             ? ""
             : "must be FIRST-LAST, within 1..4294967294, at least 2 uids (the last is "
               "the start-up probe's)";
}
std::string IsCgroupsMode(std::string_view v) {
  return v == kCgroupsRequired || v == kCgroupsOff ? "" : "must be required or off";
}
std::string IsCpus(std::string_view v) {
  double cpus = 0;
  return ParseCpus(v, &cpus) ? "" : "must be 0 (no limit) or a number of CPUs from 0.01 to 4096";
}
std::string IsDiskMode(std::string_view v) {
  return v == kDiskTmpfs || v == kSandboxDiskOff ? "" : "must be tmpfs or off";
}

// CommandOptions: how each command is isolated and limited, and the uids commands run as.
std::vector<common::Option> CommandOptions() {
  const SandboxOptions defaults;
  return {
      {.name = "sandbox",
       .default_value = "bwrap",
       .help = "how commands are isolated: bwrap (bubblewrap; start-up fails when it does not run "
               "here) or, for "
               "development only, unsafe-none (no isolation but limits and a user of their own)",
       .validate = IsSandboxMode},
      {.name = "sandbox-cpu-time",
       .default_value = "60s",
       .help = "CPU time of each process of a command",
       .validate = IsCpuTime},
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
       .validate = IsUidRange},
  };
}

// ProjectCgroupOptions: the limits all of a project's processes have together.
std::vector<common::Option> ProjectCgroupOptions() {
  const ProjectLimits defaults;
  return {
      {.name = "sandbox-cgroups",
       .default_value = kCgroupsRequired,
       .help = "limits for all of a project's processes together, through cgroups (v2 or v1, "
               "found at start-up): "
               "required (start-up fails where no cgroup hierarchy can be written) or off "
               "(none; logged as an error)",
       .validate = IsCgroupsMode},
      {.name = "sandbox-project-memory-mb",
       .default_value = absl::StrCat(defaults.memory_bytes >> 20),
       .help = "memory of all of a project's processes together, in MiB, without swap (cgroups)",
       .validate = common::IsIntIn(32, 1 << 24)},
      {.name = "sandbox-project-pids",
       .default_value = absl::StrCat(defaults.pids),
       .help = "processes and threads of all of a project's commands together (cgroups)",
       .validate = common::IsIntIn(8, 1 << 22)},
      {.name = "sandbox-cpu-weight",
       .default_value = absl::StrCat(defaults.cpu_weight),
       .help = "a project's share of busy CPUs against the other projects', 1..10000 (cgroups: "
               "cpu.weight; "
               "v1: cpu.shares = weight * 1024 / 100)",
       .validate = common::IsIntIn(1, 10000)},
      {.name = "sandbox-cpus",
       .default_value = "1",
       .help = "the CPUs all of a project's processes may use together at most, e.g. 0.5 or 2 "
               "(cgroups: cpu.max; "
               "v1: cpu.cfs_quota_us); 0: no limit",
       .validate = IsCpus},
  };
}

// DiskQuotaOptions: what each workspace, and all of this replica's together, may hold.
std::vector<common::Option> DiskQuotaOptions() {
  return {
      {.name = "sandbox-disk",
       .default_value = kDiskTmpfs,
       .help = "a disk quota per workspace: tmpfs (each workspace a filesystem of its own of "
               "that size; start-up fails "
               "where it cannot be mounted) or off (none: a project can fill the disk; logged "
               "as an error)",
       .validate = IsDiskMode},
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
  };
}

}  // namespace

std::vector<common::Option> WithSandboxOptions(std::vector<common::Option> options) {
  for (auto group : {CommandOptions, ProjectCgroupOptions, DiskQuotaOptions}) {
    for (common::Option& o : group()) options.push_back(std::move(o));
  }
  return options;
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

}  // namespace qai::sandbox
