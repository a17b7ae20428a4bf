#include "services/sandbox/workspace.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qai::sandbox {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kProject[] = "3f0c8a52-4a1e-4b8e-9a6f-2d7c1e5b9a10";

// TempDir: a fresh directory, removed with everything in it (symlinks are not followed).
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "qai-ws-test.XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
    // Commands run as the project's own user, who must be able to reach the workspace by its
    // path, as under /var/lib/qai/sandboxes.
    fs::permissions(path_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open(tmp_.path() + "/sandboxes", kProject, std::nullopt);
    ASSERT_TRUE(ws.ok()) << ws.status();
    ws_ = *std::move(ws);
    // Something outside the workspace that a symlink could point at.
    outside_ = tmp_.path() + "/outside";
    fs::create_directories(outside_);
    std::ofstream(outside_ + "/secret.txt") << "do not read";
  }

  CommandResult Run(const std::string& command, CommandOptions options = {}) {
    return ws_->Run(command, options, [] { return false; });
  }

  std::string Slurp(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  TempDir tmp_;
  std::unique_ptr<Workspace> ws_;
  std::string outside_;
};

// ProcessesWith: how many live processes have `needle` in their command line.
int ProcessesWith(const std::string& needle) {
  int found = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline, stat;
    try {  // a process that ends while it is read fails with ESRCH, which libstdc++ throws
      std::ifstream in(entry.path() / "cmdline");
      cmdline.assign(std::istreambuf_iterator<char>(in), {});
      std::ifstream stat_in(entry.path() / "stat");
      stat.assign(std::istreambuf_iterator<char>(stat_in), {});
    } catch (const std::exception&) {
      continue;
    }
    const bool zombie = stat.find(") Z ") != std::string::npos;
    if (!zombie && cmdline.find(needle) != std::string::npos) ++found;
  }
  return found;
}

// ProcessesLeftWith: ProcessesWith, once processes that were just killed had time to go: SIGKILL
// is sent at once, but a process still has to be scheduled to die, which on a busy machine
// can come after Run has returned.
int ProcessesLeftWith(const std::string& needle) {
  int found = ProcessesWith(needle);
  for (int i = 0; i < 200 && found > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    found = ProcessesWith(needle);
  }
  return found;
}

int OpenFdCount() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

bool NoChildrenLeft() { return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD; }

