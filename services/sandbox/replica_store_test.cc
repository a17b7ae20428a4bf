// ReplicaStore against a real PostgreSQL: replicas are alive exactly while a session of theirs
// holds their lock, projects stay on a live replica, move when it dies, come back to its name
// after a restart, spread by rank, and purged projects are placed nowhere.

#include "services/sandbox/replica_store.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/db_pool.h"
#include "common/ids.h"
#include "services/sandbox/store.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/support/pg_server.h"

namespace qai::sandbox {
namespace {

class ReplicaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::PgServer::Shared().CreateDatabase();
    auto pool = common::DbPool::Create({.url = url_, .size = 4});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    replicas_ = std::make_unique<ReplicaStore>(pool_.get());
  }

  // Start: a new incarnation of replica `name`, alive (its session holds the lock) on return.
  Replica Start(const std::string& name) {
    absl::StatusOr<Replica> r = replicas_->Register(name, name + ":50054");
    EXPECT_TRUE(r.ok()) << r.status();
    auto session = std::make_unique<common::PgListener>(
        common::PgListener::Options{
            .url = url_, .channels = {"qai_test"}, .setup = ReplicaStore::LockStatements(r->id)},
        [](std::string_view, std::string_view) {});
    EXPECT_TRUE(session->Start().ok());
    for (int i = 0; i < 500 && !session->connected(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(session->connected());
    sessions_[r->id] = std::move(session);
    return *r;
  }

  // Kill: the incarnation's session ends, as when its process is killed; its server process
  // goes (and the lock with it) a moment after.
  void Kill(const Replica& r) {
    sessions_.erase(r.id);
    for (int i = 0; i < 500 && *replicas_->Alive(r.id); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  std::string Located(const std::string& project) {
    absl::StatusOr<Replica> r = replicas_->Locate(project);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->name : "";
  }

  // ProjectRankedFirstFor: a project that replica `name` ranks first for among `names`.
  std::string ProjectRankedFirstFor(const std::string& name,
                                    const std::vector<std::string>& names) {
    soci::session sql(soci::postgresql, url_);
    for (;;) {
      const std::string p = common::NewUuid();
      std::string best;
      std::string md5_best;
      for (const std::string& n : names) {
        std::string h;
        const std::string key = p + "/" + n;
        sql << "SELECT md5(:k)", soci::use(key), soci::into(h);
        if (h > md5_best) md5_best = h, best = n;
      }
      if (best == name) return p;
    }
  }

  std::string url_;
  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<ReplicaStore> replicas_;
  std::map<int, std::unique_ptr<common::PgListener>> sessions_;
};

TEST_F(ReplicaStoreTest, AReplicaIsAliveExactlyWhileItsSessionHoldsTheLock) {
  absl::StatusOr<Replica> registered = replicas_->Register("a", "a:1");
  ASSERT_TRUE(registered.ok());
  EXPECT_FALSE(*replicas_->Alive(registered->id))
      << "registered, but no session holds its lock yet";
  Replica a = Start("b");
  EXPECT_TRUE(*replicas_->Alive(a.id));
  Kill(a);
  EXPECT_FALSE(*replicas_->Alive(a.id)) << "its session ended, within 5 s";
}

TEST_F(ReplicaStoreTest, NoLiveReplicaIsUnavailable) {
  ASSERT_TRUE(replicas_->Register("a", "a:1").ok());
  EXPECT_EQ(replicas_->Locate(common::NewUuid()).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ReplicaStoreTest, AProjectStaysOnItsLiveReplicaWhateverJoins) {
  Replica a = Start("a");
  const std::string p = common::NewUuid();
  absl::StatusOr<Replica> located = replicas_->Locate(p);
  ASSERT_TRUE(located.ok());
  EXPECT_EQ(located->id, a.id);
  EXPECT_EQ(located->address, "a:50054");
  for (const char* name : {"b", "c", "d"}) Start(name);
  EXPECT_EQ(Located(p), "a") << "new replicas take no project away from a live one";
}

TEST_F(ReplicaStoreTest, ProjectsSpreadOverTheLiveReplicas) {
  for (const char* name : {"a", "b", "c"}) Start(name);
  std::map<std::string, int> per_replica;
  for (int i = 0; i < 60; ++i)
    ++per_replica[Located(absl::StrFormat("00000000-0000-4000-8000-%012d", i))];
  ASSERT_EQ(per_replica.size(), 3u);
  for (const auto& [name, n] : per_replica) EXPECT_GE(n, 10) << name;
}

TEST_F(ReplicaStoreTest, AProjectMovesWhenItsReplicaDiesAndComesBackToItsNameAfterARestart) {
  Replica a = Start("a");
  Start("b");
  const std::string moves = ProjectRankedFirstFor("a", {"a", "b"});
  const std::string waits = ProjectRankedFirstFor("a", {"a", "b"});
  EXPECT_EQ(Located(moves), "a");
  EXPECT_EQ(Located(waits), "a");
  Kill(a);
  EXPECT_EQ(Located(moves), "b") << "its replica died: the other one serves it";
  Replica again = Start("a");
  EXPECT_NE(again.id, a.id) << "a new incarnation";
  EXPECT_EQ(Located(moves), "b") << "it stays where it went";
  EXPECT_EQ(Located(waits), "a")
      << "not located while a was down: back on a, its workspace still warm there";
}

TEST_F(ReplicaStoreTest, AClaimIsRefusedWhileAnotherLiveReplicaServesTheProject) {
  Replica a = Start("a");
  Replica b = Start("b");
  const std::string p = ProjectRankedFirstFor("a", {"a", "b"});
  ASSERT_EQ(Located(p), "a");
  EXPECT_TRUE(replicas_->Claim(p, a.id).ok()) << "its own";
  absl::Status refused = replicas_->Claim(p, b.id);
  EXPECT_EQ(refused.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(absl::StrContains(refused.message(), "a (a:50054)")) << refused;
  Kill(a);
  EXPECT_TRUE(replicas_->Claim(p, b.id).ok()) << "its replica is gone";
  EXPECT_EQ(Located(p), "b");
  const std::string q = common::NewUuid();
  EXPECT_TRUE(replicas_->Claim(q, b.id).ok()) << "a project nobody serves";
  EXPECT_EQ(Located(q), "b");
}

TEST_F(ReplicaStoreTest, APurgedProjectIsPlacedNowhere) {
  Replica a = Start("a");
  const std::string p = common::NewUuid();
  ASSERT_EQ(Located(p), "a");
  SandboxStore store(pool_.get());
  ASSERT_TRUE(store.Purge(p).ok());
  EXPECT_EQ(replicas_->Locate(p).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(replicas_->Claim(p, a.id).code(), absl::StatusCode::kFailedPrecondition);
  soci::session sql(soci::postgresql, url_);
  int assigned = -1;
  sql << "SELECT count(*) FROM sandbox.assignments WHERE project_id = CAST(:p AS uuid)",
      soci::use(p), soci::into(assigned);
  EXPECT_EQ(assigned, 0);
}

TEST_F(ReplicaStoreTest, LongDeadIncarnationsAreForgottenWithTheirAssignments) {
  Replica old_dead = Start("a");
  const std::string p = common::NewUuid();
  ASSERT_EQ(Located(p), "a");
  Kill(old_dead);
  absl::StatusOr<Replica> young_dead =
      replicas_->Register("b", "b:1");  // not yet locked: may be starting
  ASSERT_TRUE(young_dead.ok());
  Replica alive_old = Start("c");
  {
    soci::session sql(soci::postgresql, url_);
    sql << "UPDATE sandbox.replicas SET start_time = now() - interval '2 hours' WHERE id IN (:a, "
           ":c)",
        soci::use(old_dead.id), soci::use(alive_old.id);
  }
  ASSERT_TRUE(replicas_->Register("d", "d:1").ok());
  soci::session sql(soci::postgresql, url_);
  std::vector<int> ids(10);
  sql << "SELECT id FROM sandbox.replicas ORDER BY id", soci::into(ids);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), old_dead.id), 0) << "dead for long: forgotten";
  EXPECT_EQ(std::count(ids.begin(), ids.end(), young_dead->id), 1)
      << "young: it may be about to take its lock";
  EXPECT_EQ(std::count(ids.begin(), ids.end(), alive_old.id), 1) << "alive";
  int assigned = -1;
  sql << "SELECT count(*) FROM sandbox.assignments WHERE project_id = CAST(:p AS uuid)",
      soci::use(p), soci::into(assigned);
  EXPECT_EQ(assigned, 0);
  EXPECT_EQ(Located(p), "c");
  // A replica whose row was forgotten while its session was down registers it again.
  ASSERT_TRUE(replicas_->Reregister(old_dead).ok());
  ids.resize(10);
  sql << "SELECT id FROM sandbox.replicas ORDER BY id", soci::into(ids);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), old_dead.id), 1);
}

}  // namespace
}  // namespace qai::sandbox
