#include "services/sandbox/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "services/sandbox/fd.h"
#include "services/sandbox/proc_stat.h"

namespace qai::sandbox {
using common::ToValidUtf8;
using common::TruncateUtf8;
namespace {

// How often the output pipe, the child, `cancelled` and the clock are looked at.
constexpr auto kPollStep = std::chrono::milliseconds(50);
// Between SIGTERM and SIGKILL for the process group.
constexpr auto kTermGrace = std::chrono::seconds(1);
// How long output is still read after the program itself exited while something it left in
// the background keeps the pipe open.
constexpr auto kDrainAfterExit = std::chrono::milliseconds(200);
// After SIGKILL, how long to wait for the pipe to close (a process that left the group with
// setsid can hold it open; it is not waited for).
constexpr auto kKillWait = std::chrono::seconds(1);

// ExitCode: the shell convention, 128 + signal for a killed process.
int ExitCode(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return info.si_status;
  return 128 + info.si_status;
}

// Spawn: argv[0] with argv in dir, in a process group of its own, reading devnull and writing
// out (stdout and stderr), with no other descriptor (some library may have opened one without
// O_CLOEXEC: a socket, a database connection), and every signal at its default and unblocked
// (ignored signals and the blocked mask survive exec; commands expect the defaults: a `yes`
// piped into `head` must die of SIGPIPE). posix_spawn rather than fork: the child borrows the
// service's memory until it execs instead of copying its page tables, which in a replica
// holding thousands of watchers took milliseconds per command (8 ms at 220 MB). glibc returns
// only once the child has exec'd, and reports a failure to enter dir or to exec as the result.
// Returns 0 or an errno value.
// fd3, when not -1, becomes the child's descriptor 3.
int Spawn(int devnull, int out, int fd3, const char* dir, char* const argv[], char* const envp[],
          pid_t* pid) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  if (int err = ::posix_spawn_file_actions_init(&actions); err != 0) return err;
  if (int err = ::posix_spawnattr_init(&attr); err != 0) {
    ::posix_spawn_file_actions_destroy(&actions);
    return err;
  }
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  int err = 0;
  for (int step :
       {::posix_spawn_file_actions_adddup2(&actions, devnull, STDIN_FILENO),
        ::posix_spawn_file_actions_adddup2(&actions, out, STDOUT_FILENO),
        ::posix_spawn_file_actions_adddup2(&actions, out, STDERR_FILENO),
        fd3 >= 0 ? ::posix_spawn_file_actions_adddup2(&actions, fd3, 3) : 0,
        ::posix_spawn_file_actions_addclosefrom_np(&actions, fd3 >= 0 ? 4 : 3),
        ::posix_spawn_file_actions_addchdir_np(&actions, dir),
        ::posix_spawnattr_setflags(
            &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK),
        ::posix_spawnattr_setpgroup(&attr, 0), ::posix_spawnattr_setsigdefault(&attr, &all),
        ::posix_spawnattr_setsigmask(&attr, &none)}) {
    if (err == 0) err = step;
  }
  if (err == 0) err = ::posix_spawn(pid, argv[0], &actions, &attr, argv, envp);
  ::posix_spawnattr_destroy(&attr);
  ::posix_spawn_file_actions_destroy(&actions);
  return err;
}

// The children RunProcess waits for itself, which OrphanReaper must leave alone. A child is
// added under the lock in the same step as it is spawned, so the reaper never sees it
// unlisted, even when it exits at once.
std::mutex& ChildrenMu() {
  static std::mutex mu;
  return mu;
}
std::set<pid_t>& WaitedFor() {
  static std::set<pid_t>* const pids = new std::set<pid_t>;
  return *pids;
}

// ZombieChildren: this process's exited, unreaped children, as /proc shows them.
std::vector<pid_t> ZombieChildren() {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  for (pid_t pid : ProcPids()) {
    std::optional<ProcStat> st = ReadProcStat(pid);
    if (st && st->state == 'Z' && st->ppid == self) out.push_back(pid);
  }
  return out;
}

// CannotStart: the result of a command that did not start: exit code 127, and why as its
// output.
CommandResult CannotStart(absl::string_view why) {
  CommandResult result;
  result.output = absl::StrCat(why, "\n");
  result.exit_code = 127;
  return result;
}

// ExecArgs: the spec's argv and environment as exec takes them, null-terminated arrays of
// pointers into copies it owns (so it is neither copied nor moved).
struct ExecArgs {
  explicit ExecArgs(const ProcessSpec& spec) : args(spec.argv), env(spec.env) {
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  ExecArgs(const ExecArgs&) = delete;
  ExecArgs& operator=(const ExecArgs&) = delete;

  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
};

// ChildIo: the descriptors a child starts with (stdin /dev/null, stdout and stderr the pipe's
// write end, and descriptor 3 when the spec has data for it), and the pipe's read end.
struct ChildIo {
  Fd devnull, read_end, write_end, fd3;
};

// OpenChildIo: the ChildIo of a command with fd3_data, or why not (as the command's output).
absl::StatusOr<ChildIo> OpenChildIo(const std::string& fd3_data) {
  ChildIo io;
  io.devnull = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!io.devnull.valid())
    return absl::InternalError(absl::StrCat("cannot open /dev/null: ", std::strerror(errno)));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return absl::InternalError(absl::StrCat("cannot create a pipe: ", std::strerror(errno)));
  io.read_end = Fd(fds[0]);
  io.write_end = Fd(fds[1]);
  if (!fd3_data.empty()) {
    // Its own file per command: a shared one's read offset would be shared too.
    io.fd3 = Fd(::memfd_create("qai-fd3", MFD_CLOEXEC));
    if (!io.fd3.valid() || ::pwrite(io.fd3.get(), fd3_data.data(), fd3_data.size(), 0) !=
                               static_cast<ssize_t>(fd3_data.size())) {
      return absl::InternalError(
          absl::StrCat("cannot prepare descriptor 3: ", std::strerror(errno)));
    }
  }
  return io;
}

// SpawnWaitedFor: Spawn, the child listed in WaitedFor in the same step; its pid, or why not.
absl::StatusOr<pid_t> SpawnWaitedFor(const ChildIo& io, const std::string& dir, ExecArgs& exec) {
  pid_t pid = 0;
  std::lock_guard lock(ChildrenMu());
  if (int err = Spawn(io.devnull.get(), io.write_end.get(), io.fd3.valid() ? io.fd3.get() : -1,
                      dir.c_str(), exec.argv.data(), exec.envp.data(), &pid);
      err != 0) {
    return absl::InternalError(absl::StrCat("cannot start the command: ", std::strerror(err)));
  }
  WaitedFor().insert(pid);
  return pid;
}

// PidFd: a descriptor that polls readable once the child exits, where the kernel has them.
Fd PidFd(pid_t pid) {
#ifdef SYS_pidfd_open
  return Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));  // close-on-exec by definition
