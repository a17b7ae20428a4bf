// Workspaces with disk quotas, in this test process's own mount namespace (entered before
// main, while it has one thread): each workspace is a tmpfs of its quota, a restarted replica
// does not trust a mark on an empty filesystem, and idle workspaces make room beyond the total.

#include "services/sandbox/disk_quota.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "common/db_pool.h"
#include "common/ids.h"
#include "services/sandbox/store.h"
#include "services/sandbox/workspaces.h"
#include "tests/support/pg_server.h"

namespace qai::sandbox {
namespace {

namespace fs = std::filesystem;

// Before gtest's main: the mounts of these tests never reach the machine.
const absl::Status kPrivateMounts = EnterPrivateMounts();

class DiskQuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kPrivateMounts.ok()) << kPrivateMounts << " (these tests need root)";
    auto pool =
        common::DbPool::Create({.url = testing::PgServer::Shared().CreateDatabase(), .size = 2});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    store_ = std::make_unique<SandboxStore>(pool_.get());
    root_ = (fs::temp_directory_path() / ("qai-quota-" + common::NewUuid())).string();
    auto sandbox = Sandbox::Create({.mode = SandboxMode::kUnsafeNone});
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    sandbox_ = *sandbox;
  }
  void TearDown() override {
    for (const auto& w : std::vector<std::string>(projects_)) (void)UnmountQuota(Dir(w));
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  std::unique_ptr<Workspaces> Make(DiskQuota quota) {
    return std::make_unique<Workspaces>(
        WorkspacesOptions{.root = root_, .sandbox = sandbox_, .quota = quota}, store_.get());
  }
  std::string NewProject() { return projects_.emplace_back(common::NewUuid()); }
  std::string Dir(const std::string& project) const { return root_ + "/workspaces/" + project; }

  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<SandboxStore> store_;
  std::string root_;
  std::shared_ptr<const Sandbox> sandbox_;
  std::vector<std::string> projects_;
};

TEST_F(DiskQuotaTest, AWorkspaceHoldsNoMoreThanItsQuotaInBytesAndFiles) {
  auto workspaces = Make({.bytes = 1 << 20, .files = 40, .total_bytes = 0});
  const std::string p = NewProject();
  ASSERT_TRUE(workspaces->Open(p, 1).ok());
  EXPECT_TRUE(IsMountPoint(Dir(p)));
  auto wrote = workspaces->Write(p, 1, {{.path = "big.txt", .content = std::string(2 << 20, 'x')}});
  ASSERT_TRUE(wrote.ok());
  EXPECT_FALSE((*wrote)[0].status.ok()) << "the service's own writes count too";
  auto r = workspaces->Run(p, 1, "rm -f big.txt; head -c 2M /dev/zero > zero.bin; echo rc=$?", {},
                           nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(absl::StrContains(r->output, "No space left on device")) << r->output;
  EXPECT_TRUE(absl::StartsWith(
      r->explanation, "[sandbox] the workspace is full: it may hold at most 1 MiB in 40 files"))
      << r->explanation;
  r = workspaces->Run(
      p, 1, "rm -f zero.bin; for i in $(seq 100); do : > f$i || break; done; echo made $i", {},
      nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(absl::StrContains(r->output, "f40: No space left on device")) << r->output;
  r = workspaces->Run(p, 1, "rm -f f*; echo fine > ok && cat ok", {}, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "fine\n") << "room again once it cleaned up, and no complaint";
}

TEST_F(DiskQuotaTest, AWorkspaceMountedAfreshForgetsWhatItWasMarkedAsHolding) {
  const std::string p = NewProject(), snapshot = common::NewUuid();
  {
    auto workspaces = Make({});
    ASSERT_TRUE(workspaces->Open(p, 1).ok());
    ASSERT_TRUE(workspaces->Write(p, 1, {{.path = "index.html", .content = "<h1>hi</h1>"}}).ok());
    ASSERT_TRUE(workspaces->Snapshot(p, 1, snapshot, "").ok());
    auto again = workspaces->Open(p, 2);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->snapshot_id, snapshot);
  }
  // The replica restarts: its mounts went with its mount namespace.
  ASSERT_TRUE(UnmountQuota(Dir(p)).ok());
  auto workspaces = Make({});
  auto reopened = workspaces->Open(p, 3);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(reopened->snapshot_id, "") << "an empty workspace is not the snapshot it was marked as";
  EXPECT_TRUE(IsMountPoint(Dir(p)));
}

TEST_F(DiskQuotaTest, IdleWorkspacesMakeRoomBeyondTheTotalLongestIdleFirst) {
  auto workspaces = Make({.bytes = 4 << 20, .files = 100, .total_bytes = 5 << 20});
  const std::string older = NewProject(), newer = NewProject();
  ASSERT_TRUE(workspaces->Open(older, 1).ok());
  ASSERT_TRUE(workspaces->Run(older, 1, "head -c 3M /dev/zero > a.bin", {}, nullptr).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // MakeRoom looks once a second
  ASSERT_TRUE(workspaces->Open(newer, 1).ok());
  ASSERT_TRUE(workspaces->Run(newer, 1, "head -c 3M /dev/zero > b.bin", {}, nullptr).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(workspaces->Run(newer, 1, "true", {}, nullptr).ok());  // the next look
  EXPECT_FALSE(IsMountPoint(Dir(older))) << "dropped: idle longest";
  EXPECT_TRUE(IsMountPoint(Dir(newer)));
  EXPECT_EQ(workspaces->Run(older, 1, "ls", {}, nullptr).status().code(),
            absl::StatusCode::kAborted)
      << "its holder must open and restore it again";
  auto reopened = workspaces->Open(older, 2);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(reopened->snapshot_id, "");
  EXPECT_TRUE(IsMountPoint(Dir(older)));
}

}  // namespace
}  // namespace qai::sandbox
