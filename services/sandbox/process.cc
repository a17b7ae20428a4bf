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

#include "absl/strings/str_cat.h"
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
  using Clock = std::chrono::steady_clock;
  CommandResult result;
  auto fail = [&](std::string message) {
    result.output = std::move(message);
    result.exit_code = 127;
    return result;
  };
  if (spec.argv.empty()) return fail("cannot start the command: nothing to run\n");

  // Everything the child needs is built before it is spawned.
  std::vector<std::string> args = spec.argv, env = spec.env;
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.valid())
    return fail(absl::StrCat("cannot open /dev/null: ", std::strerror(errno), "\n"));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return fail(absl::StrCat("cannot create a pipe: ", std::strerror(errno), "\n"));
  Fd read_end(fds[0]), write_end(fds[1]);
  Fd fd3;
  if (!spec.fd3_data.empty()) {
    // Its own file per command: a shared one's read offset would be shared too.
    fd3 = Fd(::memfd_create("qai-fd3", MFD_CLOEXEC));
    if (!fd3.valid() || ::pwrite(fd3.get(), spec.fd3_data.data(), spec.fd3_data.size(), 0) !=
                            static_cast<ssize_t>(spec.fd3_data.size())) {
      return fail(absl::StrCat("cannot prepare descriptor 3: ", std::strerror(errno), "\n"));
    }
  }

  pid_t pid = 0;
  {
    std::lock_guard lock(ChildrenMu());
    if (int err = Spawn(devnull.get(), write_end.get(), fd3.valid() ? fd3.get() : -1,
                        spec.dir.c_str(), argv.data(), envp.data(), &pid);
        err != 0) {
      return fail(absl::StrCat("cannot start the command: ", std::strerror(err), "\n"));
    }
    WaitedFor().insert(pid);
  }
  // The child made the group before it exec'd; this is for a libc whose posix_spawn returns
  // earlier, so that the group exists before any killpg below.
  ::setpgid(pid, pid);
#ifdef SYS_pidfd_open
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));  // close-on-exec by definition
#else
  Fd pidfd;
#endif
  write_end.Reset();
  devnull.Reset();
  ::fcntl(read_end.get(), F_SETFL, ::fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);

  std::string output;
  size_t read_total = 0;
  bool eof = false;
  bool exited =
      false;  // the child is a zombie, not yet reaped: its pid, hence the group id, stays ours
  siginfo_t exit_info{};
  enum class Phase { kRunning, kTerminating, kKilled } phase = Phase::kRunning;
  const Clock::time_point start = Clock::now();
  // An infinite timeout would overflow the clock: a year will do.
  const int64_t timeout_ms =
      std::clamp<int64_t>(absl::ToInt64Milliseconds(spec.timeout), 0, int64_t{365} * 86400 * 1000);
  const Clock::time_point deadline = start + std::chrono::milliseconds(timeout_ms);
  Clock::time_point phase_since = start;
  std::optional<Clock::time_point> exited_at;

  auto term_group = [&](Clock::time_point now) {
    ::killpg(pid, SIGTERM);
    phase = Phase::kTerminating;
    phase_since = now;
  };
  auto kill_group = [&](Clock::time_point now) {
    ::killpg(pid, SIGKILL);
    if (spec.kill_rest) spec.kill_rest();  // an escapee holding the pipe open would keep us waiting
    phase = Phase::kKilled;
    phase_since = now;
  };

  while (true) {
    // Drain what is there, keeping at most max_output bytes.
    for (size_t reads = 0; !eof && reads < 64; ++reads) {
      char buf[64 << 10];
      const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        if (errno != EAGAIN) eof = true;
        break;
      }
      if (n == 0) {
        eof = true;
        break;
      }
      read_total += static_cast<size_t>(n);
      const size_t room = spec.max_output - std::min(spec.max_output, output.size());
      const size_t kept = std::min(room, static_cast<size_t>(n));
      output.append(buf, kept);
      if (kept > 0 && spec.on_output) spec.on_output(std::string_view(buf, kept));
      if (static_cast<size_t>(n) > room) result.truncated = true;
    }
    if (!exited) {
      siginfo_t info{};
      if (::waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
        if (info.si_pid == pid) {
          exited = true;
          exit_info = info;
        }
      } else if (errno != EINTR) {
        exited = true;  // not ours to wait for (SIGCHLD ignored?): nothing more to learn
        exit_info.si_code = CLD_KILLED;
        exit_info.si_status = SIGKILL;
      }
    }
    const Clock::time_point now = Clock::now();
    if (exited && !exited_at) exited_at = now;
    if (exited && eof) break;
    if (phase != Phase::kKilled && read_total > spec.max_output_read) {
      // Reading and dropping output forever is work without end: a flood is stopped at once.
      result.output_overflow = true;
      kill_group(now);
    } else if (phase == Phase::kRunning) {
      if (cancelled && cancelled()) {
        result.cancelled = true;
        term_group(now);
      } else if (now >= deadline) {
        result.timed_out = true;
        term_group(now);
      } else if (exited && now - *exited_at >= kDrainAfterExit) {
        term_group(now);  // something left in the background holds the pipe open
      }
    } else if (phase == Phase::kTerminating && now - phase_since >= kTermGrace) {
      kill_group(now);
    } else if (phase == Phase::kKilled && now - phase_since >= kKillWait) {
      break;
    }
    // Wake for output, for the child's exit (through its pidfd, where the kernel has them),
    // and at least every step for `cancelled` and the clocks.
    pollfd waits[2];
    nfds_t count = 0;
    if (!eof) waits[count++] = {read_end.get(), POLLIN, 0};
    if (!exited && pidfd.valid()) waits[count++] = {pidfd.get(), POLLIN, 0};
    ::poll(waits, count, static_cast<int>(kPollStep.count()));
  }
  // Whatever is left of the group (background jobs that closed their output) goes too. The
  // child is still unreaped, so the group id cannot have been reused.
  ::killpg(pid, SIGKILL);
  if (spec.kill_rest) spec.kill_rest();
  read_end.Reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard lock(ChildrenMu());
    WaitedFor().erase(pid);
  }
  if (!exited) {  // left the loop in kKilled before the child was seen to exit
    exit_info.si_code = WIFEXITED(status) ? CLD_EXITED : CLD_KILLED;
    exit_info.si_status = WIFEXITED(status)     ? WEXITSTATUS(status)
                          : WIFSIGNALED(status) ? WTERMSIG(status)
                                                : SIGKILL;
  }
  result.exit_code = ExitCode(exit_info);
  result.output = ToValidUtf8(output);
  if (result.output.size() > spec.max_output) {
    // Replacement characters are longer than the bytes they replace; cut on a boundary.
    size_t cut = spec.max_output;
    while (cut > 0 && (static_cast<unsigned char>(result.output[cut]) & 0xC0) == 0x80) --cut;
    result.output.resize(cut);
    result.truncated = true;
  }
  return result;
}

}  // namespace qai::sandbox
