// The sandbox's containment, in each mode: what the issue lists (path traversal, a symlink
// escape, a fork bomb, a 100 MB printer, a command that never ends, a network connection,
// reading and writing outside the workspace), each contained and reported as an error, and
// what only bwrap contains. The bwrap tests run under bwrap and fail where it cannot run; the
// fallback's run with bwrap switched off. They need root (commands run as users of their own).

#include "services/sandbox/sandbox.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/ids.h"
#include "services/sandbox/fd.h"
#include "services/sandbox/proc_stat.h"
#include "services/sandbox/sandbox_options.h"
#include "services/sandbox/sandbox_setup.h"
#include "services/sandbox/test_peak.h"
#include "services/sandbox/workspace.h"

namespace qai::sandbox {

// Test names and failures show the mode by name.
void PrintTo(SandboxMode mode, std::ostream* os) { *os << SandboxModeName(mode); }

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kSecret[] = "top secret";

SandboxLimits TestLimits() {
  return {.cpu_time = absl::Seconds(10),
          .memory_bytes = uint64_t{2} << 30,
          .processes = 32,
          .file_bytes = uint64_t{1} << 20};
}

// ProcessesOf: how many processes run as uid (zombies too, unless told otherwise).
int ProcessesOf(uid_t uid, bool count_zombies = true) {
  int found = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st;
    if (::stat(entry.path().c_str(), &st) != 0 || st.st_uid != uid) continue;
    if (!count_zombies) {
      std::optional<ProcStat> st = ReadProcStat(std::stoi(name));
      if (st && st->state == 'Z') continue;
    }
    ++found;
  }
  return found;
}

// Children: this test process's children, exited and unreaped ones included.
int Children() {
  int found = 0;
  for (pid_t pid : ProcPids()) {
    std::optional<ProcStat> st = ReadProcStat(pid);
    found += st && st->ppid == ::getpid();
  }
  return found;
}

// ProcessesLeftOf: ProcessesOf without zombies, once killed processes had time to go.
int ProcessesLeftOf(uid_t uid) {
  int found = ProcessesOf(uid, false);
  for (int i = 0; i < 300 && found > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    found = ProcessesOf(uid, false);
  }
  return found;
}

// PeakProcesses: the most processes of uid seen at once while it lives.
class PeakProcesses : public Peak {
 public:
  explicit PeakProcesses(uid_t uid) : Peak([uid] { return ProcessesOf(uid); }) {}
};

