#pragma once
// PageTokenCodec: opaque, tamper-evident page tokens for keyset pagination (AIP-158).
//
// A token carries a store's cursor (e.g. the last row's sort key) and the scope of the query
// it belongs to (e.g. the owner whose list it pages), signed with HMAC-SHA256. A token that was
// edited, truncated, or made for another query is refused with INVALID_ARGUMENT naming
// `page_token`, so a client cannot page through someone else's list by forging a cursor.
//
//   PageTokenCodec codec(secret);
//   std::string token = codec.Encode("projects/owner:alice", cursor);
//   absl::StatusOr<std::string> cursor = codec.Decode(token, "projects/owner:alice");

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace qai::common {

class PageTokenCodec {
 public:
  // key: a secret shared by every replica (so a token works on any of them).
  explicit PageTokenCodec(std::string_view key);

  std::string Encode(std::string_view scope, std::string_view cursor) const;
  [[nodiscard]] absl::StatusOr<std::string> Decode(std::string_view token,
                                                   std::string_view scope) const;

 private:
  std::string Mac(std::string_view scope, std::string_view cursor) const;
  std::string key_;
};

// KeysetPosition: where a keyset page of (time, id)-ordered rows ends: the last row's time in
// µs and its id. Every list of this suite pages that way.
struct KeysetPosition {
  int64_t micros = 0;
  std::string id;
};

// EncodePosition / DecodePosition: a position as a page token of `scope`. An empty token is
// the first page (nullopt); a bad one is INVALID_ARGUMENT naming page_token.
std::string EncodePosition(const PageTokenCodec& codec, std::string_view scope,
                           const KeysetPosition& position);
[[nodiscard]] absl::StatusOr<std::optional<KeysetPosition>> DecodePosition(
    const PageTokenCodec& codec, std::string_view token, std::string_view scope);

// Page sizes as docs/api.md sets them: 0 → 20, above 100 → 100, negative → INVALID_ARGUMENT.
[[nodiscard]] absl::StatusOr<int> NormalizePageSize(int page_size);

}  // namespace qai::common