#else
  return Fd();
#endif
}

// KeepValidUtf8: raw output as valid UTF-8 of at most max_output bytes into result.
void KeepValidUtf8(const std::string& raw, size_t max_output, CommandResult& result) {
  result.output = ToValidUtf8(raw);
  if (result.output.size() > max_output) {
    // Replacement characters are longer than the bytes they replace; cut on a boundary.
    size_t cut = max_output;
    while (cut > 0 && (static_cast<unsigned char>(result.output[cut]) & 0xC0) == 0x80) --cut;
    result.output.resize(cut);
    result.truncated = true;
  }
}

// ChildWatch: a spawned child followed to its end. Its output is read as it comes, its exit
// noticed, and its process group stopped (SIGTERM, then SIGKILL) when `cancelled` turns true,
// the timeout passes, the output floods, or something it left behind holds the pipe open.
class ChildWatch {
 public:
  using Clock = std::chrono::steady_clock;

  ChildWatch(const ProcessSpec& spec, pid_t pid, Fd read_end, Fd pidfd);

  // Run: watches until the child has exited and the pipe closed, or the wait after SIGKILL
  // ran out; then ends what is left of the group, reaps the child and says how it ended.
  CommandResult Run(const std::function<bool()>& cancelled);

 private:
  enum class Phase { kRunning, kTerminating, kKilled };

  // ReadOutput: drains what the pipe holds, keeping at most max_output bytes.
  void ReadOutput();
  // CheckExit: notices the child's exit, leaving it unreaped.
  void CheckExit();
  // Decide: stops the group when it is time; false when the watch is over.
  bool Decide(const std::function<bool()>& cancelled);
  // WaitForNews: waits for output, for the child's exit (through its pidfd) or for a step.
  void WaitForNews();
  void TermGroup(Clock::time_point now);
  void KillGroup(Clock::time_point now);
  // Reap: kills what is left of the group and reaps the child; its exit code.
  int Reap();