// Listener: a TCP socket on 127.0.0.1 of the host, to see whether a command reached it.
class Listener {
 public:
  Listener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(fd_.get(), 8) != 0 ||
        ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      fd_.Reset();
    }
    port_ = ntohs(addr.sin_port);
  }
  bool ok() const { return fd_.valid(); }
  int port() const { return port_; }
  // Connected: whether a connection came (waiting up to `wait` for one).
  bool Connected(std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    const auto until = Clock::now() + wait;
    do {
      Fd peer(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (peer.valid()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (Clock::now() < until);
    return false;
  }

 private:
  Fd fd_;
  int port_ = 0;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// SandboxTest: a fresh directory holding the sandbox root and, beside it, `outside` with a
// root-only secret and a world-readable file; Start makes a sandbox and a project's workspace.
class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "the sandbox tests need root: commands run as users of their own";
    std::string pattern = (fs::temp_directory_path() / "qai-sandbox-test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    tmp_ = pattern;
    // As /var/lib is: others may pass through (the sandbox's users must reach their workspace).
    fs::permissions(tmp_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    outside_ = tmp_ + "/outside";
    fs::create_directories(outside_);
    fs::permissions(outside_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
    std::ofstream(outside_ + "/secret.txt") << kSecret;
    fs::permissions(outside_ + "/secret.txt", fs::perms::owner_read | fs::perms::owner_write);
    std::ofstream(outside_ + "/public.txt") << "public";
  }

  void TearDown() override {
    // Nothing a test started may outlive it, whatever it asserted.
    for (uid_t uid : uids_) {
      for (int i = 0; i < 3 && ProcessesOf(uid, false) > 0; ++i) KillAllOf(uid);
    }
    std::error_code ignored;
    fs::remove_all(tmp_, ignored);
  }

  // Start: a sandbox of mode with limits (bwrap missing fails the test: nothing is skipped),
  // and the workspace of a new project in it.
  void Start(SandboxMode mode, SandboxLimits limits = TestLimits()) {
    auto sandbox = Sandbox::Create({.mode = mode, .limits = limits});
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    sandbox_ = *std::move(sandbox);
    project_ = common::NewUuid();
    ws_ = OpenWorkspace(project_);
    ASSERT_NE(ws_, nullptr);
  }

  // OpenWorkspace: a project's workspace with a user of its own (as SandboxStore would
  // allocate one: here a random uid of the range, so parallel tests do not share one).
  std::unique_ptr<Workspace> OpenWorkspace(const std::string& project) {
    std::optional<SandboxUser> user;
    if (sandbox_->switches_users()) {
      const auto uid =
          static_cast<uid_t>(sandbox_->options().first_uid +
                             absl::Uniform<uint32_t>(bitgen_, 0, sandbox_->options().uid_count));
      user = SandboxUser{.uid = uid, .gid = uid};
      uids_.insert(uid);
      users_[project] = uid;
    }
    auto ws = Workspace::Open(tmp_ + "/sandboxes", project, user);
    EXPECT_TRUE(ws.ok()) << ws.status();
    return ws.ok() ? *std::move(ws) : nullptr;
  }

  uid_t Uid() const { return users_.at(project_); }

  CommandResult Run(const std::string& command,
                    CommandOptions options = {.timeout = absl::Seconds(20)}) {
    options.sandbox = sandbox_;
    return ws_->Run(command, options, nullptr);
  }

  // KillAllOf: SIGKILL to every process of uid (a test's own user, never anyone else's).
  static void KillAllOf(uid_t uid) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename();
      struct stat st;
      if (name.find_first_not_of("0123456789") != std::string::npos ||
          ::stat(entry.path().c_str(), &st) != 0 || st.st_uid != uid) {
        continue;
      }
      ::kill(std::stoi(name), SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::string tmp_, outside_;
  std::shared_ptr<const Sandbox> sandbox_;
  std::string project_;
  std::unique_ptr<Workspace> ws_;
  std::set<uid_t> uids_;
  std::map<std::string, uid_t> users_;
  absl::BitGen bitgen_;
};

// ContainmentTest: what every mode contains, run in each.
class ContainmentTest : public SandboxTest, public ::testing::WithParamInterface<SandboxMode> {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (!HasFatalFailure()) Start(GetParam());
  }
};

INSTANTIATE_TEST_SUITE_P(Sandbox, ContainmentTest,
                         ::testing::Values(SandboxMode::kBwrap, SandboxMode::kUnsafeNone),
                         [](const auto& info) {
                           return info.param == SandboxMode::kBwrap ? "bwrap" : "unsafe_none";
                         });

TEST_P(ContainmentTest, NormalCommandsAndTheFileToolsWork) {
  ASSERT_TRUE(ws_->WriteFile("index.html", "<h1>Hi</h1>\n").ok());
  CommandResult r =
      Run("set -e; ls; cat index.html; echo more >> index.html; mkdir -p src && printf 'echo from "
          "a script\\n' > src/run.sh; "
          "sh src/run.sh; echo 'a b' | awk '{print $2}'; pwd; id -u; echo $HOME");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, absl::StrCat("index.html\n<h1>Hi</h1>\nfrom a script\nb\n", ws_->dir(), "\n",
                                   Uid(), "\n", ws_->dir(), "\n"));
  // The file tools and the commands share the files both ways.
  EXPECT_EQ(*ws_->ReadFile("index.html"), "<h1>Hi</h1>\nmore\n");
  EXPECT_EQ(*ws_->ReadFile("src/run.sh"), "echo from a script\n");
  ASSERT_TRUE(ws_->WriteFile("src/new/deep.txt", "deep").ok());
  EXPECT_EQ(Run("cat src/new/deep.txt && echo x >> src/new/deep.txt && rm index.html").exit_code,
            0);
  EXPECT_EQ(*ws_->ReadFile("src/new/deep.txt"), "deepx\n");
  // The workspace is the project user's, and only theirs.
  struct stat st;
  ASSERT_EQ(::stat(ws_->dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, Uid());
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((ws_->dir() + "/src/new/deep.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, Uid());
}

TEST_P(ContainmentTest, NodeRunsWhereItIsInstalled) {
  const bool installed = fs::exists("/usr/bin/node") || fs::exists("/usr/local/bin/node");
  CommandResult r = Run(
      "command -v node >/dev/null || { echo 'no node'; exit 0; }; node -e 'console.log(6 * 7)'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, installed ? "42\n" : "no node\n");
}

TEST_P(ContainmentTest, PathTraversalIsRefused) {
  for (const char* path : {"../../outside/secret.txt", "../x", "a/../../x", "/etc/passwd"}) {
    EXPECT_EQ(ws_->ReadFile(path).status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_EQ(ws_->WriteFile(path, "pwned").code(), absl::StatusCode::kInvalidArgument) << path;
  }
  CommandResult read = Run("cat ../../outside/secret.txt");
  EXPECT_NE(read.exit_code, 0);
  EXPECT_FALSE(absl::StrContains(read.output, kSecret)) << read.output;
  CommandResult write = Run("echo pwned > ../../outside/new.txt");
  EXPECT_NE(write.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(write.output, "new.txt"))
      << write.output;  // the shell says what failed
  EXPECT_FALSE(fs::exists(outside_ + "/new.txt"));
}

TEST_P(ContainmentTest, ASymlinkEscapeIsContained) {
  CommandResult r = Run("ln -s " + outside_ + "/secret.txt link.txt && ln -s " + outside_ +
                        " out && cat link.txt");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(absl::StrContains(r.output, kSecret)) << r.output;
  CommandResult write = Run("echo pwned > out/new.txt");
  EXPECT_NE(write.exit_code, 0);
  EXPECT_FALSE(fs::exists(outside_ + "/new.txt"));
  // The file tools, which run as the service, refuse to follow them.
  EXPECT_EQ(ws_->ReadFile("link.txt").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ws_->WriteFile("link.txt", "pwned").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ws_->WriteFile("out/new.txt", "pwned").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Slurp(outside_ + "/secret.txt"), kSecret);
  EXPECT_FALSE(fs::exists(outside_ + "/new.txt"));
}

TEST_P(ContainmentTest, ReadingOutsideTheWorkspaceFails) {
  for (const std::string& path : {outside_ + "/secret.txt", std::string("/etc/shadow"),
                                  absl::StrCat("/proc/", ::getpid(), "/environ")}) {
    CommandResult r = Run("cat " + path);
    EXPECT_NE(r.exit_code, 0) << path;
    EXPECT_TRUE(absl::StrContains(r.output, path)) << r.output;  // "cat: <path>: Permission denied"
    EXPECT_FALSE(absl::StrContains(r.output, kSecret)) << r.output;
  }
  // Nor another project's workspace.
  std::unique_ptr<Workspace> other = OpenWorkspace(common::NewUuid());
  ASSERT_TRUE(other->WriteFile("private.txt", kSecret).ok());
  ASSERT_EQ(other->Run("true", {.sandbox = sandbox_}, nullptr).exit_code,
            0);  // handed to its own user
  CommandResult r = Run("cat " + other->dir() + "/private.txt");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(absl::StrContains(r.output, kSecret)) << r.output;
}

TEST_P(ContainmentTest, WritingOutsideTheWorkspaceFails) {
  std::unique_ptr<Workspace> other = OpenWorkspace(common::NewUuid());
  ASSERT_EQ(other->Run("true", {.sandbox = sandbox_}, nullptr).exit_code, 0);
  for (const std::string& path :
       {outside_ + "/new.txt", std::string("/usr/local/qai-sandbox-test"),
        std::string("/etc/qai-sandbox-test"), other->dir() + "/new.txt"}) {
    CommandResult r = Run("echo pwned > " + path);
    EXPECT_NE(r.exit_code, 0) << path;
    EXPECT_TRUE(absl::StrContains(r.output, path)) << r.output;
    EXPECT_FALSE(fs::exists(path)) << path;
  }
}

TEST_P(ContainmentTest, AForkBombIsBoundedAndCleanedUp) {
  PeakProcesses peak(Uid());
  const auto start = Clock::now();
  CommandResult r = Run("bomb() { bomb | bomb & bomb; }; bomb", {.timeout = absl::Seconds(2)});
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(ProcessesLeftOf(Uid()), 0);
  EXPECT_LE(peak.Stop(), static_cast<int>(TestLimits().processes));
  EXPECT_TRUE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.output, "fork: retry: Resource temporarily unavailable"))
      << r.output;
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST_P(ContainmentTest, A100MBPrinterIsCutOffAtTheCap) {
  const auto start = Clock::now();
  CommandResult r =
      Run("head -c 100000000 /dev/zero | tr '\\0' x; echo done",
          {.timeout = absl::Seconds(30), .max_output = 64 << 10, .max_output_read = 1 << 20});
  const auto elapsed = Clock::now() - start;
  EXPECT_TRUE(r.output_overflow);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  const std::string why =
      "[sandbox] exit code 137: killed for printing more than 1 MiB; only the first 64 KiB are "
      "shown\n";
  ASSERT_TRUE(absl::StartsWith(r.output, why)) << r.output.substr(0, 200);
  EXPECT_EQ(r.output.substr(why.size()), std::string(64 << 10, 'x'));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
  EXPECT_EQ(ProcessesLeftOf(Uid()), 0);
}

TEST_P(ContainmentTest, ACommandThatNeverEndsIsKilled) {
  const auto start = Clock::now();
  CommandResult r = Run("echo started; while :; do :; done", {.timeout = absl::Milliseconds(500)});
  const auto elapsed = Clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  EXPECT_EQ(r.output, "started\n");  // the timeout is the caller's to report (the agent says so)
  EXPECT_LT(elapsed, std::chrono::milliseconds(2500));
  EXPECT_EQ(ProcessesLeftOf(Uid()), 0);
}

TEST_P(ContainmentTest, TheCpuTimeLimitStopsABusyCommand) {
  SandboxLimits limits = TestLimits();
  limits.cpu_time = absl::Seconds(1);
  Start(GetParam(), limits);
  const auto start = Clock::now();
  CommandResult r = Run("while :; do :; done", {.timeout = absl::Seconds(20)});
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGXCPU);
  EXPECT_TRUE(absl::StartsWith(
      r.output,
      "[sandbox] exit code 152: killed by SIGXCPU: it used up its CPU time limit of 1 s\n"))
      << r.output;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
}

TEST_P(ContainmentTest, TheFileSizeLimitStopsAHugeFile) {
  CommandResult r = Run("head -c 5000000 /dev/zero > big.bin");
  EXPECT_EQ(r.exit_code, 128 + SIGXFSZ);
  EXPECT_TRUE(absl::StartsWith(r.output,
                               "[sandbox] exit code 153: killed by SIGXFSZ: it tried to write a "
                               "file larger than the limit of 1 MiB\n"))
      << r.output;
  EXPECT_EQ(fs::file_size(ws_->dir() + "/big.bin"), uintmax_t{1} << 20);
}

TEST_P(ContainmentTest, TheMemoryLimitStopsAHog) {
  SandboxLimits limits = TestLimits();
  limits.memory_bytes = uint64_t{64} << 20;
  Start(GetParam(), limits);
  CommandResult r = Run("x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo ${#x}");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.output, "cannot allocate")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "100000000")) << r.output;
}

TEST_P(ContainmentTest, TheLimitsCannotBeRaised) {
  CommandResult r = Run("ulimit -H -u unlimited");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.output, "Operation not permitted")) << r.output;
  EXPECT_EQ(Run("ulimit -u; ulimit -f; ulimit -t; ulimit -c").output,
            "32\n1024\n10\n0\n");  // -f in KiB
}

// BwrapTest: what only bubblewrap contains.
class BwrapTest : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (!HasFatalFailure()) Start(SandboxMode::kBwrap);
  }
};

