// The projects' cgroups for real, on whichever hierarchy this machine has (they need root):
// the process count, memory and CPU limits of all of a project's processes together, in each
// mode, other projects unaffected, nothing left once a command ends (a process that left its
// process group included), purges; and the start-up choice, with hierarchies that cannot be
// used described by fake /proc files.

#include "services/sandbox/cgroups.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/db_pool.h"
#include "common/ids.h"
#include "services/sandbox/proc_stat.h"
#include "services/sandbox/sandbox.h"
#include "services/sandbox/sandbox_setup.h"
#include "services/sandbox/store.h"
#include "services/sandbox/test_peak.h"
#include "services/sandbox/workspace.h"
#include "services/sandbox/workspaces.h"
#include "tests/support/pg_server.h"

namespace qai::sandbox {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Slurp: the file's content; "" when it cannot be read (a /proc file of a process that ended
// while it was read fails with ESRCH, which libstdc++'s filebuf throws).
std::string Slurp(const std::string& path) {
  try {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  } catch (const std::exception&) {
    return "";
  }
}

void Spew(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// ProcessesOf: the live (not zombie) processes of uid.
int ProcessesOf(uid_t uid) {
  int found = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    struct stat st;
    if (name.find_first_not_of("0123456789") != std::string::npos ||
        ::stat(entry.path().c_str(), &st) != 0 || st.st_uid != uid) {
      continue;
    }
    if (Slurp(entry.path() / "stat").find(") Z ") == std::string::npos) ++found;
  }
  return found;
}

// HasSubdirs: whether a cgroup has children (its own files are always there).
bool HasSubdirs(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory()) return true;
  }
  return false;
}

