#include "services/sandbox/sandbox.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "services/sandbox/seccomp_filter.h"

namespace qai::sandbox {
namespace {

// Where the programs the sandbox is made of are looked for: the service's own PATH is not
// trusted to name them.
constexpr const char* kProgramDirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"};
constexpr char kShell[] = "/bin/bash";
// Runs the step that joins the project's cgroup: the smallest shell there is (dash on Debian).
constexpr char kJoinShell[] = "/bin/sh";
// The host's system directories, seen read-only in bwrap mode (a symlink, as /bin is to
// usr/bin on a merged-/usr system, is copied as a symlink).
constexpr const char* kSystemDirs[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                       "/lib32", "/lib64", "/libx32"};
// What programs read from /etc; nothing else of it (no shadow, no keys, no service
// configuration) is in the sandbox. /etc/alternatives holds Debian's awk, editor, ... links.
constexpr const char* kEtcFiles[] = {
    "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf",    "/etc/ld.so.conf.d",
    "/etc/passwd",       "/etc/group",       "/etc/nsswitch.conf", "/etc/hosts",
    "/etc/localtime",    "/etc/mime.types",  "/etc/ssl/certs",     "/etc/ssl/openssl.cnf",
};

std::string FindProgram(const std::string& name) {
  for (const char* dir : kProgramDirs) {
    std::string path = absl::StrCat(dir, "/", name);
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

std::string HumanBytes(uint64_t bytes) {
  for (auto [shift, unit] : {std::pair{30, "GiB"}, {20, "MiB"}, {10, "KiB"}}) {
    if (bytes >= (uint64_t{1} << shift) && bytes % (uint64_t{1} << shift) == 0) {
      return absl::StrCat(bytes >> shift, " ", unit);
    }
  }
  return absl::StrCat(bytes, " bytes");
}

int64_t CpuSeconds(absl::Duration cpu_time) {
  return static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(cpu_time)));
}

// JoinScript: writes the shell's own pid into each of the n files named by its first n
// arguments, then becomes the rest. The files are the service's (cgroups.h): nothing of the
// project's is in the script or its arguments but the program line that follows them.
std::string JoinScript(size_t n) {
  std::string script = "{ ";
  for (size_t i = 1; i <= n; ++i)
    absl::StrAppend(&script, i > 1 ? " && " : "", "echo $$ > \"${", i, "}\"");
  absl::StrAppend(&script,
                  "; } || { echo \"[sandbox] the command could not join its project's cgroup\" "
                  ">&2; exit 126; }; ",
                  "shift ", n, " && exec \"$@\"");
  return script;
}

}  // namespace

const char* SandboxModeName(SandboxMode mode) {
  return mode == SandboxMode::kBwrap ? "bwrap" : "unsafe-none";
}

absl::StatusOr<std::shared_ptr<const Sandbox>> Sandbox::Create(const SandboxOptions& options) {
  const SandboxLimits& l = options.limits;
  if (l.cpu_time < absl::Seconds(1))
    return absl::InvalidArgumentError("sandbox: the CPU time limit is under 1s");
  if (l.memory_bytes < (uint64_t{64} << 20))
    return absl::InvalidArgumentError("sandbox: the memory limit is under 64 MiB");
  if (l.processes < 4) return absl::InvalidArgumentError("sandbox: the processes limit is under 4");
  if (l.file_bytes < (uint64_t{1} << 20))
    return absl::InvalidArgumentError("sandbox: the file size limit is under 1 MiB");
  if (options.first_uid == 0 || options.uid_count < 2 ||
      uint64_t{options.first_uid} + options.uid_count - 1 > uint64_t{0xFFFFFFFE}) {
    return absl::InvalidArgumentError(
        "sandbox: the uid range must be within 1..4294967294 and hold at least 2 uids (the last is "
        "the start-up probe's)");
  }
  auto missing = [](const std::string& program, const std::string& package) {
    return absl::FailedPreconditionError(
        absl::StrCat("sandbox: ", program,
                     " not found in /usr/bin, /bin, /usr/sbin, /sbin or /usr/local/bin (install ",
                     package, ")"));
  };
  std::string prlimit = FindProgram("prlimit");
  if (prlimit.empty()) return missing("prlimit", "util-linux");
  std::string setpriv;
  if (::geteuid() == 0) {
    setpriv = FindProgram("setpriv");
    if (setpriv.empty()) return missing("setpriv", "util-linux");
  }
  std::string bwrap;
  std::string seccomp;
  if (options.mode == SandboxMode::kBwrap) {
    bwrap = options.bwrap.empty() ? FindProgram("bwrap") : options.bwrap;
    if (bwrap.empty()) return missing("bwrap", "bubblewrap");
    if (::access(bwrap.c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("sandbox: ", bwrap, ": ", std::strerror(errno)));
    }
    QAI_ASSIGN_OR_RETURN(std::string program, CommandSeccompProgram());
    seccomp = std::move(program);
  }
  std::shared_ptr<Sandbox> sandbox(
      new Sandbox(options, std::move(prlimit), std::move(setpriv), std::move(bwrap)));
  sandbox->seccomp_program_ = std::move(seccomp);
  return std::shared_ptr<const Sandbox>(std::move(sandbox));
}

std::shared_ptr<const Sandbox> Sandbox::Default() {
  static const std::shared_ptr<const Sandbox> sandbox = [] {
    absl::StatusOr<std::shared_ptr<const Sandbox>> made = Create({});
    if (made.ok()) return *std::move(made);
    // util-linux missing: commands fail to start, saying which program is missing.
    return std::shared_ptr<const Sandbox>(
        new Sandbox({}, "/usr/bin/prlimit", "/usr/bin/setpriv", ""));
  }();
  return sandbox;
}

Sandbox::Sandbox(SandboxOptions options, std::string prlimit, std::string setpriv,
                 std::string bwrap)
    : options_(std::move(options)),
      switch_users_(::geteuid() == 0),
      prlimit_(std::move(prlimit)),
      setpriv_(std::move(setpriv)) {
  if (bwrap.empty()) return;
  const std::string private_size = absl::StrCat(options_.limits.file_bytes);
  bwrap_prefix_ = {std::move(bwrap), "--unshare-all", "--unshare-user", "--disable-userns",
                   "--die-with-parent",
                   // No controlling terminal to push input into (TIOCSTI).
                   "--new-session", "--hostname", "qai-sandbox"};
  for (const char* dir : kSystemDirs) {
    struct stat st;
    if (::lstat(dir, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      const ssize_t n = ::readlink(dir, target, sizeof target - 1);
      if (n <= 0) continue;
      bwrap_prefix_.insert(bwrap_prefix_.end(),
                           {"--symlink", std::string(target, static_cast<size_t>(n)), dir});
    } else if (S_ISDIR(st.st_mode)) {
      bwrap_prefix_.insert(bwrap_prefix_.end(), {"--ro-bind", dir, dir});
    }
  }
  for (const char* path : kEtcFiles)
    bwrap_prefix_.insert(bwrap_prefix_.end(), {"--ro-bind-try", path, path});
  bwrap_prefix_.insert(bwrap_prefix_.end(), {"--proc", "/proc", "--dev", "/dev",             //
                                             "--size", private_size, "--tmpfs", "/dev/shm",  //
                                             "--size", private_size, "--tmpfs", "/tmp"});
}

ProcessSpec Sandbox::Wrap(const std::string& dir, const std::optional<SandboxUser>& user,
                          const std::string& command, const std::vector<std::string>& join) const {
  ProcessSpec spec;
  spec.dir = dir;
  spec.env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      absl::StrCat("HOME=", dir),
      "LANG=C.UTF-8",
      "TERM=dumb",
  };
  const SandboxLimits& l = options_.limits;
  const int64_t cpu = CpuSeconds(l.cpu_time);
  // The cgroup first, so that no process of the command was ever outside it: posix_spawn has
  // no step between fork and exec to write the pid from (clone3's CLONE_INTO_CGROUP would, on
  // v2 only, with a spawn of our own); a tiny shell costs about a millisecond.
  if (!join.empty()) {
    spec.argv = {kJoinShell, "-c", JoinScript(join.size()), "sh"};
    spec.argv.insert(spec.argv.end(), join.begin(), join.end());
  }
  // Set while still root, so the hard limits cannot be raised again by the command.
  spec.argv.insert(spec.argv.end(),
                   {prlimit_, absl::StrCat("--cpu=", cpu, ":", cpu + 1),
                    absl::StrCat("--as=", l.memory_bytes), absl::StrCat("--nproc=", l.processes),
                    absl::StrCat("--fsize=", l.file_bytes), "--core=0", "--"});
  if (user && switch_users_) {
    spec.argv.insert(spec.argv.end(), {setpriv_, absl::StrCat("--reuid=", user->uid),
                                       absl::StrCat("--regid=", user->gid), "--clear-groups",
                                       "--no-new-privs", "--pdeathsig=KILL", "--"});
  }
  if (!bwrap_prefix_.empty()) {
    spec.argv.insert(spec.argv.end(), bwrap_prefix_.begin(), bwrap_prefix_.end());
    // The workspace at its own path, so paths the model sees are the same in every mode; the
    // rest of the sandbox's root is made read-only last.
    spec.argv.insert(spec.argv.end(), {"--bind", dir, dir, "--chdir", dir, "--remount-ro", "/dev",
                                       "--remount-ro", "/"});
    // The command's own seccomp filter (seccomp_filter.h), read from descriptor 3.
    if (!seccomp_program_.empty()) {
      spec.argv.insert(spec.argv.end(), {"--seccomp", "3"});
      spec.fd3_data = seccomp_program_;
    }
    spec.argv.push_back("--");
  }
  spec.argv.insert(spec.argv.end(), {kShell, "-c", command});
  return spec;
}

std::string Sandbox::Explain(const ProcessSpec& spec, const CommandResult& result,
                             uint64_t oom_kills) const {
  const int exit_code = result.exit_code;
  if (result.output_overflow) {
    return absl::StrCat("[sandbox] exit code ", exit_code, ": killed for printing more than ",
                        HumanBytes(spec.max_output_read), "; only the first ",
                        HumanBytes(spec.max_output), " are shown\n");
  }
  // Said even after a timeout: the result does not tell it, and the model may retry the same.
  if (oom_kills > 0 && !result.cancelled) {
    const std::string limit = options_.cgroups != nullptr
                                  ? HumanBytes(options_.cgroups->limits().memory_bytes)
                                  : "the limit";
    const std::string who = exit_code == 128 + SIGKILL ? "killed"
                            : oom_kills == 1
                                ? "one of its processes was killed"
                                : absl::StrCat(oom_kills, " of its processes were killed");
    return absl::StrCat("[sandbox] exit code ", exit_code, ": ", who,
                        ": the project's commands used more than ", limit, " of memory together\n");
  }
  if (result.timed_out || result.cancelled) return "";
  if (exit_code <= 128 || exit_code > 128 + 64) return "";
  const int signal = exit_code - 128;
  const char* abbrev = ::sigabbrev_np(signal);
  const std::string name =
      abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", signal);
  const SandboxLimits& l = options_.limits;
  std::string why;
  switch (signal) {
    case SIGXCPU:
      why = absl::StrCat(": it used up its CPU time limit of ", CpuSeconds(l.cpu_time), " s");
      break;
    case SIGXFSZ:
      why = absl::StrCat(": it tried to write a file larger than the limit of ",
                         HumanBytes(l.file_bytes));
      break;
    case SIGKILL:
      why = absl::StrCat(" (the CPU time limit of ", CpuSeconds(l.cpu_time),
                         " s, running out of memory, or a kill -9 from the command itself)");
      break;
    case SIGSEGV:
    case SIGBUS:
    case SIGABRT:
      why = absl::StrCat(" (it may have run out of memory: the limit is ",
                         HumanBytes(l.memory_bytes), " of address space per process)");
      break;
    default:
      break;
  }
  return absl::StrCat("[sandbox] exit code ", exit_code, ": killed by ", name, why, "\n");
}

nlohmann::json Sandbox::Describe() const {
  const SandboxLimits& l = options_.limits;
  nlohmann::json users = "the service's own (it is not root)";
  if (switch_users_) {
    users =
        absl::StrCat(options_.first_uid, "-", uint64_t{options_.first_uid} + options_.uid_count - 1,
                     " (one allocated per project)");
  }
  return {{"mode", std::string(SandboxModeName(options_.mode))},
          {"cpu_time_s", CpuSeconds(l.cpu_time)},
          {"memory", HumanBytes(l.memory_bytes)},
          {"processes", l.processes},
          {"file_size", HumanBytes(l.file_bytes)},
          {"users", users},
          {"cgroups",
           options_.cgroups != nullptr ? options_.cgroups->Describe() : nlohmann::json("off")}};
}

}  // namespace qai::sandbox
