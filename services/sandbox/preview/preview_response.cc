#include "services/sandbox/preview/preview_response.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/strings.h"

namespace qai::sandbox {
namespace {

// Model-written pages may run their own scripts and forms, but `sandbox` without
// allow-same-origin gives them an opaque origin: no cookies or storage of the preview origin,
// and no reach into other snapshots' pages.
constexpr std::string_view kSecurityFields =
    "X-Content-Type-Options: nosniff\r\n"
    "Content-Security-Policy: sandbox allow-scripts allow-forms\r\n";
// A snapshot's URL names content that never changes.
constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";
// An error may be gone a moment later (a snapshot being written, a database back).
constexpr std::string_view kNoCache = "no-cache";

std::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Internal Server Error";
  }
}

// DateField: "Date: <now>\r\n". Formatting a date costs a microsecond or two, so each thread
// keeps the second it formatted last.
std::string_view DateField() {
  thread_local int64_t second = -1;
  thread_local std::string field;
  const absl::Time now = absl::Now();
  const int64_t s = absl::ToUnixSeconds(now);
  if (s != second) {
    second = s;
    field = absl::StrCat("Date: ", FormatHttpDate(absl::FromUnixSeconds(s)), "\r\n");
  }
  return field;
}

// Head: a response head under construction.
class Head {
 public:
  explicit Head(int status) : status_(status) {
    out_.reserve(512);
    absl::StrAppend(&out_, "HTTP/1.1 ", status, " ");
    out_.append(Reason(status)).append("\r\n").append(DateField()).append(kSecurityFields);
  }
  Head& Field(std::string_view name, std::string_view value) {
    out_.append(name).append(": ").append(value).append("\r\n");
    return *this;
  }
  Head& Field(std::string_view name, uint64_t value) {
    out_.append(name).append(": ");
    absl::StrAppend(&out_, value, "\r\n");
    return *this;
  }
  // Finish: the response, closing the connection after it unless `keep_alive`.
  PreviewResponse Finish(bool keep_alive, bool http10) && {
    if (!keep_alive) {
      out_ += "Connection: close\r\n";
    } else if (http10) {
      out_ += "Connection: keep-alive\r\n";
    }
    out_ += "\r\n";
    return PreviewResponse{.status = status_, .head = std::move(out_), .close = !keep_alive};
  }

 private:
  int status_;
  std::string out_;
};

struct Connection {
  bool keep_alive;
  bool http10;
};

PreviewResponse Text(int status, std::string_view text, Connection connection, bool head_only) {
  Head head(status);
  head.Field("Content-Type", "text/plain; charset=utf-8")
      .Field("Content-Length", text.size())
      .Field("Cache-Control", kNoCache);
  if (status == 405) head.Field("Allow", "GET, HEAD");
  if (status == 503) head.Field("Retry-After", "1");
  PreviewResponse out = std::move(head).Finish(connection.keep_alive, connection.http10);
  if (!head_only) out.body = text;
  return out;
}

std::string_view ErrorText(int status) {
  switch (status) {
    case 404:
      return "not found\n";
    case 405:
      return "method not allowed\n";
    case 414:
      return "request target too long\n";
    case 431:
      return "request header fields too large\n";
    case 503:
      return "preview unavailable, try again\n";
    case 505:
      return "HTTP/1.1 only\n";
    default:
      return "bad request\n";
  }
}

// Representation: the body chosen for a response and its validator.
struct Representation {
  Coding coding = Coding::kIdentity;
  std::string_view body;
  std::string_view etag;
};

// Identity: the file's own bytes, and their validator.
Representation Identity(const PreviewFile& file) {
  return Representation{.coding = Coding::kIdentity, .body = file.content(), .etag = file.etag()};
}

