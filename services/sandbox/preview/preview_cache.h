#pragma once
// PreviewCache: the snapshots the preview server shows, kept in memory so a page's requests
// are answered without PostgreSQL.
//
// A snapshot's files never change after the run that wrote them finished, so a cached snapshot
// is the truth for as long as it exists; the one way it goes stale is being deleted (a purged
// project): the owner calls Forget when it learns of that, and as a backstop an entry is
// loaded again once it is `max_age` old. Entries are whole
// snapshots (one load each, however many of its files are asked for), evicted least recently
// used first to keep the total under `max_bytes`. Concurrent misses for one snapshot wait for
// a single load. Failed loads are not remembered: NOT_FOUND may be answered by a snapshot
// written a moment later, and other errors are the database's passing trouble.
//
// Compressed bodies are made on first use, once per file and coding, kept with the snapshot
// and counted in its size:
//
//   PreviewCache cache(loader, {.max_bytes = 64 << 20});
//   absl::StatusOr<std::shared_ptr<const CachedSnapshot>> snapshot = cache.Get(id);
//   if (snapshot.ok()) {
//     if (const PreviewFile* file = (*snapshot)->Find("index.html")) {
//       std::optional<EncodedBody> br = cache.Encoded(**snapshot, *file, Coding::kBrotli);
//     }
//   }

#include <array>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace qai::sandbox {

// PreviewSnapshot: what a loader returns: a snapshot's files (relative path -> content) and
// when it was written (InfinitePast when unknown: responses then carry no Last-Modified).
struct PreviewSnapshot {
  std::map<std::string, std::string> files;
  absl::Time created = absl::InfinitePast();
};

// PreviewLoader: a whole snapshot; NOT_FOUND when there is no such snapshot (the server
// answers 404), any other error when it cannot be read now (503).
using PreviewLoader = std::function<absl::StatusOr<std::shared_ptr<const PreviewSnapshot>>(
    const std::string& snapshot_id)>;

// Coding: the content codings a file is sent in.
enum class Coding { kIdentity, kGzip, kBrotli };

// CodingName: the Content-Encoding token ("gzip", "br"); empty for identity.
[[nodiscard]] std::string_view CodingName(Coding coding);

// ContentTypeFor: by the file name's extension; unknown ones are application/octet-stream,
// so a browser downloads them instead of guessing.
[[nodiscard]] std::string_view ContentTypeFor(std::string_view path);

// PreviewFile: a file of a cached snapshot, with what every response needs worked out once.
class PreviewFile {
 public:
  PreviewFile() = default;
  PreviewFile(const PreviewFile&) = delete;
  PreviewFile& operator=(const PreviewFile&) = delete;

  std::string_view content() const { return content_; }
  std::string_view content_type() const { return content_type_; }
  // etag: the strong entity tag of the identity body, a hash of the content.
  const std::string& etag() const { return etag_; }
  // compressible: whether the type and size make a compressed body worth trying, so
  // responses of this file depend on Accept-Encoding (Vary).
  bool compressible() const { return compressible_; }

 private:
  friend class PreviewCache;
  struct Compressed {
    std::once_flag once;
    bool smaller = false;  // body is used only when smaller than the content
    std::string body;
    std::string etag;
  };

  std::string_view content_;  // in the loader's PreviewSnapshot, which the snapshot keeps
  std::string_view content_type_;
  std::string etag_;
  bool compressible_ = false;
  mutable std::array<Compressed, 2> compressed_;  // gzip, brotli; see PreviewCache::Encoded
};

// CachedSnapshot: a loaded snapshot, shared by the cache and the responses being written.
class CachedSnapshot {
 public:
  // Find: the file at `path`, or null.
  [[nodiscard]] const PreviewFile* Find(std::string_view path) const;
  const std::string& id() const { return id_; }
  // last_modified: when the snapshot was written, to the second (HTTP dates have no finer
  // unit); nullopt when unknown. last_modified_text is its HTTP date, or empty.
  const std::optional<absl::Time>& last_modified() const { return last_modified_; }
  const std::string& last_modified_text() const { return last_modified_text_; }
  size_t FileCountForTest() const { return files_.size(); }

 private:
  friend class PreviewCache;
  std::string id_;
  std::shared_ptr<const PreviewSnapshot> source_;
  std::map<std::string, PreviewFile, std::less<>> files_;
  std::optional<absl::Time> last_modified_;
  std::string last_modified_text_;
};

// EncodedBody: a file's body in a content coding and that body's entity tag.
struct EncodedBody {
  std::string_view body;
  std::string_view etag;
};

class PreviewCache {
 public:
  struct Options {
    // Bytes of cached snapshots (content, compressed bodies and bookkeeping, estimated).
    // A snapshot larger than this is served but not kept.
    size_t max_bytes = 256 << 20;
    // How long a snapshot is served from memory before it is loaded again, which is how a
    // deleted snapshot stops being shown.
    absl::Duration max_age = absl::Minutes(5);
  };

  struct Stats {
    size_t bytes = 0;
    size_t snapshots = 0;
    uint64_t loads = 0;  // loader calls
  };

  PreviewCache(PreviewLoader loader, Options options);
  PreviewCache(const PreviewCache&) = delete;
  PreviewCache& operator=(const PreviewCache&) = delete;

  // Get: the snapshot, from memory or loaded now (see the overview). When a reload of an
  // expired snapshot fails with anything but NOT_FOUND, the copy in memory is served on.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const CachedSnapshot>> Get(
      const std::string& snapshot_id);

  // Encoded: `file` of `snapshot` compressed with `coding` (gzip or brotli), made on the
  // first call (concurrent callers wait for that one compression); nullopt when the file is
  // not compressible or the result is no smaller. Brotli runs at its best quality, 11, for
  // files up to 128 KiB (about 1 ms of CPU per KiB, once) and at 5 above, so the largest
  // snapshot file costs a first visitor well under a second.
  [[nodiscard]] std::optional<EncodedBody> Encoded(const CachedSnapshot& snapshot,
                                                   const PreviewFile& file, Coding coding);

  // Forget: drops the snapshot (deleted), also from a load under way, so the next request
  // loads it again. ForgetAll: drops everything (deletions may have been missed).
  void Forget(const std::string& snapshot_id);
  void ForgetAll();

  [[nodiscard]] Stats stats() const;

 private:
  struct Flight;
  struct Entry {
    std::shared_ptr<const CachedSnapshot> snapshot;
    size_t bytes = 0;
    absl::Time checked;  // loaded, or last tried to reload
    std::list<std::string>::iterator lru;
  };

  absl::StatusOr<std::shared_ptr<const CachedSnapshot>> Load(const std::string& snapshot_id);
  void InsertLocked(const std::string& snapshot_id, std::shared_ptr<const CachedSnapshot> snapshot,
                    absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(const std::string& snapshot_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PreviewLoader loader_;
  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t loads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace qai::sandbox