TEST(WorkspaceOpenTest, CreatesTheProjectDirectoryUnderTheRoot) {
  TempDir tmp;
  const std::string root = tmp.path() + "/a/b/sandboxes";
  auto ws = Workspace::Open(root, kProject, std::nullopt);
  ASSERT_TRUE(ws.ok()) << ws.status();
  EXPECT_EQ((*ws)->dir(), root + "/workspaces/" + kProject);
  struct stat st;
  ASSERT_EQ(::stat((*ws)->dir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "only its owner enters a workspace";
  // The root and the workspaces' directory can be passed but not listed or written by others;
  // the service's state cannot even be passed.
  ASSERT_EQ(::stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u);
  ASSERT_EQ(::stat((root + "/workspaces").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u);
  ASSERT_EQ(::stat((root + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // Opening again finds the same directory, files and all.
  ASSERT_TRUE((*ws)->WriteFile("kept.txt", "still here").ok());
  auto again = Workspace::Open(root, absl::AsciiStrToUpper(kProject), std::nullopt);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->dir(), (*ws)->dir());
  EXPECT_EQ(*(*again)->ReadFile("kept.txt"), "still here");
}

TEST(WorkspaceOpenTest, RefusesAProjectIdThatIsNotAUuid) {
  TempDir tmp;
  for (const char* id : {"", "..", "../etc", "x", "3f0c8a52-4a1e-4b8e-9a6f-2d7c1e5b9a1/",
                         "3f0c8a52/4a1e-4b8e-9a6f-2d7c1e5b9a10"}) {
    auto ws = Workspace::Open(tmp.path(), id, std::nullopt);
    EXPECT_EQ(ws.status().code(), absl::StatusCode::kInvalidArgument) << id;
  }
  EXPECT_EQ(Workspace::Open("", kProject, std::nullopt).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WorkspaceOpenTest, RefusesASymlinkInPlaceOfTheProjectDirectory) {
  TempDir tmp;
  fs::create_directories(tmp.path() + "/root/workspaces");
  fs::create_directory_symlink("/etc", tmp.path() + "/root/workspaces/" + kProject);
  EXPECT_FALSE(Workspace::Open(tmp.path() + "/root", kProject, std::nullopt).ok());
}

TEST_F(WorkspaceTest, WritesReadsAndOverwritesFiles) {
  ASSERT_TRUE(ws_->WriteFile("index.html", "<h1>Hi</h1>").ok());
  EXPECT_EQ(*ws_->ReadFile("index.html"), "<h1>Hi</h1>");
  ASSERT_TRUE(ws_->WriteFile("index.html", "short").ok());
  EXPECT_EQ(*ws_->ReadFile("index.html"), "short");  // truncated, not overlaid
  ASSERT_TRUE(ws_->WriteFile("src/components/deep/app.js", "let x = 1;\n").ok());
  EXPECT_EQ(*ws_->ReadFile("src/components/deep/app.js"), "let x = 1;\n");
  EXPECT_EQ(Slurp(ws_->dir() + "/src/components/deep/app.js"), "let x = 1;\n");
  ASSERT_TRUE(ws_->WriteFile("./css//site.css", "body{}").ok());
  EXPECT_EQ(*ws_->ReadFile("css/site.css"), "body{}");
  ASSERT_TRUE(ws_->WriteFile("empty.txt", "").ok());
  EXPECT_EQ(*ws_->ReadFile("empty.txt"), "");
  ASSERT_TRUE(ws_->WriteFile("café/menü.txt", "ünïcode").ok());
  EXPECT_EQ(*ws_->ReadFile("café/menü.txt"), "ünïcode");
}

TEST_F(WorkspaceTest, ReadFileReportsMissingLargeAndNonFiles) {
  EXPECT_EQ(ws_->ReadFile("missing.txt").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ws_->ReadFile("no/such/dir.txt").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(ws_->WriteFile("big.txt", std::string(2000, 'x')).ok());
  EXPECT_EQ(ws_->ReadFile("big.txt", 1999).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ws_->ReadFile("big.txt", 2000)->size(), 2000u);
  ASSERT_TRUE(ws_->WriteFile("dir/file.txt", "x").ok());
  EXPECT_EQ(ws_->ReadFile("dir").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ws_->WriteFile("dir", "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ws_->WriteFile("dir/file.txt/below", "x").code(),
            absl::StatusCode::kFailedPrecondition);
  // A FIFO must neither block nor be read.
  ASSERT_EQ(::mkfifo((ws_->dir() + "/pipe").c_str(), 0644), 0);
  EXPECT_EQ(ws_->ReadFile("pipe").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ws_->WriteFile("pipe", "x").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(WorkspaceTest, RefusesPathsOutsideTheWorkspace) {
  const std::vector<std::string> bad = {
      "",
      "/etc/passwd",
      "/tmp/x",
      "..",
      "../x",
      "a/../../x",
      "a/..",
      "x/../y",
      ".",
      "./",
      std::string("a\0b", 3),
      "bad\xff.txt",
      "\xc3",
      std::string(513, 'a'),
  };
  for (const std::string& path : bad) {
    EXPECT_EQ(ws_->WriteFile(path, "x").code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_EQ(ws_->ReadFile(path).status().code(), absl::StatusCode::kInvalidArgument) << path;
  }
  const std::string longest =
      std::string(200, 'a') + "/" + std::string(200, 'b') + "/" + std::string(110, 'c');
  ASSERT_EQ(longest.size(), 512u);
  EXPECT_TRUE(ws_->WriteFile(longest, "longest allowed").ok());
  EXPECT_FALSE(fs::exists(tmp_.path() + "/sandboxes/x"));
  EXPECT_FALSE(fs::exists("/tmp/x") && Slurp("/tmp/x") == "x");
}

TEST_F(WorkspaceTest, RefusesASymlinkedDirectoryPointingOutside) {
  // What a command like `ln -s /etc out` leaves behind.
  ASSERT_EQ(Run("ln -s " + outside_ + " out && mkdir -p real && ln -s ../../.. real/up").exit_code,
            0);
  for (const char* path :
       {"out/secret.txt", "out/new.txt", "real/up/outside/secret.txt", "out/sub/new.txt"}) {
    EXPECT_EQ(ws_->ReadFile(path).status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_EQ(ws_->WriteFile(path, "pwned").code(), absl::StatusCode::kInvalidArgument) << path;
  }
  EXPECT_EQ(Slurp(outside_ + "/secret.txt"), "do not read");
  EXPECT_FALSE(fs::exists(outside_ + "/new.txt"));
  EXPECT_FALSE(fs::exists(outside_ + "/sub"));
}

TEST_F(WorkspaceTest, RefusesASymlinkedFile) {
  ASSERT_EQ(Run("ln -s " + outside_ + "/secret.txt link.txt && ln -s " + outside_ +
                "/created.txt dangling.txt")
                .exit_code,
            0);
  EXPECT_EQ(ws_->ReadFile("link.txt").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ws_->WriteFile("link.txt", "pwned").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ws_->WriteFile("dangling.txt", "pwned").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Slurp(outside_ + "/secret.txt"), "do not read");
  EXPECT_FALSE(fs::exists(outside_ + "/created.txt"));
}

TEST_F(WorkspaceTest, RunReturnsOutputAndExitCode) {
  CommandResult r = Run("echo hello; printf 'no newline'");
  EXPECT_EQ(r.output, "hello\nno newline");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(r.truncated || r.timed_out || r.cancelled);
  EXPECT_EQ(Run("exit 3").exit_code, 3);
  EXPECT_EQ(Run("false").exit_code, 1);
  EXPECT_EQ(Run("no-such-command-qai").exit_code, 127);
  EXPECT_EQ(Run("kill -9 $$").exit_code, 128 + 9);
}

TEST_F(WorkspaceTest, RunCapturesStderrInterleaved) {
  CommandResult r = Run("echo out; echo err >&2; echo out2");
  EXPECT_EQ(r.output, "out\nerr\nout2\n");
}

TEST_F(WorkspaceTest, RunWorksInTheWorkspaceWithNothingOnStdin) {
  ASSERT_TRUE(ws_->WriteFile("a.txt", "A").ok());
  EXPECT_EQ(Run("pwd").output, ws_->dir() + "\n");
  EXPECT_EQ(Run("cat a.txt").output, "A");
  EXPECT_EQ(Run("echo made > b.txt").exit_code, 0);
  EXPECT_EQ(*ws_->ReadFile("b.txt"), "made\n");
  // stdin is /dev/null: a command that reads it ends at once.
  CommandResult r = Run("cat; echo done", {.timeout = absl::Seconds(5)});
  EXPECT_EQ(r.output, "done\n");
  EXPECT_FALSE(r.timed_out);
}

TEST_F(WorkspaceTest, RunGivesCommandsAMinimalEnvironmentWithoutSecrets) {
  ::setenv("QAI_JWT_SECRET", "jwt-secret-value", 1);
  ::setenv("QAI_API_KEY", "api-key-value", 1);
  ::setenv("QAI_DATABASE_URL", "postgresql://user:pw@db/qai", 1);
  CommandResult r = Run("env");
  ::unsetenv("QAI_JWT_SECRET");
  ::unsetenv("QAI_API_KEY");
  ::unsetenv("QAI_DATABASE_URL");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(absl::StrContains(r.output, "QAI_")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "jwt-secret-value"));
  EXPECT_FALSE(absl::StrContains(r.output, "api-key-value"));
  EXPECT_FALSE(absl::StrContains(r.output, "pw@db"));
  EXPECT_TRUE(absl::StrContains(r.output, "HOME=" + ws_->dir() + "\n")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "LANG=C.UTF-8\n"));
  EXPECT_TRUE(absl::StrContains(r.output, "TERM=dumb\n"));
  EXPECT_TRUE(absl::StrContains(
      r.output, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"));
}

TEST_F(WorkspaceTest, RunTimeoutKillsTheCommand) {
  const auto start = Clock::now();
  CommandResult r = Run("echo started; sleep 30", {.timeout = absl::Milliseconds(300)});
  const auto elapsed = Clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.cancelled);
  EXPECT_EQ(r.output, "started\n");
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  EXPECT_GE(elapsed, std::chrono::milliseconds(300));
  EXPECT_TRUE(NoChildrenLeft());
}

TEST_F(WorkspaceTest, RunTimeoutKillsTheWholeGroupEvenWhenSigtermIsIgnored) {
  const auto start = Clock::now();
  CommandResult r = Run("trap '' TERM; sleep 30.4242 & sleep 30.4243; echo never",
                        {.timeout = absl::Milliseconds(200)});
  const auto elapsed = Clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);  // bash ignored SIGTERM: SIGKILL a second later
  EXPECT_FALSE(absl::StrContains(r.output, "never"));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
  EXPECT_EQ(ProcessesLeftWith("30.4242"), 0);
  EXPECT_EQ(ProcessesLeftWith("30.4243"), 0);
  EXPECT_TRUE(NoChildrenLeft());
}

TEST_F(WorkspaceTest, RunCancelKillsARunningCommand) {
  const auto start = Clock::now();
  std::atomic<int> polls = 0;
  CommandResult r = ws_->Run("sleep 30.5151", {.timeout = absl::Seconds(60)}, [&] {
    ++polls;
    return Clock::now() - start > std::chrono::milliseconds(300);
  });
  const auto elapsed = Clock::now() - start;
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  EXPECT_LT(elapsed, std::chrono::milliseconds(1300));
  EXPECT_GT(polls.load(), 3);
  EXPECT_EQ(ProcessesLeftWith("30.5151"), 0);
  EXPECT_TRUE(NoChildrenLeft());
}

TEST_F(WorkspaceTest, RunWithoutACancelCallbackStillWorks) {
  EXPECT_EQ(ws_->Run("echo ok", {}, nullptr).output, "ok\n");
}

TEST_F(WorkspaceTest, RunCapsOutputAndKeepsDraining) {
  const auto start = Clock::now();
  CommandResult r = Run("yes | head -c 10000000; echo; echo tail-marker", {.max_output = 64 << 10});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.output.size(), size_t{64 << 10});
  EXPECT_EQ(r.output.substr(0, 6), "y\ny\ny\n");
  EXPECT_FALSE(absl::StrContains(r.output, "tail-marker"));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(20));
  CommandResult small = Run("printf 0123456789", {.max_output = 4});
  EXPECT_EQ(small.output, "0123");
  EXPECT_TRUE(small.truncated);
  CommandResult exact = Run("printf 0123", {.max_output = 4});
  EXPECT_EQ(exact.output, "0123");
  EXPECT_FALSE(exact.truncated);
}

TEST_F(WorkspaceTest, RunKillsACommandThatPrintsWithoutEnd) {
  const auto start = Clock::now();
  CommandResult r =
      Run("yes", {.timeout = absl::Seconds(30), .max_output = 6, .max_output_read = 1 << 20});
  EXPECT_TRUE(r.output_overflow);
  EXPECT_TRUE(r.truncated);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_TRUE(absl::EndsWith(r.output, "y\ny\ny\n")) << r.output;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(NoChildrenLeft());
}

TEST_F(WorkspaceTest, RunMakesOutputValidUtf8) {
  CommandResult r = Run(R"(printf 'ok \xff\xfe caf\xc3\xa9 nul:\x00.')");
  EXPECT_EQ(r.output, "ok \xEF\xBF\xBD\xEF\xBF\xBD caf\xC3\xA9 nul:\xEF\xBF\xBD.");
  // A cap that falls inside a character does not leave half of it.
  CommandResult cut = Run(R"(printf 'ab\xc3\xa9')", {.max_output = 3});
  EXPECT_TRUE(cut.truncated);
  EXPECT_LE(cut.output.size(), 3u);
  EXPECT_EQ(cut.output.substr(0, 2), "ab");
}

TEST_F(WorkspaceTest, RunDoesNotWaitForBackgroundChildren) {
  const auto start = Clock::now();
  CommandResult r = Run("sleep 100.6161 & echo started", {.timeout = absl::Seconds(30)});
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "started\n");
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  EXPECT_EQ(ProcessesLeftWith("100.6161"), 0);
  // Also one that closed its output: it must not outlive the command either.
  r = Run("sleep 100.7171 >/dev/null 2>&1 & echo bye");
  EXPECT_EQ(r.output, "bye\n");
  EXPECT_EQ(ProcessesLeftWith("100.7171"), 0);
  EXPECT_TRUE(NoChildrenLeft());
}

// A replica holding thousands of watchers is a big process; starting a command must not cost
// more for that (fork copied the page tables: about 20 ms per command at 512 MiB).
TEST_F(WorkspaceTest, RunDoesNotCopyTheServicesMemoryToStartACommand) {
  // A fork() would mark every page of a big service (one holding 10,000 watchers) copy-on-write
  // for each command, and the service would then fault on each page it writes. posix_spawn
  // shares the memory until exec: writing every page afterwards costs no faults. Counting
  // faults (not timing) keeps this exact on a busy machine.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<char> heap(size_t{256} << 20, 1);  // touched, so resident and mapped
  auto minor_faults = [] {
    struct rusage usage;
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
  };
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Run("true").exit_code, 0);
  const long before = minor_faults();
  for (size_t i = 0; i < heap.size(); i += page) heap[i] = 2;
  const long faults = minor_faults() - before;
  EXPECT_LT(faults, static_cast<long>(heap.size() / page / 10))
      << faults << " faults writing " << heap.size() / page << " pages after starting commands";
}

TEST_F(WorkspaceTest, RunLeaksNoDescriptorsIntoCommandsOrTheService) {
  // A descriptor without O_CLOEXEC, as a library might leave one.
  const int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  const int before = OpenFdCount();
  CommandResult r = Run("ls /proc/$$/fd; true");  // `; true`: bash stays, ls lists its descriptors
  EXPECT_EQ(r.exit_code, 0);
  std::set<std::string> fds;
  for (absl::string_view line : absl::StrSplit(r.output, '\n', absl::SkipEmpty()))
    fds.emplace(line);
  EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2"})) << r.output;
  Run("sleep 5", {.timeout = absl::Milliseconds(100)});
  ws_->Run("sleep 5", {}, [] { return true; });
  Run("sleep 50 &");
  EXPECT_EQ(OpenFdCount(), before);
  ::close(leaky);
  EXPECT_TRUE(NoChildrenLeft());
}

TEST_F(WorkspaceTest, RunRefusesACommandWithNul) {
  CommandResult r = Run(std::string("echo a\0rm -rf /", 15));
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(WorkspaceTest, SnapshotHasTheTextFilesOnly) {
  ASSERT_TRUE(ws_->WriteFile("index.html", "<h1>Hi</h1>").ok());
  ASSERT_TRUE(ws_->WriteFile("css/site.css", "body{}").ok());
  ASSERT_TRUE(ws_->WriteFile("a/b/c/deep.txt", "deep").ok());
  ASSERT_TRUE(ws_->WriteFile(".git/HEAD", "ref: refs/heads/main").ok());
  ASSERT_TRUE(ws_->WriteFile("node_modules/x/index.js", "module.exports = 1;").ok());
  ASSERT_TRUE(ws_->WriteFile("sub/node_modules/y.js", "nested too").ok());
  ASSERT_TRUE(ws_->WriteFile("image.png", std::string("\x89PNG\r\n\x1a\n\0\0\0", 11)).ok());
  ASSERT_TRUE(ws_->WriteFile("latin1.txt", "caf\xe9").ok());
  ASSERT_TRUE(ws_->WriteFile("big-binary.bin", std::string(100000, '\0')).ok());
  ASSERT_TRUE(ws_->WriteFile("empty.txt", "").ok());
  ASSERT_EQ(Run("ln -s " + outside_ + " out && ln -s " + outside_ +
                "/secret.txt secret.txt && ln -s index.html alias.html && mkfifo fifo")
                .exit_code,
            0);
  auto snapshot = ws_->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  const std::map<std::string, std::string> expected = {
      {"index.html", "<h1>Hi</h1>"},
      {"css/site.css", "body{}"},
      {"a/b/c/deep.txt", "deep"},
      {"empty.txt", ""},
  };
  EXPECT_EQ(*snapshot, expected);
}

TEST_F(WorkspaceTest, SnapshotEnforcesItsLimits) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(ws_->WriteFile(absl::StrCat("f", i, ".txt"), "0123456789").ok());
  EXPECT_TRUE(ws_->Snapshot({.max_files = 5, .max_bytes = 50}).ok());
  auto files = ws_->Snapshot({.max_files = 4, .max_bytes = 1000});
  EXPECT_EQ(files.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(files.status().message(), "more than 4 files")) << files.status();
  auto bytes = ws_->Snapshot({.max_files = 100, .max_bytes = 49});
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(bytes.status().message(), "more than 49 bytes")) << bytes.status();
  // One large text file over the limit, read past the sniffed prefix.
  ASSERT_TRUE(ws_->WriteFile("large.txt", std::string(20000, 'x')).ok());
  EXPECT_EQ(ws_->Snapshot({.max_files = 100, .max_bytes = 15000}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto all = ws_->Snapshot({.max_files = 100, .max_bytes = 20050});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->at("large.txt").size(), 20000u);
  // Binary files do not count: they are not kept.
  ASSERT_TRUE(ws_->WriteFile("blob.bin", std::string(50000, '\0')).ok());
  EXPECT_TRUE(ws_->Snapshot({.max_files = 6, .max_bytes = 20050}).ok());
}

}  // namespace
}  // namespace qai::sandbox