// Negotiate: the coding the client prefers most among those it accepts and the file has a
// (smaller) compressed body for; brotli wins a tie, being the smaller.
Representation Negotiate(PreviewCache& cache, const CachedSnapshot& snapshot,
                         const PreviewFile& file, std::optional<std::string_view> accept_encoding) {
  const Representation identity = Identity(file);
  if (!file.compressible()) return identity;
  const CodingWeights weights = ParseAcceptEncoding(accept_encoding);
  std::pair<Coding, int> order[] = {{Coding::kBrotli, weights.brotli},
                                    {Coding::kGzip, weights.gzip}};
  if (weights.gzip > weights.brotli) std::swap(order[0], order[1]);
  for (const auto& [coding, weight] : order) {
    if (weight == 0 || weight < weights.identity) continue;
    if (std::optional<EncodedBody> encoded = cache.Encoded(snapshot, file, coding)) {
      return Representation{.coding = coding, .body = encoded->body, .etag = encoded->etag};
    }
  }
  // Nothing acceptable but identity, or identity refused and nothing else available: identity,
  // as RFC 9110 12.5.3 advises over a 415.
  return identity;
}

// ContentLengthIsZero: whether the request announces no body. nullopt when its Content-Length
// fields are malformed or disagree (400: the message's framing is unknown).
std::optional<bool> ContentLengthIsZero(const RequestHead& request) {
  std::optional<std::string_view> seen;
  for (const auto& [name, value] : request.fields) {
    if (!absl::EqualsIgnoreCase(common::ToAbsl(name), "Content-Length")) continue;
    if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos)
      return std::nullopt;
    if (seen && *seen != value) return std::nullopt;
    seen = value;
  }
  return !seen || seen->find_first_not_of('0') == std::string_view::npos;
}

// ConnectionOf: whether the client asks to keep the connection (HTTP/1.0 must say so,
// HTTP/1.1 must not say otherwise), within may_keep_alive.
Connection ConnectionOf(const RequestHead& request, bool may_keep_alive) {
  const std::optional<std::string_view> field = request.Field("Connection");
  const bool http10 = request.minor_version == 0;
  const bool asked =
      http10 ? field && HasToken(*field, "keep-alive") : !(field && HasToken(*field, "close"));
  return Connection{.keep_alive = asked && may_keep_alive, .http10 = http10};
}

// HostIsClear: HTTP/1.1 requires exactly one Host (RFC 9112 3.2); more than one is a smuggling
// attempt.
bool HostIsClear(const RequestHead& request, bool http10) {
  const size_t hosts = request.FieldCount("Host");
  return !(hosts > 1 || (!http10 && hosts == 0));
}

// FileLookup: the snapshot and file a request names, or the status of its error response
// (400, 404, 503) when there is none.
struct FileLookup {
  int error = 0;
  std::shared_ptr<const CachedSnapshot> snapshot;
  const PreviewFile* file = nullptr;
};

FileLookup LookUpFile(PreviewCache& cache, const RequestHead& request) {
  const std::optional<std::string> path = DecodeTargetPath(request.target);
  if (!path) return {.error = 400};
  const std::optional<SnapshotPath> target = ParseSnapshotPath(*path);
  if (!target) return {.error = 404};
  absl::StatusOr<std::shared_ptr<const CachedSnapshot>> snapshot = cache.Get(target->snapshot_id);
  if (!snapshot.ok()) {
    if (snapshot.status().code() == absl::StatusCode::kNotFound) return {.error = 404};
    common::Log(common::LogLevel::kWarn, "preview: loading a snapshot failed",
                {{"snapshot_id", target->snapshot_id}, {"error", snapshot.status().ToString()}});
    return {.error = 503};
  }
  const PreviewFile* file = (*snapshot)->Find(target->file);
  if (file == nullptr) return {.error = 404};
  return {.snapshot = *std::move(snapshot), .file = file};
}