uint64_t FieldOf(const std::string& path, std::string_view key) {
  for (absl::string_view line : absl::StrSplit(Slurp(path), '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kv.first == key) return std::stoull(kv.second);
  }
  return 0;
}

// ThisInstance: the test process as Cgroups names its instance, "<pid>-<start time>".
std::string ThisInstance() {
  return absl::StrCat(::getpid(), "-", ReadProcStat(::getpid()).value().start_time);
}

ProjectLimits SmallLimits() {
  return {.memory_bytes = uint64_t{128} << 20, .pids = 32, .cpu_weight = 100, .cpus = 0};
}

// CgroupTest: the projects' cgroups of this test alone (a directory of its own below the test
// process's cgroups), a sandbox using them, and projects' workspaces with users of their own;
// TearDown leaves neither cgroups nor processes behind.
class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "the cgroup tests need root: cgroups are root's to make";
    std::string pattern = (fs::temp_directory_path() / "qai-cgroup-test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    tmp_ = pattern;
    fs::permissions(tmp_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  }

  void TearDown() override {
    if (cgroups_ != nullptr) {
      cgroups_->RemoveAll();
      for (const std::string& base : Bases()) EXPECT_FALSE(fs::exists(base)) << base << " stays";
    }
    for (uid_t uid : uids_) {
      for (int i = 0; i < 3 && ProcessesOf(uid) > 0; ++i) KillAllOf(uid);
    }
    std::error_code ignored;
    fs::remove_all(tmp_, ignored);
  }

  // Start: cgroups with limits, and a sandbox of mode in them whose per-process limits stay
  // out of the way (so that what stops a command is the cgroup's).
  void Start(SandboxMode mode, ProjectLimits limits = SmallLimits()) {
    if (cgroups_ != nullptr) cgroups_->RemoveAll();
    auto cgroups = Cgroups::SetUp({.limits = limits, .name = name_});
    ASSERT_TRUE(cgroups.ok()) << cgroups.status();
    cgroups_ = *cgroups;
    auto sandbox = Sandbox::Create({.mode = mode,
                                    .limits = {.cpu_time = absl::Seconds(30),
                                               .memory_bytes = uint64_t{4} << 30,
                                               .processes = 10000,
                                               .file_bytes = uint64_t{16} << 20},
                                    .cgroups = cgroups_});
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    sandbox_ = *sandbox;
    project_ = common::NewUuid();
    ws_ = Open(project_);
    ASSERT_NE(ws_, nullptr);
  }

  std::unique_ptr<Workspace> Open(const std::string& project) {
    const auto uid =
        static_cast<uid_t>(sandbox_->options().first_uid +
                           absl::Uniform<uint32_t>(bitgen_, 0, sandbox_->options().uid_count));
    uids_.insert(uid);
    users_[project] = uid;
    auto ws = Workspace::Open(tmp_ + "/sandboxes", project, SandboxUser{.uid = uid, .gid = uid});
    EXPECT_TRUE(ws.ok()) << ws.status();
    return ws.ok() ? *std::move(ws) : nullptr;
  }

  CommandResult Run(const std::string& command, absl::Duration timeout = absl::Seconds(20)) {
    return ws_->Run(command, {.timeout = timeout, .sandbox = sandbox_}, nullptr);
  }

  uid_t Uid() const { return users_.at(project_); }

  std::vector<std::string> Bases() const {
    std::set<std::string> bases;
    for (const char* c : {"cpu", "cpuacct", "memory", "pids"}) {
      const std::string dir = cgroups_->Dir(project_.empty() ? common::NewUuid() : project_, c);
      if (!dir.empty()) bases.insert(fs::path(dir).parent_path().parent_path().string());
    }
    return {bases.begin(), bases.end()};
  }

  static void KillAllOf(uid_t uid) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename();
      struct stat st;
      if (name.find_first_not_of("0123456789") == std::string::npos &&
          ::stat(entry.path().c_str(), &st) == 0 && st.st_uid == uid) {
        ::kill(std::stoi(name), SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::string tmp_;
  const std::string name_ = "qai-sandbox-test-" + common::NewUuid().substr(0, 8);
  std::shared_ptr<Cgroups> cgroups_;
  std::shared_ptr<const Sandbox> sandbox_;
  std::string project_;
  std::unique_ptr<Workspace> ws_;
  std::set<uid_t> uids_;
  std::map<std::string, uid_t> users_;
  absl::BitGen bitgen_;
};

// What the cgroups hold in each mode.
class CgroupLimitTest : public CgroupTest, public ::testing::WithParamInterface<SandboxMode> {};

INSTANTIATE_TEST_SUITE_P(Sandbox, CgroupLimitTest,
                         ::testing::Values(SandboxMode::kBwrap, SandboxMode::kUnsafeNone),
                         [](const auto& info) {
                           return info.param == SandboxMode::kBwrap ? "bwrap" : "unsafe_none";
                         });

TEST_P(CgroupLimitTest, AThousandBackgroundSleepsStopAtTheProjectsProcessLimitAndOthersRunOn) {
  Start(GetParam());
  const std::string pids_dir = cgroups_->Dir(project_, "pids");
  Peak peak([this] { return ProcessesOf(Uid()); });
  CommandResult r;
  std::thread bomb(
      [&] { r = Run("for i in $(seq 1000); do sleep 1000 & done; wait", absl::Seconds(3)); });
  // Meanwhile another project starts twenty processes of its own as if nothing happened.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::string other = common::NewUuid();
  std::unique_ptr<Workspace> other_ws = Open(other);
  CommandResult o = other_ws->Run("for i in $(seq 20); do sleep 0.2 & done; wait; echo fine",
                                  {.timeout = absl::Seconds(10), .sandbox = sandbox_}, nullptr);
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_EQ(o.output, "fine\n");
  bomb.join();
  EXPECT_LE(peak.Stop(), 32);
  EXPECT_GT(FieldOf(pids_dir + "/pids.events", "max"), 0u) << "no fork was refused by the cgroup";
  EXPECT_TRUE(r.timed_out);
  EXPECT_TRUE(absl::StrContains(r.output, "Resource temporarily unavailable")) << r.output;
  // Nothing is left: not in the cgroup, not as the project's user.
  EXPECT_TRUE(cgroups_->Processes(project_).empty());
  EXPECT_EQ(ProcessesOf(Uid()), 0);
  EXPECT_TRUE(cgroups_->Processes(other).empty());
  EXPECT_TRUE(cgroups_->Remove(other).ok());
}

TEST_P(CgroupLimitTest, AForkBombStopsAtTheProjectsProcessLimit) {
  Start(GetParam());
  Peak peak([this] { return ProcessesOf(Uid()); });
  CommandResult r = Run("bomb() { bomb | bomb & bomb; }; bomb", absl::Seconds(2));
  EXPECT_LE(peak.Stop(), 32);
  EXPECT_GT(FieldOf(cgroups_->Dir(project_, "pids") + "/pids.events", "max"), 0u);
  EXPECT_TRUE(r.timed_out);
  EXPECT_TRUE(cgroups_->Processes(project_).empty());
  EXPECT_EQ(ProcessesOf(Uid()), 0);
}

// Each allocates 77 MiB (60% of the limit) and holds it for a while.
constexpr char kHog[] = "python3 -c 'import time; b = b\"x\" * (77 << 20); time.sleep(1.5)'";

TEST_P(CgroupLimitTest, TwoProcessesOverTheProjectsMemoryTogetherAreOomKilledAndTold) {
  Start(GetParam());
  CommandResult alone = Run(absl::StrCat(kHog, " && echo alone"));
  EXPECT_EQ(alone.exit_code, 0) << alone.output;
  EXPECT_EQ(alone.output, "alone\n");
  EXPECT_EQ(cgroups_->OomKills(project_), 0u);

  CommandResult both = Run(absl::StrCat(kHog, " & ", kHog, " & wait"));
  EXPECT_GE(cgroups_->OomKills(project_), 1u);
  EXPECT_TRUE(
      absl::StartsWith(both.output, absl::StrCat("[sandbox] exit code ", both.exit_code, ": ")))
      << both.output;
  EXPECT_TRUE(absl::StrContains(
      both.output, "killed: the project's commands used more than 128 MiB of memory together\n"))
      << both.output;
  EXPECT_EQ(both.explanation, both.output.substr(0, both.explanation.size()));
  // The next command has its memory back.
  CommandResult after = Run(absl::StrCat(kHog, " && echo again"));
  EXPECT_EQ(after.output, "again\n");
}

TEST_P(CgroupLimitTest, ACpuLimitOfAFifthOfACoreHolds) {
  ProjectLimits limits = SmallLimits();
  limits.cpus = 0.2;
  Start(GetParam(), limits);
  ASSERT_TRUE(cgroups_->Prepare(project_).ok());
  absl::StatusOr<absl::Duration> before = cgroups_->CpuUsage(project_);
  ASSERT_TRUE(before.ok()) << before.status();
  CommandResult r = Run("while :; do :; done", absl::Seconds(2));
  EXPECT_TRUE(r.timed_out);
  absl::StatusOr<absl::Duration> after = cgroups_->CpuUsage(project_);
  ASSERT_TRUE(after.ok()) << after.status();
  // About 0.4 s of the 2 s (up to a period's quota more at each end); a busy machine gives less.
  const absl::Duration used = *after - *before;
  EXPECT_GT(used, absl::Milliseconds(50));
  EXPECT_LT(used, absl::Milliseconds(800));
}

TEST_F(CgroupTest, AProcessThatLeftItsGroupIsKilledAtTheEndInUnsafeNone) {
  Start(SandboxMode::kUnsafeNone);
  const auto start = Clock::now();
  // It keeps the output open, too: the command would otherwise wait for it.
  CommandResult r = Run("setsid sleep 1000 & sleep 0.3; echo started");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "started\n");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
  EXPECT_TRUE(cgroups_->Processes(project_).empty());
  EXPECT_EQ(ProcessesOf(Uid()), 0);
}

TEST_F(CgroupTest, LimitsAreWrittenAndCommandsCannotLeaveTheirCgroup) {
  ProjectLimits limits{
      .memory_bytes = uint64_t{256} << 20, .pids = 64, .cpu_weight = 50, .cpus = 1.5};
  Start(SandboxMode::kUnsafeNone, limits);
  const std::string memory = cgroups_->Dir(project_, "memory"),
                    pids = cgroups_->Dir(project_, "pids"), cpu = cgroups_->Dir(project_, "cpu");
  EXPECT_FALSE(fs::exists(pids)) << "made on the first command";
  // The command sees itself in its project's cgroup, and cannot move out of it.
  CommandResult r = Run("cat /proc/self/cgroup; echo $$ > " +
                        fs::path(pids).parent_path().string() + "/cgroup.procs");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.output, "/" + project_ + "\n")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "Permission denied")) << r.output;
  if (cgroups_->version() == CgroupVersion::kV2) {
    EXPECT_EQ(Slurp(memory + "/memory.max"), "268435456\n");
    EXPECT_EQ(Slurp(pids + "/pids.max"), "64\n");
    EXPECT_EQ(Slurp(cpu + "/cpu.weight"), "50\n");
    EXPECT_EQ(Slurp(cpu + "/cpu.max"), "150000 100000\n");
  } else {
    EXPECT_EQ(Slurp(memory + "/memory.limit_in_bytes"), "268435456\n");
    if (fs::exists(memory + "/memory.memsw.limit_in_bytes")) {
      EXPECT_EQ(Slurp(memory + "/memory.memsw.limit_in_bytes"), "268435456\n");
    }
    EXPECT_EQ(Slurp(pids + "/pids.max"), "64\n");
    EXPECT_EQ(Slurp(cpu + "/cpu.shares"), "512\n");
    EXPECT_EQ(Slurp(cpu + "/cpu.cfs_quota_us"), "150000\n");
  }
  // A project id is a UUID, never a path.
  EXPECT_EQ(cgroups_->Prepare("../../etc").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(cgroups_->Remove(project_).ok());
  EXPECT_FALSE(fs::exists(pids));
  EXPECT_FALSE(fs::exists(memory));
  EXPECT_TRUE(cgroups_->Remove(project_).ok()) << "removing a missing one is fine";
}