// The command's own seccomp filter: the kernel's keyrings, io_uring and userfaultfd answer
// EPERM, which they do not for the same user outside it (unsafe-none, FallbackTest below), and
// clone3 is not there, so libc falls back to clone and ordinary programs still run.
TEST_F(BwrapTest, CommandsRunUnderTheirSeccompFilter) {
  // errno of syscall(nr, 0, 0, 0, 0), for each name (x86_64 and aarch64 numbers).
  const std::string probe = R"(python3 -c '
import ctypes, platform
nr = {"x86_64": {"keyctl": 250, "io_uring_setup": 425, "userfaultfd": 323, "clone3": 435},
      "aarch64": {"keyctl": 219, "io_uring_setup": 425, "userfaultfd": 282, "clone3": 435}}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
for name in ("keyctl", "io_uring_setup", "userfaultfd", "clone3"):
    ctypes.set_errno(0)
    libc.syscall(nr[name], 0, 0, 0, 0)
    print(name, ctypes.get_errno())
')";
  CommandResult r = Run(probe);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "keyctl 1\nio_uring_setup 1\nuserfaultfd 1\nclone3 38\n");  // EPERM x3, ENOSYS
  CommandResult ordinary = Run("sh -c 'echo child' && ls / > /dev/null && echo ok");
  EXPECT_EQ(ordinary.output, "child\nok\n");
}