// RequestedRange: the byte range a GET asks for. A Range applies to GET only (RFC 9110 14.2),
// and only while If-Range still names this content; a ranged response is of the identity
// body, whose offsets the client can resume.
ByteRangeRequest RequestedRange(const RequestHead& request, const PreviewFile& file,
                                const CachedSnapshot& snap) {
  ByteRangeRequest range;
  if (std::optional<std::string_view> value = request.Field("Range")) {
    range = ParseByteRange(*value, file.content().size());
    std::optional<std::string_view> if_range = request.Field("If-Range");
    if (range.kind != ByteRangeRequest::kIgnore && if_range &&
        !IfRangeMatches(*if_range, file.etag(), snap.last_modified())) {
      range.kind = ByteRangeRequest::kIgnore;
    }
  }
  return range;
}

// NotModified: whether the client's copy is current. If-None-Match decides when present; only
// without it does If-Modified-Since (RFC 9110 13.2.2).
bool NotModified(const RequestHead& request, std::string_view etag, const CachedSnapshot& snap) {
  if (std::optional<std::string_view> if_none_match = request.Field("If-None-Match")) {
    return IfNoneMatchMatches(*if_none_match, etag);
  }
  if (std::optional<std::string_view> since = request.Field("If-Modified-Since");
      since && snap.last_modified()) {
    const std::optional<absl::Time> date = ParseHttpDate(*since);
    return date && *snap.last_modified() <= *date;
  }
  return false;
}

// AddValidators: the validators and caching fields of a representation, which a 304 repeats.
void AddValidators(Head& head, const Representation& chosen, const CachedSnapshot& snap,
                   const PreviewFile& file) {
  head.Field("ETag", chosen.etag);
  if (!snap.last_modified_text().empty()) head.Field("Last-Modified", snap.last_modified_text());
  head.Field("Cache-Control", kImmutable);
  if (file.compressible()) head.Field("Vary", "Accept-Encoding");
}

// RangeNotSatisfiable: the 416 for a range outside a file of `length` bytes.
PreviewResponse RangeNotSatisfiable(uint64_t length, Connection connection) {
  Head head(416);
  const std::string_view text = "range not satisfiable\n";
  head.Field("Content-Type", "text/plain; charset=utf-8")
      .Field("Content-Length", text.size())
      .Field("Content-Range", absl::StrCat("bytes */", length))
      .Field("Cache-Control", kNoCache);
  PreviewResponse out = std::move(head).Finish(connection.keep_alive, connection.http10);
  out.body = text;
  return out;
}

// FileResponse: the 200 with the chosen representation, or the 206 with the range of it.
PreviewResponse FileResponse(const ByteRangeRequest& range, const Representation& chosen,
                             const CachedSnapshot& snap, const PreviewFile& file,
                             Connection connection, bool head_only) {
  const bool partial = range.kind == ByteRangeRequest::kSatisfiable;
  Head head(partial ? 206 : 200);
  head.Field("Content-Type", file.content_type());
  std::string_view body = chosen.body;
  if (partial) {
    body = body.substr(range.first, range.last - range.first + 1);
    head.Field("Content-Range", ContentRange(range.first, range.last, file.content().size()));
  }
  head.Field("Content-Length", body.size());
  if (chosen.coding != Coding::kIdentity) head.Field("Content-Encoding", CodingName(chosen.coding));
  head.Field("Accept-Ranges", "bytes");
  AddValidators(head, chosen, snap, file);
  PreviewResponse out = std::move(head).Finish(connection.keep_alive, connection.http10);
  if (!head_only) out.body = body;
  return out;
}