TEST_F(CgroupTest, AJoinThatFailsRunsNothing) {
  Start(SandboxMode::kUnsafeNone);
  ProcessSpec spec = sandbox_->Wrap(ws_->dir(), SandboxUser{.uid = Uid(), .gid = Uid()}, "echo ran",
                                    {tmp_ + "/no-such-cgroup/cgroup.procs"});
  CommandResult r = RunProcess(spec, nullptr);
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_TRUE(
      absl::StrContains(r.output, "[sandbox] the command could not join its project's cgroup"))
      << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "ran")) << r.output;
}

TEST_F(CgroupTest, APurgeRemovesTheProjectsCgroupAndWhatRunsInIt) {
  Start(SandboxMode::kUnsafeNone);
  auto db =
      common::DbPool::Create({.url = testing::PgServer::Shared().CreateDatabase(), .size = 2});
  ASSERT_TRUE(db.ok()) << db.status();
  SandboxStore store(db->get());
  Workspaces workspaces({.root = tmp_ + "/sandboxes", .sandbox = sandbox_}, &store);
  const std::string project = common::NewUuid();
  ASSERT_TRUE(workspaces.Open(project, 1).ok());
  absl::StatusOr<CommandResult> r =
      workspaces.Run(project, 1, "echo hi", {.timeout = absl::Seconds(10)}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->output, "hi\n");
  const std::string dir = cgroups_->Dir(project, "pids");
  EXPECT_TRUE(fs::exists(dir));
  ASSERT_TRUE(workspaces.Purge(project).ok());
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(CgroupTest, SetUpFindsThisMachinesHierarchyAndSaysWhichOne) {
  Start(SandboxMode::kUnsafeNone);
  const std::string described = cgroups_->Describe().dump();
  EXPECT_TRUE(absl::StrContains(
      described, absl::StrCat("\"version\":\"", CgroupVersionName(cgroups_->version()), "\"")))
      << described;
  for (const std::string& base : Bases()) {
    EXPECT_TRUE(absl::EndsWith(base, "/" + name_)) << base;
    EXPECT_TRUE(fs::is_directory(base + "/" + ThisInstance())) << base;
  }
}

TEST_F(CgroupTest, AnInstanceThatIsGoneHasItsCgroupsAndProcessesRemovedByTheNext) {
  Start(SandboxMode::kUnsafeNone);
  // What a killed instance left: a project's cgroups, a process still in them (in unsafe-none
  // mode one can outlive the service), and it named after a process that no longer runs.
  const std::string gone = absl::StrCat(::getpid(), "-1"), project = common::NewUuid();
  const pid_t survivor = ::fork();
  ASSERT_GE(survivor, 0);
  if (survivor == 0) {
    ::execl("/bin/sleep", "sleep", "1000", nullptr);
    ::_exit(127);
  }
  for (const std::string& base : Bases()) {
    const std::string dir = absl::StrCat(base, "/", gone, "/", project);
    ASSERT_TRUE(fs::create_directories(dir)) << dir;
    Spew(dir + "/cgroup.procs", absl::StrCat(survivor));
    fs::create_directories(base + "/not-an-instance");
  }
  auto successor = Cgroups::SetUp({.limits = SmallLimits(), .name = name_});
  ASSERT_TRUE(successor.ok()) << successor.status();
  int status = 0;
  ASSERT_EQ(::waitpid(survivor, &status, 0), survivor);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  for (const std::string& base : Bases()) {
    EXPECT_FALSE(fs::exists(absl::StrCat(base, "/", gone))) << base;
    EXPECT_TRUE(fs::exists(base + "/" + ThisInstance())) << "a live instance's stays";
    EXPECT_TRUE(fs::exists(base + "/not-an-instance")) << "not ours to judge";
    fs::remove(base + "/not-an-instance");
  }
}

// FakeMachine: /proc/self files describing another machine, with its cgroup directories under
// a temporary directory (plain files, which Cgroups::SetUp reads and writes as it would the
// kernel's).
class FakeMachineTest : public CgroupTest {
 protected:
  CgroupOptions Fake(const std::string& mountinfo, const std::string& self) {
    Spew(tmp_ + "/mountinfo", mountinfo);
    Spew(tmp_ + "/cgroup", self);
    return {.limits = SmallLimits(),
            .name = name_,
            .mountinfo = tmp_ + "/mountinfo",
            .self_cgroup = tmp_ + "/cgroup"};
  }
};

TEST_F(FakeMachineTest, NoUsableHierarchyIsAnErrorThatSaysWhy) {
  // The unified hierarchy of a v1 host has no controllers to give.
  const std::string v2 = tmp_ + "/unified";
  fs::create_directories(v2);
  Spew(v2 + "/cgroup.controllers", "\n");
  auto none = Cgroups::SetUp(
      Fake(absl::StrCat("41 31 0:38 / ", v2, " rw,relatime - cgroup2 cgroup2 rw\n"), "0::/\n"));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(none.status().message(), "not all of cpu, memory and pids"))
      << none.status();
  EXPECT_TRUE(absl::StrContains(
      none.status().message(),
      "no cgroup v1 hierarchy holding the service is mounted for cpu, memory, pids"))
      << none.status();
  // Nothing mounted at all.
  auto nothing = Cgroups::SetUp(Fake("", ""));
  EXPECT_EQ(nothing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(nothing.status().message(), "no cgroup v2 hierarchy"))
      << nothing.status();
}

