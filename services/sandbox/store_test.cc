// SandboxStore: snapshots stored by content (what they cost, what they share, what a purge
// leaves and announces) and the users of projects.

#include "services/sandbox/store.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/pg_listener.h"
#include "tests/support/pg_server.h"

namespace qai::sandbox {
namespace {

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool =
        common::DbPool::Create({.url = testing::PgServer::Shared().CreateDatabase(), .size = 4});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    store_ = std::make_unique<SandboxStore>(pool_.get());
  }

  SnapshotRecord MustSave(const std::string& project, const Files& files,
                          const std::string& id = common::NewUuid()) {
    absl::StatusOr<SnapshotRecord> saved = store_->SaveSnapshot(
        {.id = id, .project_id = project, .files = std::make_shared<const Files>(files)});
    EXPECT_TRUE(saved.ok()) << saved.status();
    return saved.value_or(SnapshotRecord{});
  }

  int64_t Count(const std::string& sql) {
    long long n = -1;
    EXPECT_TRUE(pool_
                    ->Run([&](common::DbConnection& conn) {
                      conn.session() << sql, soci::into(n);
                      return absl::OkStatus();
                    })
                    .ok());
    return n;
  }

  // StorageBytes: what the snapshots take on disk, tables, indexes and TOAST, by PostgreSQL's
  // own count.
  int64_t StorageBytes() {
    return Count(
        "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'sandbox'"
        " AND c.relname IN ('snapshots', 'project_blobs', 'blobs')");
  }

  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<SandboxStore> store_;
};

