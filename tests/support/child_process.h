#pragma once
// ChildProcess: a program run by a test, with its output captured in a file.
//
// Integration tests start services as real processes and watch what they print:
//
//   auto child = qai::testing::ChildProcess::Spawn(
//       qai::testing::BinaryPath("services/projects/qai-projects"), {"--listen-addr=127.0.0.1:0"},
//       {{"QAI_DATABASE_URL", url}});
//   ASSERT_TRUE(child.ok()) << child.status();
//   auto line = (*child)->WaitForLine("listening", absl::Seconds(10));
//   ASSERT_TRUE(line.ok()) << line.status() << "\n" << (*child)->Output();
//   ASSERT_TRUE((*child)->Signal(SIGTERM).ok());
//   EXPECT_EQ((*child)->Wait(absl::Seconds(10)).value_or(-999), 0);
//
// The child runs in its own process group and gets SIGKILL if the thread that spawned it
// dies (so a crashed test leaves no service running); the destructor kills the whole group.

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace qai::testing {

// EnvVars: variables set (or overridden) in a child's environment; the rest is inherited.
using EnvVars = std::vector<std::pair<std::string, std::string>>;

// SpawnOptions: less common knobs of ChildProcess::Spawn.
struct SpawnOptions {
  // The child's working directory; empty keeps the test's.
  std::string working_dir;
  // SIGKILL the child when the spawning thread exits. Turn off when spawning from a thread
  // that ends before the child should.
  bool die_with_parent = true;
  // A program line the child is started through, e.g. {"setpriv", "--reuid=10001", ..., "--"}
  // to run it as another user: wrapper[0] (a path, or a name looked up on PATH) runs with
  // wrapper[1..], then the program and its args. pid() is the wrapper's: the program's when
  // the wrapper execs it (setpriv, env), its parent's when it forks (unshare --fork). A
  // wrapper that changes the user or drops capabilities should set the parent-death signal
  // again (setpriv --pdeathsig=KILL): the kernel clears it then.
  std::vector<std::string> wrapper;
};

// ChildProcess: one spawned program. Thread-compatible; Wait, WaitForLine, Signal and Kill may
// be called from different threads.
class ChildProcess {
 public:
  // Spawn: starts `program` (a path, or a name looked up on PATH) with `args` (argv[1..]) and
  // the test's environment plus `env`. stdout and stderr both go to one file in a new
  // temporary directory, removed by the destructor. Fails if the program cannot be executed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      std::string program, std::vector<std::string> args, EnvVars env = {},
      const SpawnOptions& options = {});

  // ~ChildProcess: SIGKILLs the process group if the child still runs, reaps it, and removes
  // the output directory.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // pid: the child's process id (also its process group id).
  int pid() const { return pid_; }

  // output_path: the file that receives the child's stdout and stderr.
  const std::string& output_path() const { return output_path_; }

  // Output: everything the child has printed so far.
  std::string Output() const;

  // WaitForLine: the first complete line of output containing `needle` (without its newline).
  // DeadlineExceeded after `timeout`; FailedPrecondition as soon as the child has exited
  // without printing such a line. Both errors carry the output's tail.
  [[nodiscard]] absl::StatusOr<std::string> WaitForLine(std::string_view needle,
                                                        absl::Duration timeout);

  // Signal: sends `signal` to the child. FailedPrecondition if it has already been reaped.
  [[nodiscard]] absl::Status Signal(int signal);

  // Kill: SIGKILL to the child's whole process group; OK if it had already exited.
  [[nodiscard]] absl::Status Kill();

  // Wait: waits up to `timeout` for the child to exit and returns its exit code, or minus the
  // signal number that killed it (-15 for SIGTERM). DeadlineExceeded if it still runs.
  [[nodiscard]] absl::StatusOr<int> Wait(absl::Duration timeout);

  // Running: true until the child has exited (reaping it if it just did).
  bool Running();

 private:
  ChildProcess(int pid, std::string dir, std::string output_path);
  // Reaps the child if it has exited; returns its exit code once it has.
  std::optional<int> Poll();
  std::string OutputTail() const;

  const int pid_;
  const std::string dir_;
  const std::string output_path_;
  std::mutex mutex_;
  std::optional<int> exit_code_;  // guarded by mutex_
};

}  // namespace qai::testing