// DownloadResponse: a snapshot's archive, streamed; 404 or 503 when it cannot be.
PreviewResponse DownloadResponse(const DownloadOpener& open, const DownloadPath& download,
                                 Connection connection, bool head_only) {
  absl::StatusOr<BodySource> source = open(download);
  if (!source.ok()) {
    if (source.status().code() == absl::StatusCode::kNotFound) {
      return Text(404, ErrorText(404), connection, head_only);
    }
    if (source.status().code() != absl::StatusCode::kResourceExhausted) {
      common::Log(common::LogLevel::kWarn, "preview: a download failed to start",
                  {{"snapshot_id", download.snapshot_id}, {"error", source.status().ToString()}});
    }
    return Text(503, ErrorText(503), connection, head_only);
  }
  Head head(200);
  head.Field("Content-Type", ArchiveContentType(download.format))
      .Field("Content-Disposition",
             absl::StrCat("attachment; filename=\"", download.file_name, "\""))
      .Field("Cache-Control", "no-store");
  // HTTP/1.0 has no chunks: such a body ends with its connection.
  const bool chunked = !connection.http10;
  if (chunked) {
    head.Field("Transfer-Encoding", "chunked");
  } else {
    connection.keep_alive = false;
  }
  PreviewResponse out = std::move(head).Finish(connection.keep_alive, connection.http10);
  if (!head_only) {
    out.stream = *std::move(source);
    out.chunked = chunked;
  }
  return out;
}

}  // namespace

bool NextPiece(PreviewResponse& out, bool* failed) {
  *failed = false;
  if (!out.stream) return false;
  absl::StatusOr<std::string> piece = out.stream();
  if (!piece.ok()) {
    common::Log(common::LogLevel::kWarn, "preview: a download was cut",
                {{"error", piece.status().ToString()}});
    out.stream = nullptr;
    *failed = true;
    return false;
  }
  if (piece->empty()) {
    out.stream = nullptr;  // the end
    if (!out.chunked) return false;
    out.piece = "0\r\n\r\n";
  } else if (out.chunked) {
    out.piece = absl::StrCat(absl::Hex(piece->size()), "\r\n", *piece, "\r\n");
  } else {
    out.piece = *std::move(piece);
  }
  out.head.clear();
  out.body = out.piece;
  return true;
}

PreviewResponse RespondToRefusedHead(HeadParse result) {
  const int status = HeadParseStatus(result);
  return Text(status, ErrorText(status), {.keep_alive = false, .http10 = false}, false);
}

PreviewResponse RespondToRequest(PreviewCache& cache, const RequestHead& request,
                                 bool may_keep_alive, const DownloadOpener* downloads) {
  Connection connection = ConnectionOf(request, may_keep_alive);
  const bool http10 = connection.http10;
  const bool head_only = request.method == "HEAD";
  const std::optional<bool> no_body = ContentLengthIsZero(request);
  if (!no_body || !HostIsClear(request, http10))
    return Text(400, ErrorText(400), {.keep_alive = false, .http10 = http10}, head_only);
  // A body is never read, so its connection ends with the answer.
  if (!*no_body || request.FieldCount("Transfer-Encoding") > 0) connection.keep_alive = false;
  if (request.method != "GET" && !head_only) return Text(405, ErrorText(405), connection, false);
  if (downloads != nullptr) {
    const std::optional<std::string> path = DecodeTargetPath(request.target);
    const std::optional<DownloadPath> download =
        path ? ParseDownloadPath(*path) : std::optional<DownloadPath>();
    if (download) return DownloadResponse(*downloads, *download, connection, head_only);
  }

  FileLookup found = LookUpFile(cache, request);
  if (found.error != 0) return Text(found.error, ErrorText(found.error), connection, head_only);
  const PreviewFile& file = *found.file;
  const CachedSnapshot& snap = *found.snapshot;
  const ByteRangeRequest range =
      head_only ? ByteRangeRequest{} : RequestedRange(request, file, snap);
  const Representation chosen = range.kind == ByteRangeRequest::kIgnore
                                    ? Negotiate(cache, snap, file, request.Field("Accept-Encoding"))
                                    : Identity(file);
  if (NotModified(request, chosen.etag, snap)) {
    Head head(304);
    AddValidators(head, chosen, snap, file);
    return std::move(head).Finish(connection.keep_alive, http10);
  }
  if (range.kind == ByteRangeRequest::kUnsatisfiable)
    return RangeNotSatisfiable(file.content().size(), connection);
  PreviewResponse out = FileResponse(range, chosen, snap, file, connection, head_only);
  out.owner = std::move(found.snapshot);
  return out;
}

}  // namespace qai::sandbox