TEST_F(SnapshotStoreTest, ASnapshotReadsBackByteForByteAndARepeatIsTheFirst) {
  const std::string project = common::NewUuid();
  const std::string binary("\0\x01\xff\xfe png", 9);
  const Files files = {{"index.html", "<h1>Hi</h1>"}, {"img/logo.png", binary}, {"empty.txt", ""}};
  SnapshotRecord saved = MustSave(project, files);
  ASSERT_TRUE(saved.files);
  EXPECT_EQ(*saved.files, files);
  absl::StatusOr<SnapshotRecord> got = store_->GetSnapshot(saved.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got->files, files);
  EXPECT_EQ(got->project_id, project);
  // Idempotent on the id: a repeat with other files returns the first.
  SnapshotRecord again = MustSave(project, {{"other.html", "x"}}, saved.id);
  EXPECT_EQ(*again.files, files);
  EXPECT_EQ(store_
                ->SaveSnapshot({.id = saved.id,
                                .project_id = common::NewUuid(),
                                .files = std::make_shared<const Files>()})
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(SnapshotStoreTest, AContentIsStoredOnceAcrossSnapshotsAndProjects) {
  const std::string shared(100000, 's');
  MustSave(common::NewUuid(), {{"a.js", shared}, {"b.js", shared}, {"c.js", "one"}});
  MustSave(common::NewUuid(), {{"lib/a.js", shared}, {"c.js", "two"}});
  EXPECT_EQ(Count("SELECT count(*) FROM sandbox.blobs"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM sandbox.project_blobs"), 4);
}

// 100 versions of a 3 MB site, each changing one small file, add about 100 small files, not
// 300 MB.
TEST_F(SnapshotStoreTest, StorageGrowsWithTheChangeNotTheProject) {
  const std::string project = common::NewUuid();
  Files site;
  for (int i = 0; i < 30; ++i) {
    std::string content;
    // Text that does not compress away (TOAST compresses), 100 KB a file.
    for (int line = 0; content.size() < 100000; ++line) {
      absl::StrAppend(&content, "/* ", common::NewUuid(), " ", line * 7919 + i, " */\n");
    }
    site[absl::StrCat("src/part", i, ".js")] = content;
  }
  site["app.js"] = "let version = 0;\n";
  MustSave(project, site);
  const int64_t before = StorageBytes();
  for (int v = 1; v <= 100; ++v) {
    site["app.js"] = absl::StrCat("let version = ", v, ";\n");
    MustSave(project, site);
  }
  const int64_t grown = StorageBytes() - before;
  RecordProperty("grown_bytes", static_cast<int>(grown));
  EXPECT_LT(grown, 1 << 20) << "100 one-file changes of a 3 MB site grew the store by " << grown;
  EXPECT_GT(before, 3'000'000) << "the site itself is stored";
}

TEST_F(SnapshotStoreTest, APurgeRemovesWhatOnlyItsProjectListed) {
  const std::string kept = common::NewUuid(), purged = common::NewUuid();
  const std::string shared(5000, 'x');
  SnapshotRecord other = MustSave(kept, {{"lib.js", shared}, {"a.html", "mine"}});
  MustSave(purged, {{"lib.js", shared}, {"b.html", "gone"}});
  MustSave(purged, {{"lib.js", shared}, {"b.html", "gone too"}});
  EXPECT_EQ(Count("SELECT count(*) FROM sandbox.blobs"), 4);
  ASSERT_TRUE(store_->Purge(purged).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM sandbox.blobs"), 2) << "lib.js stays: another lists it";
  absl::StatusOr<SnapshotRecord> still = store_->GetSnapshot(other.id);
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->files->at("lib.js"), shared);
  EXPECT_EQ(Count("SELECT count(*) FROM sandbox.project_blobs"), 2);
  ASSERT_TRUE(store_->Purge(purged).ok()) << "idempotent";
}

TEST(SandboxStoreTest, EachProjectGetsAUidOfItsOwnOnceAndNeverOutsideTheRange) {
  auto pool =
      common::DbPool::Create({.url = testing::PgServer::Shared().CreateDatabase(), .size = 4});
  ASSERT_TRUE(pool.ok()) << pool.status();
  SandboxStore store(pool->get());
  const std::string a = common::NewUuid(), b = common::NewUuid(), c = common::NewUuid();
  auto ua = store.UserFor(a, 2000000000, 2), ub = store.UserFor(b, 2000000000, 2);
  ASSERT_TRUE(ua.ok() && ub.ok()) << ua.status() << ub.status();
  EXPECT_NE(*ua, *ub);
  EXPECT_GE(std::min(*ua, *ub), 2000000000u);
  EXPECT_LE(std::max(*ua, *ub), 2000000001u);
  EXPECT_EQ(store.UserFor(a, 2000000000, 2).value_or(0), *ua) << "the same user every time";
  EXPECT_EQ(store.UserFor(c, 2000000000, 2).status().code(), absl::StatusCode::kResourceExhausted)
      << "two projects never share a uid, even when the range runs out";
  // Concurrent first calls for one project agree.
  const std::string d = common::NewUuid();
  std::vector<uint32_t> seen(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] { seen[i] = store.UserFor(d, 3000000000u, 1000).value_or(0); });
  for (auto& t : threads) t.join();
  for (uint32_t uid : seen) EXPECT_EQ(uid, seen[0]);
}

TEST(SandboxStoreTest, APurgeAnnouncesItsSnapshotsToEveryPreviewServer) {
  const std::string url = testing::PgServer::Shared().CreateDatabase();
  std::mutex mu;
  std::vector<std::string> payloads;
  common::PgListener listener({.url = url, .channels = {kSnapshotsPurgedChannel}},
                              [&](std::string_view, std::string_view payload) {
                                std::lock_guard lock(mu);
                                payloads.emplace_back(payload);
                              });
  ASSERT_TRUE(listener.Start().ok());
  for (int i = 0; i < 2000 && !listener.connected(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(listener.connected());
  auto pool = common::DbPool::Create({.url = url, .size = 2});
  ASSERT_TRUE(pool.ok());
  SandboxStore store(pool->get());
  const std::string project = common::NewUuid();
  std::set<std::string> saved;
  for (size_t i = 0; i < kSnapshotsPerNotify + 20; ++i) {
    const std::string id = common::NewUuid();
    ASSERT_TRUE(
        store.SaveSnapshot({.id = id, .project_id = project, .files = std::make_shared<Files>()})
            .ok());
    saved.insert(id);
  }
  ASSERT_TRUE(store.Purge(project).ok());
  for (int i = 0; i < 2000; ++i) {
    {
      std::lock_guard lock(mu);
      if (payloads.size() == 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(payloads.size(), 2u) << "in notifications of at most kSnapshotsPerNotify ids";
  std::set<std::string> announced;
  for (const std::string& payload : payloads) {
    for (absl::string_view id : absl::StrSplit(payload, ',')) announced.emplace(id);
  }
  EXPECT_EQ(announced, saved);
}

}  // namespace
}  // namespace qai::sandbox