  const ProcessSpec& spec_;
  const pid_t pid_;
  Fd read_end_;
  const Fd pidfd_;
  CommandResult result_;
  std::string output_;
  size_t read_total_ = 0;
  bool eof_ = false;
  // The child is a zombie, not yet reaped: its pid, hence the group id, stays ours.
  bool exited_ = false;
  siginfo_t exit_info_{};
  Phase phase_ = Phase::kRunning;
  Clock::time_point deadline_;
  Clock::time_point phase_since_;
  std::optional<Clock::time_point> exited_at_;
};

ChildWatch::ChildWatch(const ProcessSpec& spec, pid_t pid, Fd read_end, Fd pidfd)
    : spec_(spec), pid_(pid), read_end_(std::move(read_end)), pidfd_(std::move(pidfd)) {
  const Clock::time_point start = Clock::now();
  // An infinite timeout would overflow the clock: a year will do.
  const int64_t timeout_ms =
      std::clamp<int64_t>(absl::ToInt64Milliseconds(spec.timeout), 0, int64_t{365} * 86400 * 1000);
  deadline_ = start + std::chrono::milliseconds(timeout_ms);
  phase_since_ = start;
}

CommandResult ChildWatch::Run(const std::function<bool()>& cancelled) {
  while (true) {
    ReadOutput();
    if (!exited_) CheckExit();
    if (!Decide(cancelled)) break;
    WaitForNews();
  }
  result_.exit_code = Reap();
  KeepValidUtf8(output_, spec_.max_output, result_);
  return std::move(result_);
}

void ChildWatch::ReadOutput() {
  for (size_t reads = 0; !eof_ && reads < 64; ++reads) {
    char buf[64 << 10];
    const ssize_t n = ::read(read_end_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno != EAGAIN) eof_ = true;
      break;
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    read_total_ += static_cast<size_t>(n);
    const size_t room = spec_.max_output - std::min(spec_.max_output, output_.size());
    const size_t kept = std::min(room, static_cast<size_t>(n));
    output_.append(buf, kept);
    if (kept > 0 && spec_.on_output) spec_.on_output(std::string_view(buf, kept));
    if (static_cast<size_t>(n) > room) result_.truncated = true;
  }
}

void ChildWatch::CheckExit() {
  siginfo_t info{};
  if (::waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
    if (info.si_pid == pid_) {
      exited_ = true;
      exit_info_ = info;
    }
  } else if (errno != EINTR) {
    exited_ = true;  // not ours to wait for (SIGCHLD ignored?): nothing more to learn
    exit_info_.si_code = CLD_KILLED;
    exit_info_.si_status = SIGKILL;
  }
}

bool ChildWatch::Decide(const std::function<bool()>& cancelled) {
  const Clock::time_point now = Clock::now();
  if (exited_ && !exited_at_) exited_at_ = now;
  if (exited_ && eof_) return false;
  if (phase_ != Phase::kKilled && read_total_ > spec_.max_output_read) {
    // Reading and dropping output forever is work without end: a flood is stopped at once.
    result_.output_overflow = true;
    KillGroup(now);
  } else if (phase_ == Phase::kRunning) {
    if (cancelled && cancelled()) {
      result_.cancelled = true;
      TermGroup(now);
    } else if (now >= deadline_) {
      result_.timed_out = true;
      TermGroup(now);
    } else if (exited_ && now - *exited_at_ >= kDrainAfterExit) {
      TermGroup(now);  // something left in the background holds the pipe open
    }
  } else if (phase_ == Phase::kTerminating && now - phase_since_ >= kTermGrace) {
    KillGroup(now);
  } else if (phase_ == Phase::kKilled && now - phase_since_ >= kKillWait) {
    return false;
  }
  return true;
}

void ChildWatch::WaitForNews() {
  // At least every step, for `cancelled` and the clocks.
  pollfd waits[2];
  nfds_t count = 0;
  if (!eof_) waits[count++] = {read_end_.get(), POLLIN, 0};
  if (!exited_ && pidfd_.valid()) waits[count++] = {pidfd_.get(), POLLIN, 0};
  ::poll(waits, count, static_cast<int>(kPollStep.count()));
}