TEST_F(BwrapTest, TheNetworkIsUnreachable) {
  Listener host;
  ASSERT_TRUE(host.ok());
  CommandResult local = Run(absl::StrCat("echo hello > /dev/tcp/127.0.0.1/", host.port()));
  EXPECT_NE(local.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(local.output, "Connection refused"))
      << local.output;  // its own loopback
  EXPECT_FALSE(host.Connected(std::chrono::milliseconds(200)));
  const auto start = Clock::now();
  CommandResult remote = Run("echo hello > /dev/tcp/1.1.1.1/80");
  EXPECT_NE(remote.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(remote.output, "Network is unreachable")) << remote.output;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST_F(BwrapTest, OnlyTheSystemAndTheWorkspaceAreThere) {
  CommandResult r = Run("ls /; ls /etc; cat /proc/sys/kernel/hostname; ls -d /proc/[0-9]* | wc -l");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "shadow")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "root\n")) << r.output;  // no /root, no /home, no /var
  EXPECT_FALSE(absl::StrContains(r.output, "home\n")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "var\n")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "qai-sandbox\n")) << r.output;
  // A world-readable file outside is not there either, and the system is read-only.
  CommandResult outside = Run("cat " + outside_ + "/public.txt");
  EXPECT_NE(outside.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(outside.output, "No such file or directory")) << outside.output;
  for (const char* path : {"/usr/bin/qai-test", "/qai-test", "/dev/qai-test", "/etc/passwd"}) {
    CommandResult w = Run(absl::StrCat("echo x > ", path));
    EXPECT_NE(w.exit_code, 0) << path;
    EXPECT_TRUE(absl::StrContains(w.output, "Read-only file system")) << w.output;
  }
  // Its /tmp is its own, emptied after each command, and bounded.
  const std::string name = "qai-sandbox-test-" + common::NewUuid();
  EXPECT_EQ(Run("echo x > /tmp/" + name + " && cat /tmp/" + name).output, "x\n");
  EXPECT_FALSE(fs::exists("/tmp/" + name));
  EXPECT_NE(Run("test -e /tmp/" + name).exit_code, 0);
  CommandResult full =
      Run("for i in 1 2 3; do head -c 900000 /dev/zero > /tmp/f$i || exit 1; done");
  EXPECT_NE(full.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(full.output, "No space left on device")) << full.output;
}

