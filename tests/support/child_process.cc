#include "tests/support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "tests/support/paths.h"

extern char** environ;

namespace qai::testing {
namespace {

constexpr size_t kTailChars = 4000;

// Resolves a bare program name on PATH, before fork (the child must not allocate).
std::string ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return program;  // execve reports ENOENT
}

void CloseFdsFrom(int first, int keep) {
  if (keep >= first) {
    if (keep > first && ::close_range(first, keep - 1, 0) != 0) {
      for (int fd = first; fd < keep; ++fd) ::close(fd);
    }
    first = keep + 1;
  }
  if (::close_range(first, ~0U, 0) != 0) {
    for (int fd = first; fd < 65536; ++fd) ::close(fd);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(std::string program,
                                                                  std::vector<std::string> args,
                                                                  EnvVars env,
                                                                  const SpawnOptions& options) {
  QAI_ASSIGN_OR_RETURN(std::string dir, MakeTempDir("qai-child-"));
  std::string output_path = dir + "/output.log";
  int out_fd =
      ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int error_pipe[2] = {-1, -1};
  if (out_fd < 0 || null_fd < 0 || ::pipe2(error_pipe, O_CLOEXEC) != 0) {
    int saved = errno;
    if (out_fd >= 0) ::close(out_fd);
    if (null_fd >= 0) ::close(null_fd);
    std::filesystem::remove_all(dir);
    return absl::InternalError(absl::StrCat("spawn setup: ", std::strerror(saved)));
  }

  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  std::vector<std::string> argv_storage = options.wrapper;
  std::string path = ResolveProgram(argv_storage.empty() ? program : argv_storage.front());
  argv_storage.push_back(program);
  for (std::string& arg : args) argv_storage.push_back(std::move(arg));
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view item(*entry);
    std::string_view name = item.substr(0, item.find('='));
    bool overridden = false;
    for (const auto& [key, value] : env) overridden = overridden || key == name;
    if (!overridden) env_storage.emplace_back(item);
  }
  for (const auto& [key, value] : env) env_storage.push_back(absl::StrCat(key, "=", value));
  std::vector<char*> envp;
  for (std::string& item : env_storage) envp.push_back(item.data());
  envp.push_back(nullptr);
  const char* working_dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    if (options.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    sigset_t all;
    ::sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);  // SIG_IGN survives exec
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(out_fd, STDERR_FILENO);
    int error = 0;
    if (working_dir != nullptr && ::chdir(working_dir) != 0) {
      error = errno;
    } else {
      CloseFdsFrom(3, error_pipe[1]);
      ::execve(path.c_str(), argv.data(), envp.data());
      error = errno;
    }
    ssize_t ignored = ::write(error_pipe[1], &error, sizeof(error));
    (void)ignored;
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(out_fd);
  ::close(null_fd);
  ::close(error_pipe[1]);
  if (pid < 0) {
    ::close(error_pipe[0]);
    std::filesystem::remove_all(dir);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(fork_errno)));
  }
  ::setpgid(pid, pid);  // also from here, so the group exists before we ever signal it
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  if (n > 0) {
    ::waitpid(pid, nullptr, 0);
    std::filesystem::remove_all(dir);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot execute ", options.wrapper.empty() ? program : options.wrapper.front(),
                     ": ", std::strerror(child_errno)));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, dir, output_path));
}

ChildProcess::ChildProcess(int pid, std::string dir, std::string output_path)
    : pid_(pid), dir_(std::move(dir)), output_path_(std::move(output_path)) {}

ChildProcess::~ChildProcess() {
  {
    std::lock_guard lock(mutex_);
    ::kill(-pid_, SIGKILL);  // the group: also whatever the child started
    if (!exit_code_.has_value()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::optional<int> ChildProcess::Poll() {
  std::lock_guard lock(mutex_);
  if (exit_code_.has_value()) return exit_code_;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  } else if (r < 0 && errno == ECHILD) {
    exit_code_ = -255;  // reaped by someone else (SIGCHLD ignored?): status unknown
  }
  return exit_code_;
}

bool ChildProcess::Running() { return !Poll().has_value(); }

std::string ChildProcess::Output() const {
  std::ifstream in(output_path_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string ChildProcess::OutputTail() const {
  std::string output = Output();
  if (output.size() > kTailChars) output = "..." + output.substr(output.size() - kTailChars);
  return output;
}

absl::StatusOr<std::string> ChildProcess::WaitForLine(std::string_view needle,
                                                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::optional<int> exited = Poll();  // before reading: output printed before exit is seen
    std::string output = Output();
    size_t start = 0;
    for (size_t end; (end = output.find('\n', start)) != std::string::npos; start = end + 1) {
      std::string_view line(output.data() + start, end - start);
      if (line.find(needle) != std::string_view::npos) return std::string(line);
    }
    if (exited.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("process ", pid_, " exited (", *exited, ") without printing \"",
                       std::string(needle), "\"; output:\n", OutputTail()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " did not print \"", std::string(needle), "\" within ",
                       absl::FormatDuration(timeout), "; output:\n", OutputTail()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status ChildProcess::Signal(int signal) {
  std::lock_guard lock(mutex_);  // held so the pid cannot be reaped and reused meanwhile
  if (exit_code_.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat("process ", pid_, " has already exited"));
  }
  if (::kill(pid_, signal) != 0) {
    return absl::InternalError(absl::StrCat("kill ", pid_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status ChildProcess::Kill() {
  std::lock_guard lock(mutex_);
  ::kill(-pid_, SIGKILL);
  if (!exit_code_.has_value() && ::kill(pid_, SIGKILL) != 0 && errno != ESRCH) {
    return absl::InternalError(absl::StrCat("kill ", pid_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  while (true) {
    if (std::optional<int> code = Poll(); code.has_value()) return *code;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(25));
  }
}

}  // namespace qai::testing
