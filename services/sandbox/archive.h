#pragma once
// ArchiveWriter: a .zip or .tar.gz archive written with libarchive into memory and taken out
// piece by piece, so an archive of any size is made with only what the compressor holds back
// in memory: add a file, write its content in slices, take what came out, and so on.
//
//   auto writer = ArchiveWriter::Create(ArchiveFormat::kZip);
//   (*writer)->BeginFile("site/index.html", content.size(), mtime);
//   (*writer)->Write(content);
//   send((*writer)->TakeOutput());
//   (*writer)->Close();
//   send((*writer)->TakeOutput());
//
// Every entry is a regular file, mode 0644, owned by nobody in particular (uid and gid 0, no
// names), with the given time: the same files make the same archive.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct archive;

namespace qai::sandbox {

enum class ArchiveFormat { kZip, kTarGz };

// ArchiveExtension: ".zip" or ".tar.gz"; ArchiveContentType: its media type.
[[nodiscard]] std::string_view ArchiveExtension(ArchiveFormat format);
[[nodiscard]] std::string_view ArchiveContentType(ArchiveFormat format);
// ArchiveFormatOfName: the format a file name's extension names, if any.
[[nodiscard]] std::optional<ArchiveFormat> ArchiveFormatOfName(std::string_view name);

// IsArchiveName: whether `name` may name an archive or its folder: 1 to 100 of A-Z a-z 0-9 . _
// -, and not "." or "..": safe in a path and in a Content-Disposition header alike.
[[nodiscard]] bool IsArchiveName(std::string_view name);
inline constexpr char kArchiveNameRule[] =
    "must be 1 to 100 of A-Z a-z 0-9 . _ - (and not . or ..)";

class ArchiveWriter {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ArchiveWriter>> Create(ArchiveFormat format);
  ~ArchiveWriter();
  ArchiveWriter(const ArchiveWriter&) = delete;
  ArchiveWriter& operator=(const ArchiveWriter&) = delete;

  // BeginFile: the next file, `path` (relative, '/'-separated), whose `size` bytes of content
  // follow through Write. The previous file must have had all its bytes.
  [[nodiscard]] absl::Status BeginFile(std::string_view path, int64_t size, absl::Time mtime);
  [[nodiscard]] absl::Status Write(std::string_view data);
  // Close: ends the archive (its central directory, the gzip trailer).
  [[nodiscard]] absl::Status Close();
  // TakeOutput: the archive's bytes made since the last TakeOutput.
  [[nodiscard]] std::string TakeOutput();

 private:
  explicit ArchiveWriter(struct archive* a) : archive_(a) {}
  absl::Status Error(std::string_view what) const;

  struct archive* archive_;
  std::string output_;
  int64_t left_in_file_ = 0;
  bool closed_ = false;
};

}  // namespace qai::sandbox