TEST_F(BwrapTest, NoProcessOutlivesTheCommandNorSeesTheHost) {
  CommandResult r =
      Run("setsid sleep 77.4242 > /dev/null 2>&1 & nohup sleep 77.4343 > /dev/null 2>&1 & sleep "
          "0.2; ls -d /proc/[0-9]* | wc -l");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_LE(std::stoi(r.output), 8) << r.output;  // bwrap, bash, the two sleeps, ls, wc
  EXPECT_EQ(ProcessesLeftOf(Uid()), 0);
  // The service is not there to be signalled.
  CommandResult kill = Run(absl::StrCat("kill -0 ", ::getpid()));
  EXPECT_NE(kill.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(kill.output, "No such process")) << kill.output;
}

// Where orphans come to the service (it is PID 1 in a container, or a subreaper), each
// command's bwrap init would stay a zombie of the service, counted against the project's
// processes limit: the reaper takes them.
TEST_F(BwrapTest, WhatCommandsOrphanIsReaped) {
  OrphanReaper reaper(absl::Milliseconds(20));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Run("setsid sleep 60 & echo ran").output, "ran\n");
  for (int i = 0; i < 300 && (Children() > 0 || ProcessesOf(Uid()) > 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Children(), 0);
  EXPECT_EQ(ProcessesOf(Uid()), 0) << "zombies included";
}

TEST(OrphanReaperTest, ReapsOrphansButNeverAChildRunProcessWaitsFor) {
  OrphanReaper reaper(absl::Milliseconds(1));
  std::atomic<bool> stop = false;
  std::thread eager([&] {
    while (!stop) OrphanReaper::ReapNow();
  });
  std::atomic<int> wrong = 0;
  std::vector<std::thread> runners;
  for (int t = 0; t < 4; ++t) {
    runners.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        // Its own status, never taken by the reaper; and an orphan, left in a session of its own.
        CommandResult r =
            RunProcess({.argv = {"/bin/sh", "-c", "setsid sleep 0.1 >/dev/null 2>&1 & exit 7"},
                        .env = {"PATH=/usr/bin:/bin"},
                        .dir = "/",
                        .timeout = absl::Seconds(10)},
                       nullptr);
        wrong += r.exit_code != 7;
      }
    });
  }
  for (std::thread& t : runners) t.join();
  stop = true;
  eager.join();
  EXPECT_EQ(wrong, 0);
  // The orphans end (0.1 s) and are reaped.
  for (int i = 0; i < 500 && Children() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(Children(), 0);
}

// FallbackTest: mode unsafe-none, the development mode without bwrap.
class FallbackTest : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (!HasFatalFailure()) Start(SandboxMode::kUnsafeNone);
  }
};

