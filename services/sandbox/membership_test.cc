// Membership against a real PostgreSQL: a replica joins the tier only when it can be reached,
// and a purge it did not hear of (it was down) still removes the project's workspace here.

#include "services/sandbox/membership.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "common/db_pool.h"
#include "common/ids.h"
#include "services/sandbox/sandbox.h"
#include "services/sandbox/store.h"
#include "tests/support/pg_server.h"

namespace qai::sandbox {
namespace {

namespace fs = std::filesystem;

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::PgServer::Shared().CreateDatabase();
    auto pool = common::DbPool::Create({.url = url_, .size = 4});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    store_ = std::make_unique<SandboxStore>(pool_.get());
    replicas_ = std::make_unique<ReplicaStore>(pool_.get());
    root_ = fs::temp_directory_path() / ("qai-membership-" + common::NewUuid());
    auto sandbox = Sandbox::Create({.mode = SandboxMode::kUnsafeNone});
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    workspaces_ = std::make_unique<Workspaces>(
        WorkspacesOptions{.root = root_.string(), .sandbox = *sandbox}, store_.get());
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  absl::StatusOr<std::unique_ptr<Membership>> Join(const std::string& name,
                                                   const std::string& address) {
    return Membership::Start({.db_url = url_, .name = name, .address = address}, replicas_.get(),
                             workspaces_.get());
  }

  std::string url_;
  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<SandboxStore> store_;
  std::unique_ptr<ReplicaStore> replicas_;
  fs::path root_;
  std::unique_ptr<Workspaces> workspaces_;
};

TEST_F(MembershipTest, AReplicaWithoutAnAddressMustBeTheTiersOnlyOne) {
  auto alone = Join("a", "");
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_TRUE((*alone)->alive());
  EXPECT_TRUE(*replicas_->Alive((*alone)->self().id));
  auto refused = Join("b", "b:50054");
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "QAI_REPLICA_ADDR"))
      << refused.status();
  auto restarted = Join("a", "");
  ASSERT_TRUE(restarted.ok()) << "its own previous start, not yet gone, is no other replica: "
                              << restarted.status();
  const int first = (*alone)->self().id, second = (*restarted)->self().id;
  (*alone)->Stop();
  restarted->reset();
  // Their sessions end a moment after their connections close.
  for (int i = 0; i < 500 && (*replicas_->Alive(first) || *replicas_->Alive(second)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto a = Join("a", "a:50054");
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = Join("b", "b:50054");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*a)->self().id, (*b)->self().id);
}

TEST_F(MembershipTest, APurgeMissedWhileDownRemovesTheWorkspaceWhenTheReplicaJoins) {
  const std::string kept = common::NewUuid(), purged = common::NewUuid();
  for (const std::string& p : {kept, purged}) {
    ASSERT_TRUE(workspaces_->Open(p, 1).ok());
    ASSERT_TRUE(workspaces_->Write(p, 1, {{.path = "index.html", .content = "hi"}}).ok());
  }
  ASSERT_TRUE(store_->Purge(purged).ok());  // by another replica, while this one was down
  auto m = Join("a", "");
  ASSERT_TRUE(m.ok()) << m.status();
  const fs::path workspaces = root_ / "workspaces";
  for (int i = 0; i < 500 && fs::exists(workspaces / purged); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(fs::exists(workspaces / purged));
  EXPECT_TRUE(fs::exists(workspaces / kept / "index.html"));
  // And a purge announced while it runs.
  ASSERT_TRUE(store_->Purge(kept).ok());
  for (int i = 0; i < 500 && fs::exists(workspaces / kept); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(fs::exists(workspaces / kept));
  EXPECT_EQ(
      workspaces_->Write(kept, 1, {{.path = "index.html", .content = "again"}}).status().code(),
      absl::StatusCode::kFailedPrecondition)
      << "its holder is fenced out";
}

}  // namespace
}  // namespace qai::sandbox
