#include "services/sandbox/snapshot_archive.h"

#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace qai::sandbox {

absl::StatusOr<std::unique_ptr<SnapshotArchive>> SnapshotArchive::Open(
    SandboxStore* store, const std::string& snapshot_id, const std::string& project_id,
    ArchiveFormat format, const std::string& folder) {
  if (!IsArchiveName(folder)) {
    return absl::InvalidArgumentError(absl::StrCat("archive folder: ", kArchiveNameRule));
  }
  QAI_ASSIGN_OR_RETURN(SnapshotListing listing, store->ListSnapshotFiles(snapshot_id));
  if (!project_id.empty() && listing.project_id != project_id) {
    return absl::NotFoundError(absl::StrCat("snapshot ", snapshot_id, " not found"));
  }
  QAI_ASSIGN_OR_RETURN(std::unique_ptr<ArchiveWriter> writer, ArchiveWriter::Create(format));
  return std::unique_ptr<SnapshotArchive>(
      new SnapshotArchive(store, std::move(listing), std::move(writer), folder));
}

int64_t SnapshotArchive::Bytes() const {
  return std::accumulate(listing_.files.begin(), listing_.files.end(), int64_t{0},
                         [](int64_t sum, const ListedFile& f) { return sum + f.size; });
}

absl::StatusOr<std::string> SnapshotArchive::Next() {
  while (!done_) {
    if (closed_) {
      done_ = true;
      return writer_->TakeOutput();  // what closing let out (empty only if nothing did)
    }
    QAI_RETURN_IF_ERROR(Step());
    std::string out = writer_->TakeOutput();
    if (!out.empty()) return out;
  }
  return std::string();
}

absl::Status SnapshotArchive::Step() {
  if (next_file_ == listing_.files.size()) {
    closed_ = true;
    return writer_->Close();
  }
  if (listing_.files[next_file_].size > kReadBytes) return AddSliceOfLargeFile();
  return AddSmallFiles();
}

absl::Status SnapshotArchive::AddSmallFiles() {
  // The run of small files that fits in one read (at least one).
  size_t end = next_file_;
  int64_t bytes = 0;
  std::set<std::string> hashes;
  while (end < listing_.files.size() && listing_.files[end].size <= kReadBytes &&
         (end == next_file_ || bytes + listing_.files[end].size <= kReadBytes)) {
    bytes += listing_.files[end].size;
    hashes.insert(listing_.files[end++].sha256);
  }
  QAI_ASSIGN_OR_RETURN(auto contents, store_->ReadContents({hashes.begin(), hashes.end()}));
  for (; next_file_ < end; ++next_file_) {
    const ListedFile& f = listing_.files[next_file_];
    const std::string& content = contents.at(f.sha256);
    QAI_RETURN_IF_ERROR(writer_->BeginFile(absl::StrCat(folder_, "/", f.path),
                                           static_cast<int64_t>(content.size()),
                                           listing_.create_time));
    QAI_RETURN_IF_ERROR(writer_->Write(content));
  }
  return absl::OkStatus();
}

absl::Status SnapshotArchive::AddSliceOfLargeFile() {
  const ListedFile& f = listing_.files[next_file_];
  if (offset_ == 0) {
    QAI_RETURN_IF_ERROR(
        writer_->BeginFile(absl::StrCat(folder_, "/", f.path), f.size, listing_.create_time));
  }
  const int64_t length = std::min(kReadBytes, f.size - offset_);
  QAI_ASSIGN_OR_RETURN(std::string slice, store_->ReadContentSlice(f.sha256, offset_, length));
  if (static_cast<int64_t>(slice.size()) != length) {
    return absl::InternalError(
        absl::StrCat(f.path, ": its stored content is shorter than its size"));
  }
  QAI_RETURN_IF_ERROR(writer_->Write(slice));
  offset_ += length;
  if (offset_ == f.size) {
    ++next_file_;
    offset_ = 0;
  }
  return absl::OkStatus();
}

}  // namespace qai::sandbox
