#include "services/sandbox/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace qai::sandbox {
namespace {

// Utf8Locale: this thread uses the C.UTF-8 character type while it lives. libarchive converts
// names through the locale's charset, and under the plain C locale it writes a tar entry with
// a non-ASCII name as an empty name (gnutar) or crashes (pax, libarchive 3.6).
class Utf8Locale {
 public:
  Utf8Locale() : previous_(uselocale(Utf8())) {}
  ~Utf8Locale() { uselocale(previous_); }
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;

 private:
  static locale_t Utf8() {
    static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    return utf8 == static_cast<locale_t>(0) ? LC_GLOBAL_LOCALE : utf8;
  }
  const locale_t previous_;
};

la_ssize_t Collect(struct archive*, void* output, const void* buffer, size_t length) {
  static_cast<std::string*>(output)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// SetFormat: the archive's format and compression; deterministic output (no gzip time stamp).
int SetFormat(struct archive* a, ArchiveFormat format) {
  if (format == ArchiveFormat::kZip) {
    if (int rc = archive_write_set_format_zip(a); rc != ARCHIVE_OK) return rc;
    return archive_write_zip_set_compression_deflate(a);
  }
  if (int rc = archive_write_set_format_pax_restricted(a); rc != ARCHIVE_OK) return rc;
  if (int rc = archive_write_add_filter_gzip(a); rc != ARCHIVE_OK) return rc;
  return archive_write_set_filter_option(a, "gzip", "timestamp", nullptr);
}

}  // namespace

std::string_view ArchiveExtension(ArchiveFormat format) {
  return format == ArchiveFormat::kZip ? ".zip" : ".tar.gz";
}

std::string_view ArchiveContentType(ArchiveFormat format) {
  return format == ArchiveFormat::kZip ? "application/zip" : "application/gzip";
}

std::optional<ArchiveFormat> ArchiveFormatOfName(std::string_view name) {
  for (ArchiveFormat f : {ArchiveFormat::kZip, ArchiveFormat::kTarGz}) {
    if (name.size() > ArchiveExtension(f).size() && name.ends_with(ArchiveExtension(f))) {
      return f;
    }
  }
  return std::nullopt;
}

bool IsArchiveName(std::string_view name) {
  if (name.empty() || name.size() > 100 || name == "." || name == "..") return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::unique_ptr<ArchiveWriter>> ArchiveWriter::Create(ArchiveFormat format) {
  const Utf8Locale utf8;
  struct archive* a = archive_write_new();
  if (a == nullptr) return absl::ResourceExhaustedError("archive: out of memory");
  std::unique_ptr<ArchiveWriter> writer(new ArchiveWriter(a));
  // No blocking: every byte the compressor lets out is handed over at once.
  if (SetFormat(a, format) != ARCHIVE_OK || archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
      archive_write_open2(a, &writer->output_, nullptr, Collect, nullptr, nullptr) != ARCHIVE_OK) {
    return writer->Error("cannot start");
  }
  return writer;
}

ArchiveWriter::~ArchiveWriter() {
  const Utf8Locale utf8;
  archive_write_free(archive_);
}

absl::Status ArchiveWriter::Error(std::string_view what) const {
  const char* detail = archive_error_string(archive_);
  return absl::InternalError(
      absl::StrCat("archive: ", std::string(what), ": ", detail ? detail : "failed"));
}

absl::Status ArchiveWriter::BeginFile(std::string_view path, int64_t size, absl::Time mtime) {
  if (closed_ || left_in_file_ != 0 || size < 0) {
    return absl::FailedPreconditionError("archive: a file begins out of turn");
  }
  const Utf8Locale utf8;
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                 archive_entry_free);
  if (entry == nullptr) return absl::ResourceExhaustedError("archive: out of memory");
  const std::string name(path);
  archive_entry_update_pathname_utf8(entry.get(), name.c_str());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), 0644);
  archive_entry_set_size(entry.get(), size);
  archive_entry_set_mtime(entry.get(), absl::ToUnixSeconds(mtime), 0);
  if (archive_write_header(archive_, entry.get()) != ARCHIVE_OK) return Error(name);
  left_in_file_ = size;
  return absl::OkStatus();
}

absl::Status ArchiveWriter::Write(std::string_view data) {
  if (closed_ || static_cast<int64_t>(data.size()) > left_in_file_) {
    return absl::FailedPreconditionError("archive: more content than the file's size");
  }
  const Utf8Locale utf8;
  while (!data.empty()) {
    const la_ssize_t n = archive_write_data(archive_, data.data(), data.size());
    if (n <= 0) return Error("cannot write");
    data.remove_prefix(static_cast<size_t>(n));
    left_in_file_ -= n;
  }
  return absl::OkStatus();
}

absl::Status ArchiveWriter::Close() {
  if (left_in_file_ != 0) return absl::FailedPreconditionError("archive: a file is unfinished");
  if (closed_) return absl::OkStatus();
  closed_ = true;
  const Utf8Locale utf8;
  if (archive_write_close(archive_) != ARCHIVE_OK) return Error("cannot end");
  return absl::OkStatus();
}

std::string ArchiveWriter::TakeOutput() { return std::exchange(output_, std::string()); }

}  // namespace qai::sandbox
