#pragma once
// SnapshotArchive: a snapshot's files as a .zip or .tar.gz (archive.h), every file under one
// folder, made as it is read. Each Next reads at most kReadBytes of contents from the store (a
// batch of small files, or a slice of a large one) and returns what the archive gained, so an
// archive of any size holds about that much in memory, on the server and in every piece sent.
//
//   auto archive = SnapshotArchive::Open(store, snapshot_id, project_id, ArchiveFormat::kZip,
//                                        "bakery-v3");
//   for (;;) {
//     absl::StatusOr<std::string> piece = (*archive)->Next();
//     if (!piece.ok()) { /* the archive is cut: end the download with the error */ }
//     if (piece->empty()) break;  // complete
//     send(*piece);
//   }

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/sandbox/archive.h"
#include "services/sandbox/store.h"

namespace qai::sandbox {

class SnapshotArchive {
 public:
  static constexpr int64_t kReadBytes = 256 << 10;

  // Open: NOT_FOUND when there is no such snapshot, or when project_id is not empty and the
  // snapshot is another project's. INVALID_ARGUMENT unless IsArchiveName(folder).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SnapshotArchive>> Open(
      SandboxStore* store, const std::string& snapshot_id, const std::string& project_id,
      ArchiveFormat format, const std::string& folder);

  // Next: the archive's next bytes, never empty until it is complete; then empty. An error
  // (NOT_FOUND: the project was purged meanwhile) means the archive cannot be completed.
  [[nodiscard]] absl::StatusOr<std::string> Next();

  // Bytes: the size of the files' contents (not of the archive, which compression changes).
  [[nodiscard]] int64_t Bytes() const;

 private:
  SnapshotArchive(SandboxStore* store, SnapshotListing listing,
                  std::unique_ptr<ArchiveWriter> writer, std::string folder)
      : store_(store),
        listing_(std::move(listing)),
        writer_(std::move(writer)),
        folder_(std::move(folder)) {}
  // Step: one read's worth: the next small files together, a slice of a large one, or the end.
  absl::Status Step();
  absl::Status AddSmallFiles();
  absl::Status AddSliceOfLargeFile();

  SandboxStore* const store_;
  const SnapshotListing listing_;
  const std::unique_ptr<ArchiveWriter> writer_;
  const std::string folder_;
  size_t next_file_ = 0;
  int64_t offset_ = 0;  // into next_file_, when it is large
  bool closed_ = false;
  bool done_ = false;
};

}  // namespace qai::sandbox
