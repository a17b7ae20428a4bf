#include "services/sandbox/cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "services/sandbox/cgroup_discovery.h"
#include "services/sandbox/fd.h"
#include "services/sandbox/proc_stat.h"

namespace qai::sandbox {
namespace {

using common::Log;
using common::LogLevel;

// The leaf a v2 service moves its cgroup's processes into, so the cgroup can give controllers
// to its children.
constexpr char kServiceLeaf[] = "service";
constexpr const char* kNeeded[] = {"cpu", "memory", "pids"};
constexpr int64_t kCpuPeriodUs = 100000;
// How long Kill waits for a cgroup to empty (SIGKILLed processes go within milliseconds; a
// process stuck in the kernel, e.g. on a dead NFS mount, may not).
constexpr auto kKillWait = std::chrono::seconds(3);

absl::Status ErrnoError(int error, absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat("cgroups: ", what, ": ", std::strerror(error)));
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

absl::StatusOr<std::string> ReadText(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, absl::StrCat("cannot read ", path));
  std::string text;
  char buf[4096];
  while (text.size() < (1 << 20)) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, absl::StrCat("cannot read ", path));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

// WriteRaw: one write, as the kernel takes a cgroup file's value; returns the errno (0: done).
int WriteRaw(const std::string& path, absl::string_view value) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  while (true) {
    const ssize_t n = ::write(fd.get(), value.data(), value.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    return static_cast<size_t>(n) == value.size() ? 0 : EIO;
  }
}

absl::Status WriteText(const std::string& path, absl::string_view value) {
  if (int error = WriteRaw(path, value); error != 0) {
    return ErrnoError(error, absl::StrCat("cannot write \"", value, "\" to ", path));
  }
  return absl::OkStatus();
}

// MakeDir: mkdir, an existing directory being fine.
absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return absl::OkStatus();
  const int error = errno;
  struct stat st;
  if (error == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return absl::OkStatus();
  return ErrnoError(error == EEXIST ? ENOTDIR : error, absl::StrCat("cannot create ", path));
}

std::vector<pid_t> ReadPids(const std::string& procs) {
  std::vector<pid_t> pids;
  absl::StatusOr<std::string> text = ReadText(procs);
  if (!text.ok()) return pids;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) pids.push_back(pid);
  }
  return pids;
}

// Field: the value of `key` in a flat-keyed cgroup file ("oom_kill 3\n..."); 0 when absent.
uint64_t Field(const std::string& path, absl::string_view key) {
  absl::StatusOr<std::string> text = ReadText(path);
  if (!text.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    uint64_t value = 0;
    if (kv.first == key && absl::SimpleAtoi(kv.second, &value)) return value;
  }
  return 0;
}

std::vector<std::string> Words(absl::string_view text) {
  return absl::StrSplit(absl::StripAsciiWhitespace(text), absl::ByAnyChar(" \n"),
                        absl::SkipEmpty());
}

bool HasAll(const std::vector<std::string>& have) {
  return std::all_of(std::begin(kNeeded), std::end(kNeeded), [&](const char* c) {
    return std::find(have.begin(), have.end(), c) != have.end();
  });
}

// KillIfIn: SIGKILL to pid if it is (still) a process of the cgroup named by marker, as its
// /proc/<pid>/cgroup shows it. The service is root: a pid read from cgroup.procs may have
// exited and been reused by anyone since, so the process is pinned by a pidfd first, and
// signalled only if it was still alive after its cgroup was read.
void KillIfIn(pid_t pid, const std::string& marker) {
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid() && errno == ESRCH) return;  // gone
  absl::StatusOr<std::string> cgroup = ReadText(absl::StrCat("/proc/", pid, "/cgroup"));
  if (!cgroup.ok() || cgroup->find(marker) == std::string::npos) return;
  if (!pidfd
           .valid()) {  // no pidfds (before Linux 5.3, or a seccomp filter): the small race remains
    ::kill(pid, SIGKILL);
    return;
  }
  pollfd exited{pidfd.get(), POLLIN, 0};
  if (::poll(&exited, 1, 0) != 0) return;  // it ended while its cgroup was read
  ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
}