TEST_F(FakeMachineTest, AHierarchyThatCannotBeWrittenIsAnError) {
  // v1 mounts where the projects' directory cannot be made (a file is in its way, as a
  // read-only mount or a missing permission would refuse it).
  std::string mountinfo;
  for (const char* c : {"cpu", "memory", "pids"}) {
    fs::create_directories(tmp_ + "/" + c);
    Spew(absl::StrCat(tmp_, "/", c, "/", name_), "not a directory");
    absl::StrAppend(&mountinfo, "32 31 0:29 / ", tmp_, "/", c, " rw - cgroup cgroup rw,", c, "\n");
  }
  auto set_up = Cgroups::SetUp(Fake(mountinfo, "3:pids:/\n2:memory:/\n1:cpu:/\n"));
  EXPECT_EQ(set_up.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(set_up.status().message(), "cannot create " + tmp_))
      << set_up.status();
}

TEST_F(FakeMachineTest, OnV2TheServiceMovesIntoALeafAndControllersAreEnabled) {
  // A pod's cgroup namespace: its cgroup is the root of what it sees, and holds processes.
  const std::string own = tmp_ + "/cgroup2";
  fs::create_directories(own + "/service");
  Spew(own + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  Spew(own + "/cgroup.subtree_control", "");
  Spew(own + "/cgroup.type", "domain\n");
  Spew(own + "/cgroup.procs", "");  // (a fake cannot move them out; see the last case)
  // What the kernel would show in the directories the service makes.
  const std::string instance = absl::StrCat(own, "/", name_, "/", ThisInstance());
  fs::create_directories(instance);
  Spew(own + "/" + name_ + "/cgroup.subtree_control", "");
  Spew(instance + "/cgroup.subtree_control", "");
  Spew(own + "/service/cgroup.controllers", "cpu memory pids\n");
  const std::string mountinfo =
      absl::StrCat("1201 1190 0:26 / ", own, " rw,nosuid - cgroup2 cgroup rw\n");
  auto set_up = Cgroups::SetUp(Fake(mountinfo, "0::/\n"));
  ASSERT_TRUE(set_up.ok()) << set_up.status();
  EXPECT_EQ((*set_up)->version(), CgroupVersion::kV2);
  EXPECT_EQ(Slurp(own + "/cgroup.subtree_control"), "+cpu +memory +pids");
  EXPECT_EQ(Slurp(own + "/" + name_ + "/cgroup.subtree_control"), "+cpu +memory +pids");
  EXPECT_EQ(Slurp(instance + "/cgroup.subtree_control"), "+cpu +memory +pids");
  const std::string project = common::NewUuid();
  EXPECT_EQ((*set_up)->Dir(project, "memory"), instance + "/" + project);
  EXPECT_EQ((*set_up)->Dir(project, "pids"), (*set_up)->Dir(project, "cpu"));

  // Restarted in the leaf its predecessor moved it into, it finds the same place.
  Spew(own + "/cgroup.subtree_control", "cpu memory pids\n");
  auto again = Cgroups::SetUp(Fake(mountinfo, "0::/service\n"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->Dir(project, "memory"), instance + "/" + project);

  // Processes that do not leave (a fake's cgroup.procs keeps them) are an error, not a loop.
  Spew(own + "/cgroup.subtree_control", "");
  Spew(own + "/cgroup.procs", "1\n");
  Spew(own + "/service/cgroup.procs", "");
  auto stuck = Cgroups::SetUp(Fake(mountinfo, "0::/\n"));
  EXPECT_EQ(stuck.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(stuck.status().message(), "processes keep appearing"))
      << stuck.status();
  EXPECT_EQ(Slurp(own + "/service/cgroup.procs"), "1");
}

TEST_F(FakeMachineTest, LimitsOutOfBoundsAreRefused) {
  for (ProjectLimits bad : {ProjectLimits{.memory_bytes = 1 << 20}, ProjectLimits{.pids = 2},
                            ProjectLimits{.cpu_weight = 0}, ProjectLimits{.cpu_weight = 10001},
                            ProjectLimits{.cpus = 0.001}, ProjectLimits{.cpus = -1}}) {
    EXPECT_EQ(Cgroups::SetUp({.limits = bad, .name = name_}).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  for (const char* name : {"", "a/b", "..", "service"}) {
    EXPECT_EQ(Cgroups::SetUp({.name = name}).status().code(), absl::StatusCode::kInvalidArgument)
        << name;
  }
}

// The start-up choice: cgroups required unless `off` is named, and the version logged.
TEST_F(FakeMachineTest, StartUpLogsTheVersionAndRefusesWithoutCgroupsUnlessOff) {
  ::testing::internal::CaptureStderr();
  auto required = ChooseSandbox("unsafe-none", {}, tmp_ + "/sandboxes",
                                {.options = {.limits = SmallLimits(), .name = name_}});
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(required.ok()) << required.status() << log;
  cgroups_ = required->sandbox->options().cgroups;  // TearDown removes them
  Cgroups* cgroups = cgroups_.get();
  ASSERT_NE(cgroups, nullptr);
  EXPECT_TRUE(absl::StrContains(
      log, absl::StrCat("\"msg\":\"sandbox: cgroup ", CgroupVersionName(cgroups->version()),
                        ": each project's processes are limited together\"")))
      << log;
  EXPECT_TRUE(absl::StrContains(
      log, absl::StrCat("\"version\":\"", CgroupVersionName(cgroups->version()), "\"")))
      << log;
  // The probe's project cgroup is gone again.
  const std::string base = fs::path(cgroups->Dir(common::NewUuid(), "pids")).parent_path();
  EXPECT_TRUE(absl::EndsWith(base, "/" + ThisInstance())) << base;
  EXPECT_FALSE(HasSubdirs(base)) << base;

  const CgroupOptions unusable = Fake("", "");
  auto refused = ChooseSandbox("unsafe-none", {}, tmp_ + "/sandboxes",
                               {.required = true, .options = unusable});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "set QAI_SANDBOX_CGROUPS=off"))
      << refused.status();

  ::testing::internal::CaptureStderr();
  auto off = ChooseSandbox("unsafe-none", {}, tmp_ + "/sandboxes",
                           {.required = false, .options = unusable});
  log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->sandbox->cgroups(), nullptr);
  EXPECT_TRUE(absl::StrContains(log, "\"level\":\"error\"")) << log;
  EXPECT_TRUE(absl::StrContains(log, "UNLIMITED: QAI_SANDBOX_CGROUPS=off")) << log;
  EXPECT_TRUE(absl::StrContains(log, "\"cgroups\":\"off\"")) << log;
}

}  // namespace
}  // namespace qai::sandbox
