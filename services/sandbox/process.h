#pragma once
// Process: runs one program to its end the way the agent's commands run, whatever wraps them
// (see sandbox.h): in a process group of its own, reading /dev/null, with stdout and stderr
// interleaved into one capped output, a wall-clock timeout and a cancel callback. Whatever it
// leaves behind in its group is killed once it ends.
//
//   CommandResult r = RunProcess({.argv = {"/bin/bash", "-c", "ls"}, .env = {"PATH=/usr/bin:/bin"},
//                                 .dir = "/srv/work", .timeout = absl::Seconds(5)},
//                                [] { return false; });

#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace qai::sandbox {

// CommandResult: how a command ended and what it printed.
struct CommandResult {
  // Valid UTF-8: bytes that are not (and NULs) become U+FFFD, so the output can go into JSON,
  // protobuf strings and PostgreSQL text as it is.
  std::string output;
  int exit_code = 0;  // the command's exit status; 128 + signal when killed
  bool truncated = false;
  bool timed_out = false;
  bool cancelled = false;
  // It printed more than max_output_read bytes and was killed for it (SIGKILL).
  bool output_overflow = false;
  // Why the sandbox stopped it, when it did (Workspace::Run fills it in and also puts it at
  // the start of `output`); empty otherwise.
  std::string explanation;
};

// ProcessSpec: what to run, where, and for how long.
struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is the program's absolute path
  std::vector<std::string> env;   // the whole environment, "NAME=value" each
  std::string dir;                // the working directory
  absl::Duration timeout = absl::Seconds(60);
  // Output beyond max_output is read and dropped (the result says it was truncated), so a
  // chatty command never blocks on a full pipe; past max_output_read bytes it is killed.
  size_t max_output = 64 << 10;
  size_t max_output_read = 16 << 20;
  // Called with the kept output (at most max_output bytes in all, raw bytes) as it is read,
  // on the calling thread; may be empty.
  std::function<void(std::string_view)> on_output;
  // Kills what the command started wherever it went, its process group or not (the project's
  // cgroup: a process that called setsid is still in it); called, on the calling thread, with
  // each SIGKILL to the group and once the program has ended. May be empty.
  std::function<void()> kill_rest;
  // When not empty: the program gets a descriptor 3 to read this from (a memory file at its
  // start), e.g. the seccomp program bubblewrap's `--seccomp 3` loads.
  std::string fd3_data;
};

// RunProcess: runs spec. `cancelled` (may be empty) is polled while it runs; when it turns
// true, or the timeout passes, the whole process group gets SIGTERM, and SIGKILL a second
// later. Once the program itself exits, what it left in the group is killed too, and what
// spec.kill_rest reaches. Never throws; a program that cannot start yields exit code 127 and
// the reason as its output.
CommandResult RunProcess(const ProcessSpec& spec, const std::function<bool()>& cancelled);

// OrphanReaper: reaps this process's children that no RunProcess waits for. A command's
// processes can outlive the one RunProcess started: bubblewrap's own init, PID 1 of the
// command's PID namespace, exits a moment after the bwrap process that reports its status, so
// every command orphans it. An orphan goes to the nearest child subreaper, else to PID 1,
// which in a container is this service; left unreaped, each command's zombie would count
// against its project's processes limit (after a few hundred commands the project could run
// none) and hold a PID. The reaper makes this process a child subreaper, so orphans come here
// wherever it runs, and reaps them every `every` until it is destroyed (then it is a subreaper
// no more).
//
//   OrphanReaper reaper;  // for the life of the service
class OrphanReaper {
 public:
  explicit OrphanReaper(absl::Duration every = absl::Milliseconds(500));
  ~OrphanReaper();
  OrphanReaper(const OrphanReaper&) = delete;
  OrphanReaper& operator=(const OrphanReaper&) = delete;

  // ReapNow: reaps the exited children no RunProcess waits for; returns how many.
  static int ReapNow();

 private:
  absl::Mutex mu_;
  absl::CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace qai::sandbox
