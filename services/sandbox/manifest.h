#pragma once
// A snapshot's manifest: each of its paths with the SHA-256 of its content (the blob in
// sandbox.blobs that holds it), as sandbox.snapshots.manifest stores it: for each file in path
// order, the path's bytes, a NUL (no path holds one), and the 32 bytes of the hash. About 50
// bytes a file, so a version costs its changed contents plus that.
//
//   std::string stored = EncodeManifest({{"index.html", common::Sha256Digest("<h1>Hi</h1>")}});
//   absl::StatusOr<ManifestEntries> entries = DecodeManifest(stored);

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace qai::sandbox {

inline constexpr size_t kHashBytes = 32;

// ManifestEntries: path -> raw SHA-256 (kHashBytes bytes).
using ManifestEntries = std::map<std::string, std::string>;

// EncodeManifest: the stored form; a path with a NUL or a hash of another size is an internal
// error, never written.
[[nodiscard]] absl::StatusOr<std::string> EncodeManifest(const ManifestEntries& entries);
// DecodeManifest: INTERNAL when `stored` is not a manifest.
[[nodiscard]] absl::StatusOr<ManifestEntries> DecodeManifest(std::string_view stored);

}  // namespace qai::sandbox
