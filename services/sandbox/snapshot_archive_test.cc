// SnapshotArchive on a real PostgreSQL: a snapshot's archive, unpacked by Debian's unzip and
// tar, holds its files byte for byte under the folder; no piece is much larger than one read,
// however large the files; another project's snapshot is NOT_FOUND; and a purge during the
// download cuts it with an error instead of ending it early as if complete.

#include "services/sandbox/snapshot_archive.h"

#include <gtest/gtest.h>

#include <random>

#include "common/ids.h"
#include "tests/support/pg_server.h"
#include "tests/support/unpack.h"

namespace qai::sandbox {
namespace {

class SnapshotArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool =
        common::DbPool::Create({.url = testing::PgServer::Shared().CreateDatabase(), .size = 2});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    store_ = std::make_unique<SandboxStore>(pool_.get());
  }

  std::string Save(const Files& files) {
    const std::string id = common::NewUuid();
    auto saved = store_->SaveSnapshot(
        {.id = id, .project_id = project_, .files = std::make_shared<const Files>(files)});
    EXPECT_TRUE(saved.ok()) << saved.status();
    return id;
  }

  // Pieces: every piece of the snapshot's archive, until its end or an error.
  absl::StatusOr<std::vector<std::string>> Pieces(const std::string& id, ArchiveFormat format,
                                                  const std::function<void()>& after_first = {}) {
    auto archive = SnapshotArchive::Open(store_.get(), id, project_, format, "bakery-v2");
    if (!archive.ok()) return archive.status();
    std::vector<std::string> pieces;
    for (;;) {
      absl::StatusOr<std::string> piece = (*archive)->Next();
      if (!piece.ok()) return piece.status();
      if (piece->empty()) return pieces;
      pieces.push_back(*std::move(piece));
      if (pieces.size() == 1 && after_first) after_first();
    }
  }

  const std::string project_ = common::NewUuid();
  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<SandboxStore> store_;
};

// Files: many small ones (read together), and large ones of random bytes (read in slices).
Files SiteWithLargeFiles() {
  std::mt19937 random(3);
  Files files;
  for (int i = 0; i < 300; ++i)
    files["pages/page" + std::to_string(i) + ".html"] = "<p>" + std::to_string(i);
  for (const char* name : {"media/clip.bin", "media/photo.bin"}) {
    std::string& large = files[name];
    large.resize(SnapshotArchive::kReadBytes * 5 / 2);
    for (char& c : large) c = static_cast<char>(random());
  }
  files["index.html"] = "<h1>Bakery</h1>";
  files["empty.txt"] = "";
  return files;
}

Files UnderFolder(const Files& files) {
  Files out;
  for (const auto& [path, content] : files) out["bakery-v2/" + path] = content;
  return out;
}

TEST_F(SnapshotArchiveTest, UnpacksToTheSnapshotsFilesInPiecesOfAboutOneRead) {
  const Files files = SiteWithLargeFiles();
  const std::string id = Save(files);
  for (ArchiveFormat format : {ArchiveFormat::kZip, ArchiveFormat::kTarGz}) {
    absl::StatusOr<std::vector<std::string>> pieces = Pieces(id, format);
    ASSERT_TRUE(pieces.ok()) << pieces.status();
    std::string archive;
    size_t largest = 0;
    for (const std::string& p : *pieces) {
      archive += p;
      largest = std::max(largest, p.size());
    }
    EXPECT_LE(largest, static_cast<size_t>(SnapshotArchive::kReadBytes) + (64 << 10))
        << "a piece holds about one read, not a whole large file";
    EXPECT_GT(pieces->size(), 5u);
    auto unpacked = testing::Unpack(archive, std::string(ArchiveExtension(format)));
    ASSERT_TRUE(unpacked.ok()) << unpacked.status();
    EXPECT_TRUE(*unpacked == UnderFolder(files)) << ArchiveExtension(format);
  }
}

TEST_F(SnapshotArchiveTest, AnEmptySnapshotIsAnEmptyArchive) {
  absl::StatusOr<std::vector<std::string>> pieces = Pieces(Save({}), ArchiveFormat::kZip);
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  ASSERT_EQ(pieces->size(), 1u);
  EXPECT_EQ((*pieces)[0].size(), 22u) << "an end of central directory and nothing else";
  EXPECT_TRUE((*pieces)[0].starts_with(std::string("PK\5\6", 4)));
}

TEST_F(SnapshotArchiveTest, AnotherProjectsSnapshotOrABadFolderIsRefused) {
  const std::string id = Save({{"index.html", "mine"}});
  EXPECT_EQ(SnapshotArchive::Open(store_.get(), id, common::NewUuid(), ArchiveFormat::kZip, "x")
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(SnapshotArchive::Open(store_.get(), common::NewUuid(), "", ArchiveFormat::kZip, "x")
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  for (const char* folder : {"", "a/b", ".."}) {
    EXPECT_EQ(SnapshotArchive::Open(store_.get(), id, project_, ArchiveFormat::kZip, folder)
                  .status()
                  .code(),
              absl::StatusCode::kInvalidArgument)
        << folder;
  }
  EXPECT_TRUE(SnapshotArchive::Open(store_.get(), id, "", ArchiveFormat::kZip, "x").ok())
      << "no project: any project's (a preview URL's download)";
}

TEST_F(SnapshotArchiveTest, APurgeDuringTheDownloadCutsItWithAnError) {
  const std::string id = Save(SiteWithLargeFiles());
  absl::StatusOr<std::vector<std::string>> pieces =
      Pieces(id, ArchiveFormat::kZip, [&] { ASSERT_TRUE(store_->Purge(project_).ok()); });
  EXPECT_EQ(pieces.status().code(), absl::StatusCode::kNotFound) << pieces.status();
}

}  // namespace
}  // namespace qai::sandbox
