#pragma once
// Cgroups: limits the kernel enforces on all of a project's processes together, and the means
// to end every one of them.
//
// The limits of sandbox.h are rlimits: they hold per process, so ten processes of 2 GiB each
// are 20 GiB, and nothing in them finds a process that left its process group. Here every
// project has a control group of its own, below the service's own cgroup, with a memory limit
// for all its processes together (swap off where the kernel accounts for it), a process count
// limit, and a CPU weight (its share against other projects when the CPUs are busy) and
// ceiling (cores it may use at most). Every command of the project joins that cgroup before it
// can fork (the first step of Sandbox::Wrap's program line), the project's processes cannot
// leave it (they are not root and the cgroup's files are root's), and once a command ends
// whatever it left there is killed.
//
// Both kernel interfaces work; SetUp finds which one the machine has:
// - cgroup v2, one unified hierarchy (current Kubernetes nodes, systemd hosts): the projects
//   are <own>/qai-sandbox/<instance>/<project>, <own> being the service's own cgroup, which
//   must have cpu, memory and pids available (in its cgroup.controllers: delegated to it). v2
//   lets a cgroup either hold processes or give controllers to its children, so when <own>
//   holds processes (the service, a container's init) they are moved into the leaf
//   <own>/service first.
// - cgroup v1, a hierarchy per controller (this project's CI machines, older hosts): the
//   projects are <mount>/<own>/qai-sandbox/<instance>/<project> in each of the cpu, memory and
//   pids hierarchies, and cpuacct where it is mounted apart from cpu (for CpuUsage).
// <instance> is "<pid>-<start time>" of the service: instances sharing <own> (several on one
// host, tests) never touch each other's projects, and at SetUp an instance removes what one
// that is gone left (after a crash, its commands' processes too), which nobody else would. A
// graceful stop removes its own (RemoveAll).
// Where neither can be written (the service is not root, /sys/fs/cgroup is mounted read-only,
// the controllers are not delegated) SetUp says why; sandbox_setup.h decides what then.
//
//   auto cgroups = Cgroups::SetUp({.limits = {.memory_bytes = uint64_t{2} << 30}});
//   if (!cgroups.ok()) ...;                                  // no writable hierarchy here
//   auto procs = (*cgroups)->Prepare(project_id);            // the cgroup.procs files to join
//   ... a command writes its pid into each, then runs ...
//   (*cgroups)->Kill(project_id);                            // whatever it left behind

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace qai::sandbox {

enum class CgroupVersion { kV1, kV2 };

// CgroupVersionName: "v1" or "v2".
const char* CgroupVersionName(CgroupVersion version);

// ProjectLimits: what all of one project's processes may use together.
struct ProjectLimits {
  uint64_t memory_bytes = uint64_t{2} << 30;  // memory (and no swap, where it is accounted)
  uint64_t pids = 256;                        // processes and threads at once
  // Its share of busy CPUs against the other projects, on cgroup v2's scale 1..10000 (100 each
  // by default: equal shares); v1's cpu.shares get weight × 1024 / 100.
  uint32_t cpu_weight = 100;
  // At most this many CPUs' worth of time (cpu.max, or cfs_quota_us), 0.01 or more; 0: no
  // ceiling.
  double cpus = 1.0;
};

struct CgroupOptions {
  ProjectLimits limits;
  // The directory below the service's own cgroup that holds the instances' (tests use one of
  // their own).
  std::string name = "qai-sandbox";
  // Where the kernel tells the mounts and the service's place in them; tests point these at
  // files describing other machines.
  std::string mountinfo = "/proc/self/mountinfo";
  std::string self_cgroup = "/proc/self/cgroup";
};

class Cgroups {
 public:
  // SetUp: finds the hierarchy (v2 where the service's cgroup has cpu, memory and pids, else
  // v1 where all three are mounted), creates the instance's directory in it, and on v2 enables
  // the controllers for it (moving the service into <own>/service when that is needed); then
  // removes what gone instances left.
  // INVALID_ARGUMENT for limits out of bounds; FAILED_PRECONDITION, saying why, when no
  // hierarchy is usable or writable.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<Cgroups>> SetUp(const CgroupOptions& options);

  CgroupVersion version() const { return version_; }
  const ProjectLimits& limits() const { return options_.limits; }

  // Prepare: the project's cgroup (project_id a UUID), created if missing and given the limits
  // the first time this service uses it; returns the cgroup.procs files a command writes its
  // own pid into to join it (one, or one per v1 hierarchy).
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> Prepare(const std::string& project_id);
  // OomKills: how many of the project's processes the kernel has killed so far for its memory
  // limit (0 when it has no cgroup).
  uint64_t OomKills(const std::string& project_id) const;
  // Kill: SIGKILL to everything in the project's cgroup, until it is empty; false when
  // something was still there after a few seconds (logged). Commands of one project share
  // its cgroup: Workspaces runs them one at a time.
  bool Kill(const std::string& project_id) const;
  // Remove: kills what is in the project's cgroup and removes it (a missing one is fine).
  [[nodiscard]] absl::Status Remove(const std::string& project_id);
  // RemoveAll: Remove for every project this service prepared, then its instance's directory,
  // and <name> when no other instance uses it (at shutdown: the service leaves nothing behind).
  void RemoveAll();

  // Dir: the project's cgroup directory in the hierarchy of `controller` ("memory", "pids",
  // "cpu", "cpuacct"); on v2 the one directory; "" when no hierarchy carries it.
  std::string Dir(const std::string& project_id, const std::string& controller) const;
  // Describe: version, directories and limits, for the start-up log.
  nlohmann::json Describe() const;

  // For tests only:
  // CpuUsage: the CPU time the project's processes have used so far.
  [[nodiscard]] absl::StatusOr<absl::Duration> CpuUsage(const std::string& project_id) const;
  // Processes: the pids in the project's cgroup now.
  std::vector<pid_t> Processes(const std::string& project_id) const;

 private:
  // Hierarchy: one place the projects' cgroups are made in (v2: the only one).
  struct Hierarchy {
    std::string parent;                    // <own>/<name>, shared by the instances in <own>
    std::string base;                      // <parent>/<instance>: this service's projects
    std::vector<std::string> controllers;  // what it is used for here
  };

  Cgroups(CgroupOptions options, CgroupVersion version, std::vector<Hierarchy> hierarchies);
  static absl::StatusOr<std::shared_ptr<Cgroups>> SetUpV2(const CgroupOptions& options,
                                                          std::string own);
  static absl::StatusOr<std::shared_ptr<Cgroups>> SetUpV1(const CgroupOptions& options,
                                                          std::vector<Hierarchy> hierarchies);
  // MakeBase: creates a hierarchy's projects' directory (again, should another instance sharing
  // it have removed it), on v2 with the controllers enabled for its children.
  absl::Status MakeBase(const Hierarchy& h) const;
  // SweepGone: kills what runs in, and removes, the projects' cgroups of instances whose
  // process is gone (killed, crashed), which nobody else would.
  void SweepGone() const;
  absl::Status WriteLimits(const std::string& id) const;
  // Of: the hierarchy carrying controller, or null.
  const Hierarchy* Of(const std::string& controller) const;

  const CgroupOptions options_;
  const CgroupVersion version_;
  const std::vector<Hierarchy> hierarchies_;
  bool can_kill_ = false;     // v2's cgroup.kill is there (Linux 5.14)
  bool limits_swap_ = false;  // memory.swap.max or memory.memsw.* is there
  std::string moved_to_;      // v2: the leaf the service's processes were moved into, if any
  mutable absl::Mutex mu_;
  std::set<std::string> prepared_ ABSL_GUARDED_BY(mu_);  // projects whose limits this service wrote
};

}  // namespace qai::sandbox
