#pragma once
// The HTTP/1.1 pieces the preview server is made of, as pure functions over text: reading a
// request head within limits, the request target, byte ranges, validators and conditional
// requests, content-coding negotiation and HTTP dates. Nothing here does I/O, so each rule is
// unit-tested on its own (preview_http_test.cc); preview_server.cc puts them together.
//
//   RequestHead head;
//   switch (ParseRequestHead(buffer, HeadLimits{}, head)) {
//     case HeadParse::kIncomplete: /* read more */ break;
//     case HeadParse::kComplete: /* head.method, head.Field("Range"), ... */ break;
//     default: /* answer with HeadParseStatus(result) and close */ break;
//   }
//
// Everything follows RFC 9110 (semantics) and RFC 9112 (HTTP/1.1 messages); where they let a
// server choose, the comment says what this one does.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "services/sandbox/archive.h"

namespace qai::sandbox {

// HeadLimits: how much of a request head is read before it is refused, so a client cannot make
// the server buffer without bound.
struct HeadLimits {
  size_t max_request_line = 8 << 10;  // beyond it: 414
  size_t max_head = 16 << 10;         // the request line and all fields; beyond it: 431
  size_t max_fields = 100;            // beyond it: 431
};

// RequestHead: a parsed request line and header fields. The views point into the buffer that
// was parsed and are valid while it is unchanged.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  int minor_version = 1;                                              // HTTP/1.<minor_version>
  std::vector<std::pair<std::string_view, std::string_view>> fields;  // values without OWS
  size_t length = 0;  // bytes of the head, up to and including its empty line

  // Field: the value of the first field named `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> Field(std::string_view name) const;
  // FieldCount: how many fields are named `name`.
  [[nodiscard]] size_t FieldCount(std::string_view name) const;
};

enum class HeadParse {
  kIncomplete,           // no empty line yet, and within the limits: read more
  kComplete,             // `head` is filled in
  kBadRequest,           // 400: not an HTTP/1.x request head
  kUriTooLong,           // 414
  kFieldsTooLarge,       // 431
  kVersionNotSupported,  // 505: HTTP/2 and later spoken as text, or HTTP/0.x
};

// ParseRequestHead: the head at the start of `in` (bytes after it, a pipelined request, are
// left alone). Lines end with CRLF or a bare LF (RFC 9112 2.2); a bare CR elsewhere, a field
// name with spaces or without its colon, obsolete line folding and control characters in
// values are refused rather than guessed at, since guessing differently from a proxy in front
// is how requests get smuggled. `head` is reused so its vector keeps its capacity.
[[nodiscard]] HeadParse ParseRequestHead(std::string_view in, const HeadLimits& limits,
                                         RequestHead& head);

// HeadParseStatus: the status code answering a refused head (400, 414, 431 or 505).
[[nodiscard]] int HeadParseStatus(HeadParse result);

// DecodeTargetPath: the path of an origin-form ("/a%20b?q") or absolute-form
// ("http://host/a") request target, without its query and percent-decoded once. nullopt for
// any other form and for a malformed %-escape.
[[nodiscard]] std::optional<std::string> DecodeTargetPath(std::string_view target);

// SnapshotPath: a snapshot file named by a request path.
struct SnapshotPath {
  std::string snapshot_id;  // lower case
  std::string file;         // relative, "index.html" for an empty path or one ending in '/'
};

// ParseSnapshotPath: "/<uuid>/<relative path>" where the relative path's segments are
// non-empty, not "." or "..", and free of control characters and backslashes, and the whole is
// valid UTF-8; nullopt otherwise. This is what confines a request to one snapshot's files.
[[nodiscard]] std::optional<SnapshotPath> ParseSnapshotPath(std::string_view path);

// DownloadPath: a snapshot's archive named by a request path.
struct DownloadPath {
  std::string snapshot_id;  // lower case
  std::string file_name;    // "<folder>.zip" or "<folder>.tar.gz"
  std::string folder;       // the file name without its extension: where the files are
  ArchiveFormat format;
};

// ParseDownloadPath: "/download/<uuid>/<file name>" where the file name ends in .zip or
// .tar.gz and is an archive name (archive.h IsArchiveName); nullopt otherwise.
[[nodiscard]] std::optional<DownloadPath> ParseDownloadPath(std::string_view path);

// HasToken: whether a comma-separated header value (Connection) lists `token`, in any case.
[[nodiscard]] bool HasToken(std::string_view list, std::string_view token);

// ByteRangeRequest: what a Range header asks of a representation `length` bytes long.
struct ByteRangeRequest {
  enum Kind {
    kIgnore,         // no Range, another unit, a syntax error, or several ranges: answer 200
    kSatisfiable,    // answer 206 with bytes [first, last]
    kUnsatisfiable,  // answer 416 with "Content-Range: bytes */<length>"
  };
  Kind kind = kIgnore;
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};

// ParseByteRange: the Range header `value` (RFC 9110 14.2) against `length`. Forms: "a-b"
// ("b" past the end means the end), "a-" and "-n" (the last n bytes, all of them when n is
// larger). Several ranges are answered with the whole representation, which the RFC allows,
// so no multipart body is ever assembled for a client.
[[nodiscard]] ByteRangeRequest ParseByteRange(std::string_view value, uint64_t length);

// ContentRange: "bytes <first>-<last>/<length>".
[[nodiscard]] std::string ContentRange(uint64_t first, uint64_t last, uint64_t length);

// IfNoneMatchMatches: whether an If-None-Match value ("*", or a list of entity tags, weak or
// not) matches `etag` by the weak comparison (RFC 9110 13.1.2): the W/ prefixes are ignored.
// Malformed members never match.
[[nodiscard]] bool IfNoneMatchMatches(std::string_view value, std::string_view etag);

// IfRangeMatches: whether an If-Range value lets the range apply: an entity tag that is
// strongly equal to `etag` (never a weak one), or an HTTP date exactly equal to
// `last_modified` (a strong validator here, since a snapshot never changes after it was
// written). Anything else means "send the whole representation".
[[nodiscard]] bool IfRangeMatches(std::string_view value, std::string_view etag,
                                  std::optional<absl::Time> last_modified);

// CodingWeights: the qvalues (in thousandths, 0..1000) an Accept-Encoding value gives the
// codings the server can send.
struct CodingWeights {
  int brotli = 0;
  int gzip = 0;
  int identity = 1;  // acceptable but least preferred unless named (RFC 9110 12.5.3)
};

// ParseAcceptEncoding: the weights of br, gzip ("x-gzip" too) and identity, with "*" standing
// for whichever of them is not named. An absent header (nullopt) means identity only, since
// nothing says the client can decode anything else.
[[nodiscard]] CodingWeights ParseAcceptEncoding(std::optional<std::string_view> value);

// FormatHttpDate: IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
[[nodiscard]] std::string FormatHttpDate(absl::Time time);

// ParseHttpDate: IMF-fixdate, or the obsolete RFC 850 and asctime forms recipients must still
// accept (RFC 9110 5.6.7); nullopt for anything else.
[[nodiscard]] std::optional<absl::Time> ParseHttpDate(std::string_view value);

}  // namespace qai::sandbox
