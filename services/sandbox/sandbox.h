#pragma once
// Sandbox: how an agent's command is confined. This is the policy: which program line runs a
// command, as whom, with which limits, and how a death by one of those limits reads to the
// model. Running it is process.h's; the workspace it runs in is workspace.h's.
//
// Always: a clean environment (PATH, HOME = the workspace, LANG, TERM; never the service's
// secrets), and per-process limits on CPU time, address space, processes and file size, with
// no core files. With cgroups (cgroups.h), the command first joins its project's cgroup, whose
// limits hold for all of the project's processes together. When the service runs as root,
// each project's commands also run as a user of their own (a uid allocated to the project
// from a range, see SandboxStore::UserFor; group the same number, no supplementary groups,
// no_new_privs, killed if the service dies), so the process limit, which the kernel does not
// enforce for root, holds, and one project cannot touch another's files.
// In bwrap mode the command also runs inside bubblewrap: new user, PID, network, IPC and UTS
// namespaces (no network but its own loopback, no other process visible), the system's /usr
// and libraries and a few /etc files read-only, a private /proc, /dev, /tmp and /dev/shm,
// the workspace the one writable directory of the host, a seccomp filter of its own
// (seccomp_filter.h), and the whole sandbox killed when the command ends or its parent dies.
// docs/architecture.md ("The sandbox") lists what each mode blocks.
//
//   auto sandbox = Sandbox::Create({.mode = SandboxMode::kBwrap});
//   if (!sandbox.ok()) ...;  // bwrap, prlimit or setpriv missing, or bad limits
//   ProcessSpec spec = (*sandbox)->Wrap(dir, SandboxUser{.uid = uid, .gid = uid}, "ls -la");
//   // with cgroups: Wrap(dir, user, "ls -la", *(*sandbox)->cgroups()->Prepare(project_id))

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "services/sandbox/cgroups.h"
#include "services/sandbox/process.h"

namespace qai::sandbox {

enum class SandboxMode {
  kBwrap,       // namespaces, through bubblewrap
  kUnsafeNone,  // development only: no namespaces; limits, clean environment and (as root) a user
                // of its own
};

// SandboxModeName: "bwrap" or "unsafe-none".
const char* SandboxModeName(SandboxMode mode);

// SandboxLimits: what one command may use. Each limit holds per process (the processes limit
// per user: with a user per project, per project).
struct SandboxLimits {
  absl::Duration cpu_time = absl::Seconds(60);  // SIGXCPU, then SIGKILL a second later
  uint64_t memory_bytes = uint64_t{2} << 30;    // address space (RLIMIT_AS)
  uint64_t processes = 256;                     // RLIMIT_NPROC
  // The largest file a command may write (SIGXFSZ beyond); in bwrap mode also the size of
  // each of its private /tmp and /dev/shm.
  uint64_t file_bytes = uint64_t{128} << 20;
};

struct SandboxOptions {
  SandboxMode mode = SandboxMode::kUnsafeNone;
  SandboxLimits limits;
  // When the service runs as root, the commands of a project run as a uid (and gid) of their
  // own, allocated from first_uid .. first_uid + uid_count - 2: far above the ids of real users
  // and of /etc/subuid ranges by default. The last uid of the range, ProbeUid(), is no
  // project's: the start-up probe runs as it, so a project's processes can never make a
  // replica's start fail (its processes limit is per uid).
  uint32_t first_uid = 1000000000;
  uint32_t uid_count = 1000000000;
  // The bubblewrap program; empty: bwrap found in /usr/bin, /bin, /usr/sbin, /sbin or
  // /usr/local/bin.
  std::string bwrap;
  // The projects' cgroups (set up by Cgroups::SetUp); null: none, the rlimits alone hold.
  std::shared_ptr<Cgroups> cgroups;
};

// SandboxUser: whom a command runs as.
struct SandboxUser {
  uid_t uid = 0;
  gid_t gid = 0;
};

class Sandbox {
 public:
  // Create: the policy for options; INVALID_ARGUMENT for limits or a uid range out of bounds,
  // FAILED_PRECONDITION when a program it needs is missing (bwrap from bubblewrap; prlimit,
  // and as root setpriv, from util-linux). It does not try them: see ChooseSandbox.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const Sandbox>> Create(
      const SandboxOptions& options);
  // Default: mode unsafe-none with the default limits, for commands run without a sandbox of
  // their own choosing (tests, tools); the service always chooses one at start-up.
  static std::shared_ptr<const Sandbox> Default();

  SandboxMode mode() const { return options_.mode; }
  const SandboxLimits& limits() const { return options_.limits; }
  const SandboxOptions& options() const { return options_; }
  // switches_users: the service is root, so each project's commands run as a user of its own;
  // otherwise they run as the service's own user.
  bool switches_users() const { return switch_users_; }
  // ProbeUid: the uid kept for the start-up probe (see SandboxOptions).
  uint32_t ProbeUid() const { return options_.first_uid + options_.uid_count - 1; }
  // cgroups: the projects' cgroups, or null.
  Cgroups* cgroups() const { return options_.cgroups.get(); }
  // Wrap: what runs `bash -c command` in dir as user under this policy (the timeout and output
  // limits of the ProcessSpec are the caller's). With `join` (the cgroup.procs files of the
  // project's cgroup, from Cgroups::Prepare), the first step, still the service's user, writes
  // its own pid into each before anything else runs; should that fail, the command does not
  // run (exit code 126).
  ProcessSpec Wrap(const std::string& dir, const std::optional<SandboxUser>& user,
                   const std::string& command, const std::vector<std::string>& join = {}) const;
  // Explain: a line for the model on why a command that ran as spec ended as it did when the
  // sandbox had a hand in it: killed for its output, the kernel killing `oom_kills` of the
  // project's processes for its memory limit while it ran, or a signal (exit code 128 +
  // signal), naming the limit it may have hit. "" otherwise, and for a timeout or a cancel,
  // which the result itself reports.
  std::string Explain(const ProcessSpec& spec, const CommandResult& result,
                      uint64_t oom_kills = 0) const;
  // Describe: mode, limits and users, for the start-up log.
  nlohmann::json Describe() const;

 private:
  Sandbox(SandboxOptions options, std::string prlimit, std::string setpriv, std::string bwrap);

  SandboxOptions options_;
  bool switch_users_;
  std::string prlimit_, setpriv_;
  // bwrap and the arguments every command shares (system directories, private mounts).
  std::vector<std::string> bwrap_prefix_;
  // bwrap mode: the compiled seccomp filter every command runs under (seccomp_filter.h).
  std::string seccomp_program_;
};

}  // namespace qai::sandbox
