#include "services/sandbox/preview/preview_cache.h"

#include <brotli/encode.h>
#include <zlib.h>

#include <exception>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/auth.h"
#include "common/log.h"
#include "common/strings.h"
#include "services/sandbox/preview/preview_http.h"

namespace qai::sandbox {
namespace {

// Below this a compressed body saves less than a packet, and costs the client a decoder.
constexpr size_t kMinCompressBytes = 1024;
// Brotli's best quality costs about 1-2 ms of CPU per KiB; above this size a fast quality
// keeps a first visit to a large file quick, at a few percent more bytes.
constexpr size_t kBrotliBestUpTo = 128 << 10;
constexpr int kBrotliBest = 11;
constexpr int kBrotliFast = 5;
// gzip's best level is cheap (about 2 ms for 60 KB), so it is always used.
constexpr int kGzipLevel = 9;
// Estimated bookkeeping per file (map node, tags, views) and per snapshot, so a snapshot of
// many tiny files is not counted as nearly free.
constexpr size_t kFileOverhead = 256;
constexpr size_t kSnapshotOverhead = 1024;

struct TypeInfo {
  std::string_view extension;
  std::string_view type;
  bool compressible;
};

constexpr TypeInfo kTypes[] = {
    {"html", "text/html; charset=utf-8", true},
    {"htm", "text/html; charset=utf-8", true},
    {"css", "text/css; charset=utf-8", true},
    {"js", "text/javascript; charset=utf-8", true},
    {"mjs", "text/javascript; charset=utf-8", true},
    {"cjs", "text/javascript; charset=utf-8", true},
    {"json", "application/json", true},
    {"map", "application/json", true},
    {"webmanifest", "application/manifest+json", true},
    {"svg", "image/svg+xml", true},
    {"png", "image/png", false},
    {"jpg", "image/jpeg", false},
    {"jpeg", "image/jpeg", false},
    {"gif", "image/gif", false},
    {"webp", "image/webp", false},
    {"avif", "image/avif", false},
    {"ico", "image/x-icon", true},
    {"bmp", "image/bmp", true},
    {"txt", "text/plain; charset=utf-8", true},
    {"md", "text/markdown; charset=utf-8", true},
    {"csv", "text/csv; charset=utf-8", true},
    {"xml", "application/xml", true},
    {"wasm", "application/wasm", true},
    {"woff", "font/woff", false},
    {"woff2", "font/woff2", false},
    {"ttf", "font/ttf", true},
    {"otf", "font/otf", true},
    {"mp3", "audio/mpeg", false},
    {"wav", "audio/wav", true},
    {"ogg", "audio/ogg", false},
    {"mp4", "video/mp4", false},
    {"webm", "video/webm", false},
    {"pdf", "application/pdf", false},
    // Sources a browser cannot run, shown as text.
    {"ts", "text/plain; charset=utf-8", true},
    {"tsx", "text/plain; charset=utf-8", true},
    {"jsx", "text/plain; charset=utf-8", true},
    {"py", "text/plain; charset=utf-8", true},
    {"sh", "text/plain; charset=utf-8", true},
    {"yml", "text/plain; charset=utf-8", true},
    {"yaml", "text/plain; charset=utf-8", true},
    {"toml", "text/plain; charset=utf-8", true},
};
constexpr TypeInfo kUnknownType{"", "application/octet-stream", false};

const TypeInfo& TypeOf(std::string_view path) {
  const std::string_view name = path.substr(path.rfind('/') + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return kUnknownType;
  const std::string extension = absl::AsciiStrToLower(common::ToAbsl(name.substr(dot + 1)));
  for (const TypeInfo& info : kTypes) {
    if (extension == info.extension) return info;
  }
  return kUnknownType;
}

std::optional<std::string> Gzip(std::string_view in) {
  z_stream z{};
  // windowBits 15 + 16: a gzip wrapper rather than zlib's.
  if (deflateInit2(&z, kGzipLevel, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return std::nullopt;
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return std::nullopt;
  return out;
}

std::optional<std::string> Brotli(std::string_view in) {
  size_t size = BrotliEncoderMaxCompressedSize(in.size());
  if (size == 0) return std::nullopt;
  std::string out(size, '\0');
  const int quality = in.size() <= kBrotliBestUpTo ? kBrotliBest : kBrotliFast;
  if (!BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, in.size(),
                             reinterpret_cast<const uint8_t*>(in.data()), &size,
                             reinterpret_cast<uint8_t*>(out.data()))) {
    return std::nullopt;
  }
  out.resize(size);
  return out;
}

// ETagOf: a strong entity tag naming the content (and the coding, since each coding's body is
// a representation of its own, RFC 9110 8.8.3.3). 128 bits of SHA-256: the same on every
// replica and after restarts, so a revalidation can reach any of them.
std::string ETagOf(std::string_view content) {
  return absl::StrCat("\"", common::Sha256Hex(content).substr(0, 32), "\"");
}

size_t EncodedBytes(const std::string& body, const std::string& etag) {
  return body.size() + etag.size();
}

}  // namespace

std::string_view CodingName(Coding coding) {
  switch (coding) {
    case Coding::kGzip:
      return "gzip";
    case Coding::kBrotli:
      return "br";
    default:
      return "";
  }
}

std::string_view ContentTypeFor(std::string_view path) { return TypeOf(path).type; }

const PreviewFile* CachedSnapshot::Find(std::string_view path) const {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

struct PreviewCache::Flight {
  bool forgotten = false;  // guarded by PreviewCache::mu_: the result is not to be kept
  absl::Mutex mu;
  absl::CondVar cv;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::StatusOr<std::shared_ptr<const CachedSnapshot>> result ABSL_GUARDED_BY(mu) =
      absl::UnknownError("loading");
};

PreviewCache::PreviewCache(PreviewLoader loader, Options options)
    : loader_(std::move(loader)), options_(options) {}

absl::StatusOr<std::shared_ptr<const CachedSnapshot>> PreviewCache::Get(
    const std::string& snapshot_id) {
  std::shared_ptr<Flight> flight;
  std::shared_ptr<const CachedSnapshot> stale;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    auto it = entries_.find(snapshot_id);
    auto in_flight = flights_.find(snapshot_id);
    if (it != entries_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      // A reload under way: the copy in memory is still right in all likelihood.
      if (now - it->second.checked < options_.max_age || in_flight != flights_.end())
        return it->second.snapshot;
      stale = it->second.snapshot;
    }
    if (in_flight != flights_.end()) {
      flight = in_flight->second;
    } else {
      flights_.emplace(snapshot_id, std::make_shared<Flight>());
    }
  }
  if (flight != nullptr) {
    absl::MutexLock lock(&flight->mu);
    while (!flight->done) flight->cv.Wait(&flight->mu);
    return flight->result;
  }

  absl::StatusOr<std::shared_ptr<const CachedSnapshot>> result = Load(snapshot_id);
  {
    absl::MutexLock lock(&mu_);
    auto node = flights_.extract(snapshot_id);
    flight = std::move(node.mapped());
    const absl::Time now = absl::Now();
    if (result.ok()) {
      if (!flight->forgotten) InsertLocked(snapshot_id, *result, now);
    } else if (result.status().code() == absl::StatusCode::kNotFound) {
      EraseLocked(snapshot_id);
    } else if (stale != nullptr) {
      common::Log(common::LogLevel::kWarn,
                  "preview: reloading a snapshot failed; serving the copy in memory",
                  {{"snapshot_id", snapshot_id}, {"error", result.status().ToString()}});
      if (auto it = entries_.find(snapshot_id); it != entries_.end()) it->second.checked = now;
      result = stale;
    }
  }
  {
    absl::MutexLock lock(&flight->mu);
    flight->result = result;
    flight->done = true;
  }
  flight->cv.SignalAll();
  return result;
}

absl::StatusOr<std::shared_ptr<const CachedSnapshot>> PreviewCache::Load(
    const std::string& snapshot_id) {
  absl::StatusOr<std::shared_ptr<const PreviewSnapshot>> source = absl::UnknownError("not loaded");
  {
    absl::MutexLock lock(&mu_);
    ++loads_;
  }
  // The loader is the database's edge; whatever escapes it must not leave the waiters hanging.
  try {
    source = loader_(snapshot_id);
  } catch (const std::exception& e) {
    source = absl::InternalError(absl::StrCat("preview loader threw: ", e.what()));
  } catch (...) {
    source = absl::InternalError("preview loader threw");
  }
  if (!source.ok()) return source.status();
  if (*source == nullptr) return absl::InternalError("preview loader returned no snapshot");

  auto snapshot = std::make_shared<CachedSnapshot>();
  snapshot->id_ = snapshot_id;
  snapshot->source_ = *source;
  const absl::Time created = (*source)->created;
  if (created != absl::InfinitePast() && created != absl::InfiniteFuture()) {
    snapshot->last_modified_ = absl::FromUnixSeconds(absl::ToUnixSeconds(created));
    snapshot->last_modified_text_ = FormatHttpDate(*snapshot->last_modified_);
  }
  for (const auto& [path, content] : (*source)->files) {
    PreviewFile& file = snapshot->files_.try_emplace(path).first->second;
    const TypeInfo& type = TypeOf(path);
    file.content_ = content;
    file.content_type_ = type.type;
    file.etag_ = ETagOf(content);
    file.compressible_ = type.compressible && content.size() >= kMinCompressBytes;
  }
  return std::shared_ptr<const CachedSnapshot>(std::move(snapshot));
}

std::optional<EncodedBody> PreviewCache::Encoded(const CachedSnapshot& snapshot,
                                                 const PreviewFile& file, Coding coding) {
  if (coding == Coding::kIdentity || !file.compressible_) return std::nullopt;
  PreviewFile::Compressed& slot = file.compressed_[coding == Coding::kGzip ? 0 : 1];
  std::call_once(slot.once, [&] {
    std::optional<std::string> body =
        coding == Coding::kGzip ? Gzip(file.content_) : Brotli(file.content_);
    if (!body || body->size() >= file.content_.size()) return;
    slot.body = std::move(*body);
    // "<hash>-gzip" inside the quotes: a tag of its own, still naming the content.
    slot.etag = absl::StrCat(file.etag_.substr(0, file.etag_.size() - 1), "-",
                             common::ToAbsl(CodingName(coding)), "\"");
    slot.smaller = true;
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(snapshot.id_);
    if (it != entries_.end() && it->second.snapshot.get() == &snapshot) {
      const size_t added = EncodedBytes(slot.body, slot.etag);
      it->second.bytes += added;
      bytes_ += added;
      EvictLocked();
    }
  });
  if (!slot.smaller) return std::nullopt;
  return EncodedBody{slot.body, slot.etag};
}

void PreviewCache::Forget(const std::string& snapshot_id) {
  absl::MutexLock lock(&mu_);
  EraseLocked(snapshot_id);
  if (auto it = flights_.find(snapshot_id); it != flights_.end()) it->second->forgotten = true;
}

void PreviewCache::ForgetAll() {
  absl::MutexLock lock(&mu_);
  entries_.clear();
  lru_.clear();
  bytes_ = 0;
  for (auto& [id, flight] : flights_) flight->forgotten = true;
}

PreviewCache::Stats PreviewCache::stats() const {
  absl::MutexLock lock(&mu_);
  return Stats{.bytes = bytes_, .snapshots = entries_.size(), .loads = loads_};
}

void PreviewCache::InsertLocked(const std::string& snapshot_id,
                                std::shared_ptr<const CachedSnapshot> snapshot, absl::Time now) {
  EraseLocked(snapshot_id);
  size_t bytes = kSnapshotOverhead + snapshot_id.size();
  for (const auto& [path, file] : snapshot->files_) {
    bytes += kFileOverhead + path.size() + file.content_.size() + file.etag_.size();
  }
  if (bytes > options_.max_bytes) {
    common::Log(
        common::LogLevel::kWarn,
        "preview: snapshot larger than the cache; served without keeping it",
        {{"snapshot_id", snapshot_id}, {"bytes", bytes}, {"max_bytes", options_.max_bytes}});
    return;
  }
  lru_.push_front(snapshot_id);
  entries_.emplace(
      snapshot_id,
      Entry{.snapshot = std::move(snapshot), .bytes = bytes, .checked = now, .lru = lru_.begin()});
  bytes_ += bytes;
  EvictLocked();
}

void PreviewCache::EraseLocked(const std::string& snapshot_id) {
  auto it = entries_.find(snapshot_id);
  if (it == entries_.end()) return;
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void PreviewCache::EvictLocked() {
  while (bytes_ > options_.max_bytes && !lru_.empty()) {
    // Copied: EraseLocked erases the list node the back() reference points to.
    const std::string victim = lru_.back();
    EraseLocked(victim);
  }
}

}  // namespace qai::sandbox