std::string Parent(const std::string& dir) { return dir.substr(0, dir.rfind('/')); }
std::string Basename(const std::string& dir) { return dir.substr(dir.rfind('/') + 1); }

// KillAll: KillIfIn for everything in the cgroup dir until it is empty; false when something
// was still there after kKillWait (logged).
bool KillAll(const std::string& dir, const std::string& marker, bool can_kill) {
  const auto deadline = std::chrono::steady_clock::now() + kKillWait;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    // Zombies are not listed: a killed command's processes leave the list as they die.
    const std::vector<pid_t> pids = ReadPids(dir + "/cgroup.procs");
    if (pids.empty()) return true;
    if (std::chrono::steady_clock::now() >= deadline) {
      Log(LogLevel::kWarn, "sandbox: processes remain in a project's cgroup after SIGKILL",
          {{"cgroup", dir}, {"processes", pids.size()}});
      return false;
    }
    // cgroup.kill reaches every process, those forked meanwhile too; without it, a process
    // forked between the read and the kills is in the next read (the pids limit bounds them).
    if (!can_kill || WriteRaw(dir + "/cgroup.kill", "1") != 0) {
      for (pid_t pid : pids) KillIfIn(pid, marker);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

// RemoveDir: rmdir of a cgroup, waiting a little for killed processes to be on their way out;
// 0 or the errno (a missing one is fine).
int RemoveDir(const std::string& dir) {
  int error = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    error = ::rmdir(dir.c_str()) == 0 ? 0 : errno;
    if (error != EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return error == ENOENT ? 0 : error;
}

std::vector<std::string> Subdirs(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (e->d_type == DT_DIR && name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

// StartTime: when process pid started, in clock ticks since boot, or "" when there is no such
// process.
std::string StartTime(pid_t pid) {
  std::optional<ProcStat> st = ReadProcStat(pid);
  return st ? absl::StrCat(st->start_time) : "";
}

// InstanceName: this process as "<pid>-<start time>", a name no other process has had since
// the machine booted.
std::string InstanceName() { return absl::StrCat(::getpid(), "-", StartTime(::getpid())); }

// Gone: whether name is an instance's whose process no longer runs. Names of any other form
// are not ours to judge.
bool Gone(const std::string& name) {
  std::pair<std::string, std::string> parts = absl::StrSplit(name, absl::MaxSplits('-', 1));
  pid_t pid = 0;
  uint64_t ticks = 0;
  if (!absl::SimpleAtoi(parts.first, &pid) || pid <= 0 || !absl::SimpleAtoi(parts.second, &ticks))
    return false;
  return StartTime(pid) != parts.second;
}

}  // namespace

const char* CgroupVersionName(CgroupVersion version) {
  return version == CgroupVersion::kV2 ? "v2" : "v1";
}

Cgroups::Cgroups(CgroupOptions options, CgroupVersion version, std::vector<Hierarchy> hierarchies)
    : options_(std::move(options)), version_(version), hierarchies_(std::move(hierarchies)) {}

absl::StatusOr<std::shared_ptr<Cgroups>> Cgroups::SetUp(const CgroupOptions& options) {
  const ProjectLimits& l = options.limits;
  if (l.memory_bytes < (uint64_t{32} << 20))
    return absl::InvalidArgumentError("cgroups: the project memory limit is under 32 MiB");
  if (l.pids < 8)
    return absl::InvalidArgumentError("cgroups: the project processes limit is under 8");
  if (l.cpu_weight < 1 || l.cpu_weight > 10000)
    return absl::InvalidArgumentError("cgroups: the CPU weight must be 1..10000");
  if (!(l.cpus == 0 || (l.cpus >= 0.01 && l.cpus <= 4096))) {
    return absl::InvalidArgumentError("cgroups: the CPU limit must be 0 (none) or 0.01..4096");
  }
  if (options.name.empty() || options.name.find('/') != std::string::npos || options.name == "." ||
      options.name == ".." || options.name == kServiceLeaf) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroups: \"", options.name, "\" cannot name a cgroup directory"));
  }
  QAI_ASSIGN_OR_RETURN(std::string mountinfo, ReadText(options.mountinfo));
  QAI_ASSIGN_OR_RETURN(std::string self, ReadText(options.self_cgroup));
  const std::vector<CgroupPlace> places = OwnCgroups(mountinfo, self);

  std::vector<std::string> why_not;
  // v2 first: where it has the controllers, no v1 hierarchy can have them too.
  bool unified_seen = false;
  for (const CgroupPlace& place : places) {
    if (!place.unified) continue;
    unified_seen = true;
    absl::StatusOr<std::string> controllers = ReadText(place.dir + "/cgroup.controllers");
    if (!controllers.ok()) {
      why_not.push_back(absl::StrCat("cgroup v2: ", controllers.status().message()));
    } else if (HasAll(Words(*controllers))) {
      return SetUpV2(options, place.dir);
    } else {
      why_not.push_back(absl::StrCat(
          "cgroup v2 at ", place.dir, " has \"", absl::StripAsciiWhitespace(*controllers),
          "\" in cgroup.controllers, not all of cpu, memory and pids (they are not "
          "delegated to the service's cgroup)"));
    }
  }
  if (!unified_seen) why_not.push_back("no cgroup v2 hierarchy holding the service is mounted");

  std::vector<Hierarchy> v1;
  std::vector<std::string> missing;
  for (const char* controller : {"cpu", "memory", "pids", "cpuacct"}) {
    auto place = std::find_if(places.begin(), places.end(), [&](const CgroupPlace& p) {
      return !p.unified && std::find(p.controllers.begin(), p.controllers.end(), controller) !=
                               p.controllers.end();
    });
    if (place == places.end()) {
      if (std::string_view(controller) != "cpuacct")
        missing.emplace_back(controller);  // cpuacct: only for CpuUsage
      continue;
    }
    const std::string parent = absl::StrCat(place->dir, "/", options.name);
    auto same =
        std::find_if(v1.begin(), v1.end(), [&](const Hierarchy& h) { return h.parent == parent; });
    if (same != v1.end()) {
      same->controllers.emplace_back(controller);
    } else {
      v1.push_back({.parent = parent,
                    .base = absl::StrCat(parent, "/", InstanceName()),
                    .controllers = {controller}});
    }
  }
  if (missing.empty()) return SetUpV1(options, std::move(v1));
  why_not.push_back(absl::StrCat("no cgroup v1 hierarchy holding the service is mounted for ",
                                 absl::StrJoin(missing, ", ")));
  return absl::FailedPreconditionError(absl::StrCat("cgroups: no hierarchy to limit projects in (",
                                                    options.mountinfo, ", ", options.self_cgroup,
                                                    "): ", absl::StrJoin(why_not, "; ")));
}

absl::StatusOr<std::shared_ptr<Cgroups>> Cgroups::SetUpV2(const CgroupOptions& options,
                                                          std::string own) {
  // A service restarted in the same cgroup finds itself in the leaf its predecessor made.
  if (Basename(own) == kServiceLeaf && Exists(absl::StrCat(Parent(own), "/", options.name)))
    own = Parent(own);
  std::string moved_to;
  QAI_ASSIGN_OR_RETURN(std::string enabled, ReadText(own + "/cgroup.subtree_control"));
  if (!HasAll(Words(enabled))) {
    // Only the root cgroup (which has no cgroup.type) may hold processes and give controllers
    // to its children at once.
    if (Exists(own + "/cgroup.type") && !ReadPids(own + "/cgroup.procs").empty()) {
      const std::string leaf = absl::StrCat(own, "/", kServiceLeaf);
      QAI_RETURN_IF_ERROR(MakeDir(leaf));
      // The processes are the service's own and its siblings' (a container's init); a
      // process forked meanwhile is in the next read.
      for (int round = 0; round < 100; ++round) {
        std::vector<pid_t> pids = ReadPids(own + "/cgroup.procs");
        if (pids.empty()) break;
        for (pid_t pid : pids) {
          const int error = WriteRaw(leaf + "/cgroup.procs", absl::StrCat(pid));
          if (error != 0 && error != ESRCH) {
            return ErrnoError(
                error, absl::StrCat("cannot move process ", pid, " from ", own, " into ", leaf));
          }
        }
      }
      if (!ReadPids(own + "/cgroup.procs").empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cgroups: processes keep appearing in ", own, " while they are moved into ", leaf));
      }
      moved_to = leaf;
    }
    QAI_RETURN_IF_ERROR(WriteText(own + "/cgroup.subtree_control", "+cpu +memory +pids"));
  }
  const std::string parent = absl::StrCat(own, "/", options.name);
  Hierarchy h{.parent = parent,
              .base = absl::StrCat(parent, "/", InstanceName()),
              .controllers = {"cpu", "memory", "pids"}};
  std::shared_ptr<Cgroups> cgroups(new Cgroups(options, CgroupVersion::kV2, {h}));
  QAI_RETURN_IF_ERROR(cgroups->MakeBase(h));
  cgroups->can_kill_ = Exists(h.base + "/cgroup.kill");
  cgroups->limits_swap_ = Exists(h.base + "/memory.swap.max");
  cgroups->moved_to_ = std::move(moved_to);
  cgroups->SweepGone();
  return cgroups;
}

absl::StatusOr<std::shared_ptr<Cgroups>> Cgroups::SetUpV1(const CgroupOptions& options,
                                                          std::vector<Hierarchy> hierarchies) {
  std::shared_ptr<Cgroups> cgroups(
      new Cgroups(options, CgroupVersion::kV1, std::move(hierarchies)));
  for (const Hierarchy& h : cgroups->hierarchies_) {
    QAI_RETURN_IF_ERROR(cgroups->MakeBase(h));
  }
  const std::string cpu = cgroups->Of("cpu")->base;
  if (options.limits.cpus > 0 && !Exists(cpu + "/cpu.cfs_quota_us")) {
    return absl::FailedPreconditionError(
        absl::StrCat("cgroups: ", cpu,
                     " has no cpu.cfs_quota_us (a kernel without CFS bandwidth control): set the "
                     "CPU limit to 0"));
  }
  cgroups->limits_swap_ = Exists(cgroups->Of("memory")->base + "/memory.memsw.limit_in_bytes");
  cgroups->SweepGone();
  return cgroups;
}

absl::Status Cgroups::MakeBase(const Hierarchy& h) const {
  for (const std::string& dir : {h.parent, h.base}) {
    QAI_RETURN_IF_ERROR(MakeDir(dir));
    if (version_ == CgroupVersion::kV2) {
      QAI_RETURN_IF_ERROR(WriteText(dir + "/cgroup.subtree_control", "+cpu +memory +pids"));
    }
  }
  return absl::OkStatus();
}

void Cgroups::SweepGone() const {
  std::set<std::string> gone;
  for (const Hierarchy& h : hierarchies_) {
    for (const std::string& name : Subdirs(h.parent)) {
      if (Gone(name)) gone.insert(name);
    }
  }
  const Hierarchy* pids = Of("pids");
  for (const std::string& name : gone) {
    // Its commands' processes first (in unsafe-none mode some may have outlived it), then its
    // directories, in every hierarchy.
    for (const std::string& project : Subdirs(absl::StrCat(pids->parent, "/", name))) {
      KillAll(absl::StrCat(pids->parent, "/", name, "/", project),
              absl::StrCat("/", name, "/", project, "\n"), can_kill_);
    }
    int left = 0;
    for (const Hierarchy& h : hierarchies_) {
      const std::string dir = absl::StrCat(h.parent, "/", name);
      for (const std::string& project : Subdirs(dir))
        left += RemoveDir(absl::StrCat(dir, "/", project)) != 0;
      left += RemoveDir(dir) != 0;
    }
    Log(left == 0 ? LogLevel::kInfo : LogLevel::kWarn,
        "sandbox: removed the cgroups a stopped qai-sandbox left",
        {{"instance", name},
         {"dir", absl::StrCat(pids->parent, "/", name)},
         {"not_removed", left}});
  }
}

const Cgroups::Hierarchy* Cgroups::Of(const std::string& controller) const {
  for (const Hierarchy& h : hierarchies_) {
    if (std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end())
      return &h;
  }
  return nullptr;
}

std::string Cgroups::Dir(const std::string& project_id, const std::string& controller) const {
  const Hierarchy* h = Of(controller);
  return h == nullptr ? "" : absl::StrCat(h->base, "/", absl::AsciiStrToLower(project_id));
}

absl::StatusOr<std::vector<std::string>> Cgroups::Prepare(const std::string& project_id) {
  if (!common::IsUuid(project_id))
    return absl::InvalidArgumentError("cgroups: a project id must be a UUID");
  const std::string id = absl::AsciiStrToLower(project_id);
  bool created = false;
  std::vector<std::string> procs;
  for (const Hierarchy& h : hierarchies_) {
    const std::string dir = absl::StrCat(h.base, "/", id);
    int error = ::mkdir(dir.c_str(), 0755) == 0 ? 0 : errno;
    if (error == ENOENT) {  // another instance sharing the projects' directory removed it
      QAI_RETURN_IF_ERROR(MakeBase(h));
      error = ::mkdir(dir.c_str(), 0755) == 0 ? 0 : errno;
    }
    if (error != 0 && error != EEXIST)
      return ErrnoError(error, absl::StrCat("cannot create ", dir));
    created = created || error == 0;
    procs.push_back(dir + "/cgroup.procs");
  }
  {
    absl::MutexLock lock(&mu_);
    if (!created && prepared_.contains(id)) return procs;
  }
  QAI_RETURN_IF_ERROR(WriteLimits(id));
  absl::MutexLock lock(&mu_);
  prepared_.insert(id);
  return procs;
}

absl::Status Cgroups::WriteLimits(const std::string& id) const {
  const ProjectLimits& l = options_.limits;
  const std::string quota = l.cpus > 0 ? absl::StrCat(std::llround(l.cpus * kCpuPeriodUs)) : "";
  std::vector<std::pair<std::string, std::string>> writes;  // file, value; in order
  if (version_ == CgroupVersion::kV2) {
    const std::string dir = Dir(id, "memory");
    writes = {{"memory.max", absl::StrCat(l.memory_bytes)},
              {"pids.max", absl::StrCat(l.pids)},
              {"cpu.weight", absl::StrCat(l.cpu_weight)},
              {"cpu.max", absl::StrCat(quota.empty() ? "max" : quota, " ", kCpuPeriodUs)}};
    if (limits_swap_) writes.emplace_back("memory.swap.max", "0");
    for (auto& [file, value] : writes) file = absl::StrCat(dir, "/", file);
  } else {
    const std::string memory = Dir(id, "memory"), pids = Dir(id, "pids"), cpu = Dir(id, "cpu");
    // memsw (memory + swap) may never be below the memory limit: lifted first, then set to it.
    if (limits_swap_) writes.emplace_back(memory + "/memory.memsw.limit_in_bytes", "-1");
    writes.emplace_back(memory + "/memory.limit_in_bytes", absl::StrCat(l.memory_bytes));
    if (limits_swap_)
      writes.emplace_back(memory + "/memory.memsw.limit_in_bytes", absl::StrCat(l.memory_bytes));
    writes.emplace_back(pids + "/pids.max", absl::StrCat(l.pids));
    writes.emplace_back(cpu + "/cpu.shares",
                        absl::StrCat(std::max<uint64_t>(2, uint64_t{l.cpu_weight} * 1024 / 100)));
    if (Exists(cpu + "/cpu.cfs_quota_us")) {
      writes.emplace_back(cpu + "/cpu.cfs_period_us", absl::StrCat(kCpuPeriodUs));
      writes.emplace_back(cpu + "/cpu.cfs_quota_us", quota.empty() ? "-1" : quota);
    }
  }
  for (const auto& [file, value] : writes) {
    QAI_RETURN_IF_ERROR(WriteText(file, value));
  }
  return absl::OkStatus();
}

uint64_t Cgroups::OomKills(const std::string& project_id) const {
  const std::string dir = Dir(project_id, "memory");
  return version_ == CgroupVersion::kV2 ? Field(dir + "/memory.events", "oom_kill")
                                        : Field(dir + "/memory.oom_control", "oom_kill");
}

absl::StatusOr<absl::Duration> Cgroups::CpuUsage(const std::string& project_id) const {
  if (version_ == CgroupVersion::kV2) {
    const std::string stat = Dir(project_id, "cpu") + "/cpu.stat";
    if (!Exists(stat)) return absl::NotFoundError(absl::StrCat("cgroups: no ", stat));
    return absl::Microseconds(Field(stat, "usage_usec"));
  }
  const std::string dir = Dir(project_id, "cpuacct");
  if (dir.empty()) return absl::UnimplementedError("cgroups: no cpuacct hierarchy is mounted");
  QAI_ASSIGN_OR_RETURN(std::string usage, ReadText(dir + "/cpuacct.usage"));
  uint64_t ns = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(usage), &ns)) {
    return absl::InternalError(
        absl::StrCat("cgroups: ", dir, "/cpuacct.usage holds \"", usage, "\""));
  }
  return absl::Nanoseconds(ns);
}