// Without bubblewrap there is no filter: the same probes reach the kernel (which is why the
// seccomp test above can fail).
TEST_F(FallbackTest, CommandsHaveNoSeccompFilterOfTheirOwn) {
  CommandResult r = Run(R"(python3 -c '
import ctypes, platform
nr = {"x86_64": 250, "aarch64": 219}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
ctypes.set_errno(0)
libc.syscall(nr, 0, -3, 0, 0)
print(ctypes.get_errno())
')");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output, "1\n") << "keyctl(KEYCTL_GET_KEYRING_ID) is not refused with EPERM here";
}

TEST_F(FallbackTest, CommandsCannotSignalTheService) {
  CommandResult r = Run(absl::StrCat("kill -0 ", ::getpid()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.output, "Operation not permitted")) << r.output;
}

TEST_F(FallbackTest, CommandsHaveNoPrivilegesAndCannotGainAny) {
  // no_new_privs: a setuid program (su, mount) runs with the caller's rights.
  CommandResult r = Run("grep -E '^(Uid|Groups|CapPrm|CapEff|NoNewPrivs)' /proc/self/status");
  const std::string uid = absl::StrCat(Uid());
  EXPECT_EQ(
      r.output,
      absl::StrCat(
          "Uid:\t", uid, "\t", uid, "\t", uid, "\t", uid,
          "\nGroups:\t \nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"));
}

// What docs/architecture.md ("The sandbox") says the fallback does not block; if one of these
// starts to fail, the fallback got stronger and the docs should say so. (These sandboxes have no
// cgroups, as with QAI_SANDBOX_CGROUPS=off: with them, the process that left its group is killed
// too, see cgroups_test.cc.)
TEST_F(FallbackTest, WhatOnlyBwrapContains) {
  Listener host;
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(Run(absl::StrCat("echo hello > /dev/tcp/127.0.0.1/", host.port())).exit_code, 0);
  EXPECT_TRUE(host.Connected(std::chrono::seconds(2)));
  EXPECT_EQ(Run("cat " + outside_ + "/public.txt").output, "public");
  const std::string name = "/tmp/qai-sandbox-test-" + common::NewUuid();
  EXPECT_EQ(Run("echo x > " + name).exit_code, 0);
  EXPECT_TRUE(fs::exists(name));
  fs::remove(name);
  EXPECT_EQ(Run("setsid sleep 77.4444 > /dev/null 2>&1 & sleep 0.3").exit_code,
            0);                             // time to leave the group
  EXPECT_EQ(ProcessesOf(Uid(), false), 1);  // TearDown kills it
}

TEST(SandboxPolicyTest, RefusesLimitsAndUidsOutOfBounds) {
  for (SandboxOptions bad :
       std::vector<SandboxOptions>{{.limits = {.cpu_time = absl::Milliseconds(500)}},
                                   {.limits = {.memory_bytes = 1 << 20}},
                                   {.limits = {.processes = 1}},
                                   {.limits = {.file_bytes = 100}},
                                   {.first_uid = 0},
                                   {.uid_count = 0},
                                   {.first_uid = 4294967294u, .uid_count = 2}}) {
    EXPECT_EQ(Sandbox::Create(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(
      Sandbox::Create({.mode = SandboxMode::kBwrap, .bwrap = "/nonexistent/bwrap"}).status().code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST(SandboxPolicyTest, WrapsTheCommandInLimitsAUserAndBwrap) {
  auto none = Sandbox::Create({.mode = SandboxMode::kUnsafeNone});
  auto bwrap = Sandbox::Create({.mode = SandboxMode::kBwrap});
  ASSERT_TRUE(none.ok() && bwrap.ok()) << none.status() << bwrap.status();
  const SandboxUser user{.uid = 1000000007, .gid = 1000000007};
  auto has = [](const ProcessSpec& spec, std::string_view arg) {
    return std::find(spec.argv.begin(), spec.argv.end(), arg) != spec.argv.end();
  };
  for (const auto& sandbox : {*none, *bwrap}) {
    ProcessSpec spec = sandbox->Wrap("/srv/ws/p", user, "ls -la");
    EXPECT_EQ(spec.dir, "/srv/ws/p");
    EXPECT_EQ(spec.env, (std::vector<std::string>{
                            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            "HOME=/srv/ws/p", "LANG=C.UTF-8", "TERM=dumb"}));
    EXPECT_TRUE(absl::EndsWith(spec.argv[0], "/prlimit"));
    EXPECT_TRUE(has(spec, "--cpu=60:61") && has(spec, "--as=2147483648") &&
                has(spec, "--nproc=256") && has(spec, "--fsize=134217728") &&
                has(spec, "--core=0"));
    EXPECT_EQ(has(spec, "--reuid=1000000007"), ::geteuid() == 0);
    EXPECT_EQ(has(spec, "--unshare-all"), sandbox->mode() == SandboxMode::kBwrap);
    EXPECT_EQ(has(spec, "--die-with-parent"), sandbox->mode() == SandboxMode::kBwrap);
    EXPECT_EQ(std::vector<std::string>(spec.argv.end() - 3, spec.argv.end()),
              (std::vector<std::string>{"/bin/bash", "-c", "ls -la"}));
    // Joining a cgroup comes first, while still the service's user; its files are arguments,
    // never part of the script.
    const std::vector<std::string> join = {"/sys/fs/cgroup/memory/x/cgroup.procs",
                                           "/sys/fs/cgroup/pids/x/cgroup.procs"};
    ProcessSpec joined = sandbox->Wrap("/srv/ws/p", user, "ls -la", join);
    ASSERT_GT(joined.argv.size(), spec.argv.size() + 5);
    EXPECT_EQ(joined.argv[0], "/bin/sh");
    EXPECT_EQ(joined.argv[1], "-c");
    EXPECT_FALSE(absl::StrContains(joined.argv[2], "/sys/fs/cgroup")) << joined.argv[2];
    EXPECT_EQ(std::vector<std::string>(joined.argv.begin() + 3, joined.argv.begin() + 6),
              (std::vector<std::string>{"sh", join[0], join[1]}));
    EXPECT_EQ(std::vector<std::string>(joined.argv.begin() + 6, joined.argv.end()), spec.argv);
  }
}

TEST(SandboxPolicyTest, ExplainsDeathsByTheLimitsSignals) {
  auto sandbox = Sandbox::Create({});
  ASSERT_TRUE(sandbox.ok());
  const ProcessSpec spec{.max_output = 64 << 10, .max_output_read = 16 << 20};
  auto explain = [&](CommandResult r) { return (*sandbox)->Explain(spec, r); };
  EXPECT_EQ(explain({.exit_code = 0}), "");
  EXPECT_EQ(explain({.exit_code = 1}), "");
  EXPECT_EQ(explain({.exit_code = 128}), "");
  EXPECT_EQ(explain({.exit_code = 152}),
            "[sandbox] exit code 152: killed by SIGXCPU: it used up its CPU time limit of 60 s\n");
  EXPECT_EQ(explain({.exit_code = 153}),
            "[sandbox] exit code 153: killed by SIGXFSZ: it tried to write a file larger than the "
            "limit of 128 MiB\n");
  EXPECT_EQ(explain({.exit_code = 134}),
            "[sandbox] exit code 134: killed by SIGABRT (it may have run out of memory: the limit "
            "is 2 GiB of address "
            "space per process)\n");
  EXPECT_EQ(explain({.exit_code = 137}),
            "[sandbox] exit code 137: killed by SIGKILL (the CPU time limit of 60 s, running out "
            "of memory, or a kill -9 "
            "from the command itself)\n");
  EXPECT_EQ(explain({.exit_code = 130}), "[sandbox] exit code 130: killed by SIGINT\n");
  EXPECT_EQ(explain({.exit_code = 137, .output_overflow = true}),
            "[sandbox] exit code 137: killed for printing more than 16 MiB; only the first 64 KiB "
            "are shown\n");
  // A timeout or a cancel is the result's to report.
  EXPECT_EQ(explain({.exit_code = 143, .timed_out = true}), "");
  EXPECT_EQ(explain({.exit_code = 143, .cancelled = true}), "");
  // The kernel's OOM kills in the project's cgroup while the command ran, whoever died.
  auto cgroups = Cgroups::SetUp({.limits = {.memory_bytes = uint64_t{128} << 20},
                                 .name = "qai-sandbox-test-" + common::NewUuid().substr(0, 8)});
  ASSERT_TRUE(cgroups.ok()) << cgroups.status();
  auto limited = Sandbox::Create({.cgroups = *cgroups});
  ASSERT_TRUE(limited.ok());
  auto explain_oom = [&](CommandResult r, uint64_t oom_kills) {
    return (*limited)->Explain(spec, r, oom_kills);
  };
  EXPECT_EQ(explain_oom({.exit_code = 137}, 1),
            "[sandbox] exit code 137: killed: the project's commands used more than 128 MiB of "
            "memory together\n");
  EXPECT_EQ(explain_oom({.exit_code = 0}, 1),
            "[sandbox] exit code 0: one of its processes was killed: the project's commands used "
            "more than 128 MiB of "
            "memory together\n");
  EXPECT_EQ(explain_oom({.exit_code = 2, .timed_out = true}, 3),
            "[sandbox] exit code 2: 3 of its processes were killed: the project's commands used "
            "more than 128 MiB of "
            "memory together\n");
  EXPECT_EQ(explain_oom({.exit_code = 0}, 0), "");
  EXPECT_EQ(explain_oom({.exit_code = 143, .cancelled = true}, 1), "");
  (*cgroups)->RemoveAll();
}

TEST(SandboxConfigTest, ReadsTheOptionsWithTheirDefaults) {
  std::vector<common::Option> options =
      WithSandboxOptions({{.name = "other", .default_value = "x"}});
  auto defaults =
      common::Config::Parse(options, 0, nullptr, [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->Get("sandbox"), "bwrap") << "isolation unless unsafe-none is named";
  EXPECT_EQ(defaults->Get("other"), "x");
  SandboxOptions d = SandboxOptionsFrom(*defaults);
  EXPECT_EQ(d.limits.cpu_time, absl::Seconds(60));
  EXPECT_EQ(d.limits.memory_bytes, uint64_t{2} << 30);
  EXPECT_EQ(d.limits.processes, 256u);
  EXPECT_EQ(d.limits.file_bytes, uint64_t{128} << 20);
  EXPECT_EQ(d.first_uid, 1000000000u);
  EXPECT_EQ(d.uid_count, 1000000000u);
  EXPECT_EQ(defaults->Get("sandbox-cgroups"), "required")
      << "per-project limits unless off is named";
  CgroupRequest dc = CgroupRequestFrom(*defaults);
  EXPECT_TRUE(dc.required);
  EXPECT_EQ(dc.options.limits.memory_bytes, uint64_t{2} << 30);
  EXPECT_EQ(dc.options.limits.pids, 256u);
  EXPECT_EQ(dc.options.limits.cpu_weight, 100u);
  EXPECT_EQ(dc.options.limits.cpus, 1.0);

  const std::map<std::string, std::string> env = {{"QAI_SANDBOX", "bwrap"},
                                                  {"QAI_SANDBOX_CPU_TIME", "5s"},
                                                  {"QAI_SANDBOX_MEMORY_MB", "512"},
                                                  {"QAI_SANDBOX_PROCESSES", "64"},
                                                  {"QAI_SANDBOX_FILE_SIZE_MB", "10"},
                                                  {"QAI_SANDBOX_UIDS", "70000-70999"},
                                                  {"QAI_SANDBOX_CGROUPS", "off"},
                                                  {"QAI_SANDBOX_PROJECT_MEMORY_MB", "512"},
                                                  {"QAI_SANDBOX_PROJECT_PIDS", "100"},
                                                  {"QAI_SANDBOX_CPU_WEIGHT", "300"},
                                                  {"QAI_SANDBOX_CPUS", "0.5"}};
  auto set = common::Config::Parse(
      options, 0, nullptr, [&](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
      });
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->Get("sandbox"), "bwrap");
  SandboxOptions s = SandboxOptionsFrom(*set);
  EXPECT_EQ(s.limits.cpu_time, absl::Seconds(5));
  EXPECT_EQ(s.limits.memory_bytes, uint64_t{512} << 20);
  EXPECT_EQ(s.limits.processes, 64u);
  EXPECT_EQ(s.limits.file_bytes, uint64_t{10} << 20);
  EXPECT_EQ(s.first_uid, 70000u);
  EXPECT_EQ(s.uid_count, 1000u);
  CgroupRequest sc = CgroupRequestFrom(*set);
  EXPECT_FALSE(sc.required);
  EXPECT_EQ(sc.options.limits.memory_bytes, uint64_t{512} << 20);
  EXPECT_EQ(sc.options.limits.pids, 100u);
  EXPECT_EQ(sc.options.limits.cpu_weight, 300u);
  EXPECT_EQ(sc.options.limits.cpus, 0.5);

  for (const char* bad :
       {"--sandbox=maybe", "--sandbox-cpu-time=500ms", "--sandbox-memory-mb=10",
        "--sandbox-processes=0", "--sandbox-uids=5-4", "--sandbox-uids=0", "--sandbox-uids=x",
        "--sandbox-cgroups=auto", "--sandbox-project-memory-mb=16", "--sandbox-project-pids=4",
        "--sandbox-cpu-weight=0", "--sandbox-cpu-weight=10001", "--sandbox-cpus=0.001",
        "--sandbox-cpus=-1", "--sandbox-cpus=one"}) {
    const char* argv[] = {"qai-sandbox", bad};
    EXPECT_EQ(common::Config::Parse(options, 2, argv).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(SandboxConfigTest, ParsesUidRanges) {
  uint32_t first = 0, count = 0;
  EXPECT_TRUE(ParseUidRange("1000-1999", &first, &count));
  EXPECT_EQ(first, 1000u);
  EXPECT_EQ(count, 1000u);
  EXPECT_TRUE(ParseUidRange("65533-65534", &first, &count));
  EXPECT_EQ(first, 65533u);
  EXPECT_EQ(count, 2u);
  for (const char* bad :
       {"", "-", "0", "0-10", "10-9", "1-4294967295", "a-b", "1-", " 5", "65534", "7-7"}) {
    EXPECT_FALSE(ParseUidRange(bad, &first, &count)) << bad;
  }
}

// ChooseSandboxTest: the start-up choice, probing for real, with cgroups required (the
// default) in a directory of the test's own.
class ChooseSandboxTest : public SandboxTest {
 protected:
  void TearDown() override {
    for (const auto& sandbox : chosen_) {
      if (sandbox->cgroups() != nullptr) sandbox->cgroups()->RemoveAll();
    }
    SandboxTest::TearDown();
  }

  absl::StatusOr<SandboxChoice> Choose(std::string_view requested, SandboxOptions options,
                                       const std::string& root) {
    auto choice =
        ChooseSandbox(requested, std::move(options), root,
                      {.options = {.name = "qai-sandbox-test-" + common::NewUuid().substr(0, 8)}});
    if (choice.ok()) chosen_.push_back(choice->sandbox);
    return choice;
  }

  std::vector<std::shared_ptr<const Sandbox>> chosen_;
};

TEST_F(ChooseSandboxTest, BwrapIsTheDefaultAndUsesBubblewrap) {
  auto choice = Choose("bwrap", {}, tmp_ + "/sandboxes");
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->sandbox->mode(), SandboxMode::kBwrap);
  EXPECT_FALSE(choice->unsafe);
  EXPECT_NE(choice->sandbox->cgroups(), nullptr)
      << "cgroups are required unless QAI_SANDBOX_CGROUPS=off";
  // The probe leaves nothing behind.
  EXPECT_TRUE(fs::is_empty(tmp_ + "/sandboxes/workspaces"));
}

TEST_F(ChooseSandboxTest, UnsafeNoneRunsOnlyWhenNamedAndSaysItIsUnsafe) {
  auto choice = Choose("unsafe-none", {}, tmp_ + "/sandboxes");
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->sandbox->mode(), SandboxMode::kUnsafeNone);
  EXPECT_TRUE(choice->unsafe);
  for (const char* old : {"none", "auto", ""}) {
    EXPECT_EQ(Choose(old, {}, tmp_ + "/sandboxes").status().code(),
              absl::StatusCode::kInvalidArgument)
        << old;
  }
}

TEST_F(ChooseSandboxTest, ABwrapThatCannotRunRefusesToStartNeverFallsBack) {
  const SandboxOptions broken{.bwrap = "/bin/false"};  // as when the kernel refuses its namespaces
  auto bwrap = Choose("bwrap", broken, tmp_ + "/sandboxes");
  EXPECT_EQ(bwrap.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(bwrap.status().message(), "exit code 1")) << bwrap.status();
  EXPECT_TRUE(absl::StrContains(bwrap.status().message(), "does not start without isolation"))
      << bwrap.status();
}

TEST_F(ChooseSandboxTest, ARootTheSandboxUsersCannotReachFailsTheProbe) {
  const std::string closed = tmp_ + "/closed";
  fs::create_directories(closed);
  fs::permissions(closed, fs::perms::owner_all);
  auto choice = Choose("unsafe-none", {}, closed + "/sandboxes");
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(choice.status().message(),
                                closed + " is not searchable by the sandbox's user"))
      << choice.status();
}

}  // namespace
}  // namespace qai::sandbox