void ChildWatch::TermGroup(Clock::time_point now) {
  ::killpg(pid_, SIGTERM);
  phase_ = Phase::kTerminating;
  phase_since_ = now;
}

void ChildWatch::KillGroup(Clock::time_point now) {
  ::killpg(pid_, SIGKILL);
  if (spec_.kill_rest) spec_.kill_rest();  // an escapee holding the pipe open would keep us waiting
  phase_ = Phase::kKilled;
  phase_since_ = now;
}

int ChildWatch::Reap() {
  // Whatever is left of the group (background jobs that closed their output) goes too. The
  // child is still unreaped, so the group id cannot have been reused.
  ::killpg(pid_, SIGKILL);
  if (spec_.kill_rest) spec_.kill_rest();
  read_end_.Reset();
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard lock(ChildrenMu());
    WaitedFor().erase(pid_);
  }
  if (!exited_) {  // left the loop in kKilled before the child was seen to exit
    exit_info_.si_code = WIFEXITED(status) ? CLD_EXITED : CLD_KILLED;
    exit_info_.si_status = WIFEXITED(status)     ? WEXITSTATUS(status)
                           : WIFSIGNALED(status) ? WTERMSIG(status)
                                                 : SIGKILL;
  }
  return ExitCode(exit_info_);
}

// StartAndWatch: RunProcess, with why the command could not start as an error.
absl::StatusOr<CommandResult> StartAndWatch(const ProcessSpec& spec,
                                            const std::function<bool()>& cancelled) {
  if (spec.argv.empty())
    return absl::InvalidArgumentError("cannot start the command: nothing to run");
  // Everything the child needs is built before it is spawned.
  ExecArgs exec(spec);
  QAI_ASSIGN_OR_RETURN(ChildIo io, OpenChildIo(spec.fd3_data));
  QAI_ASSIGN_OR_RETURN(const pid_t pid, SpawnWaitedFor(io, spec.dir, exec));
  // The child made the group before it exec'd; this is for a libc whose posix_spawn returns
  // earlier, so that the group exists before any killpg below.
  ::setpgid(pid, pid);
  Fd pidfd = PidFd(pid);
  io.write_end.Reset();
  io.devnull.Reset();
  ::fcntl(io.read_end.get(), F_SETFL, ::fcntl(io.read_end.get(), F_GETFL) | O_NONBLOCK);
  return ChildWatch(spec, pid, std::move(io.read_end), std::move(pidfd)).Run(cancelled);
}

}  // namespace

OrphanReaper::OrphanReaper(absl::Duration every) {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  const auto step =
      std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(every)));
  thread_ = std::thread([this, step] {
    mu_.Lock();
    while (!stopping_) {
      mu_.Unlock();
      ReapNow();
      mu_.Lock();
      const absl::Time until = absl::Now() + absl::FromChrono(step);
      while (!stopping_ && !cv_.WaitWithDeadline(&mu_, until)) {
      }
    }
    mu_.Unlock();
  });
}

OrphanReaper::~OrphanReaper() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  thread_.join();
  // Orphans go where they went before; those already here are reaped.
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  ReapNow();
}

int OrphanReaper::ReapNow() {
  int reaped = 0;
  std::lock_guard lock(ChildrenMu());
  while (true) {
    siginfo_t info{};
    // The first exited child, left unreaped to look at.
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0)
      return reaped;
    if (WaitedFor().contains(info.si_pid) ||
        ::waitpid(info.si_pid, nullptr, WNOHANG) != info.si_pid)
      break;
    ++reaped;
  }
  // The first is one RunProcess is about to reap: the others are found by their pids.
  for (pid_t pid : ZombieChildren()) {
    if (!WaitedFor().contains(pid) && ::waitpid(pid, nullptr, WNOHANG) == pid) ++reaped;
  }
  return reaped;
}

CommandResult RunProcess(const ProcessSpec& spec, const std::function<bool()>& cancelled) {
  absl::StatusOr<CommandResult> result = StartAndWatch(spec, cancelled);
  if (!result.ok()) return CannotStart(result.status().message());
  return *std::move(result);
}

}  // namespace qai::sandbox