std::vector<pid_t> Cgroups::Processes(const std::string& project_id) const {
  return ReadPids(Dir(project_id, "pids") + "/cgroup.procs");
}

bool Cgroups::Kill(const std::string& project_id) const {
  // How the kernel names the cgroup in /proc/<pid>/cgroup, whatever lies above it.
  const std::string id = absl::AsciiStrToLower(project_id);
  return KillAll(Dir(id, "pids"), absl::StrCat("/", Basename(Of("pids")->base), "/", id, "\n"),
                 can_kill_);
}

absl::Status Cgroups::Remove(const std::string& project_id) {
  if (!common::IsUuid(project_id))
    return absl::InvalidArgumentError("cgroups: a project id must be a UUID");
  const std::string id = absl::AsciiStrToLower(project_id);
  Kill(id);
  for (const Hierarchy& h : hierarchies_) {
    const std::string dir = absl::StrCat(h.base, "/", id);
    if (int error = RemoveDir(dir); error != 0)
      return ErrnoError(error, absl::StrCat("cannot remove ", dir));
  }
  absl::MutexLock lock(&mu_);
  prepared_.erase(id);
  return absl::OkStatus();
}

void Cgroups::RemoveAll() {
  std::set<std::string> projects;
  {
    absl::MutexLock lock(&mu_);
    projects = prepared_;
  }
  for (const std::string& id : projects) {
    if (absl::Status s = Remove(id); !s.ok())
      Log(LogLevel::kWarn, "sandbox: a project's cgroup stays", {{"error", s.ToString()}});
  }
  // The projects' directory stays while another instance uses it (a second replica on one host).
  for (const Hierarchy& h : hierarchies_) {
    ::rmdir(h.base.c_str());
    ::rmdir(h.parent.c_str());
  }
}

nlohmann::json Cgroups::Describe() const {
  const ProjectLimits& l = options_.limits;
  nlohmann::json dirs = nlohmann::json::array();
  for (const Hierarchy& h : hierarchies_) dirs.push_back(h.base);
  nlohmann::json described = {
      {"version", CgroupVersionName(version_)},
      {"dirs", dirs},
      {"project_memory_mb", l.memory_bytes >> 20},
      {"swap", limits_swap_ ? "none" : "not limited (the kernel does not account for it)"},
      {"project_pids", l.pids},
      {"cpu_weight", l.cpu_weight},
      {"cpus", l.cpus > 0 ? nlohmann::json(l.cpus) : nlohmann::json("no limit")},
      {"kill",
       version_ == CgroupVersion::kV2 && can_kill_ ? "cgroup.kill" : "SIGKILL to each process"},
  };
  if (!moved_to_.empty()) described["service_moved_to"] = moved_to_;
  return described;
}

}  // namespace qai::sandbox
