#pragma once
// RespondToRequest: what the preview server answers to one request head, as a static file
// host does, with the snapshot files from a PreviewCache.
//
//   GET|HEAD /<snapshot id>/<path>   the file (an empty path or a trailing '/' is index.html)
//   GET|HEAD /download/<snapshot id>/<name>.zip|.tar.gz
//                                    the snapshot's files as one archive, in a folder <name>,
//                                    streamed as it is made (chunked; Content-Disposition:
//                                    attachment with that file name; not cached)
//
// A file's response is immutable (Cache-Control: public, max-age=1 year, immutable), since a
// snapshot's URL never shows other content; it carries a strong ETag (per content coding),
// Last-Modified (when the snapshot was written), Accept-Ranges, and Vary: Accept-Encoding when
// the file is sent compressed to some clients. Conditional requests (If-None-Match, then
// If-Modified-Since) are answered 304; a single byte range 206 (uncompressed, and subject to
// If-Range), an unsatisfiable one 416. Every response, errors too, carries a restrictive
// Content-Security-Policy sandbox and nosniff, since the pages are model-written; errors are
// not cached (no-cache). Methods other than GET and HEAD are 405.
//
// Request bodies are never read: a request announcing one (Content-Length other than 0, or
// Transfer-Encoding) is answered and its connection closed, so no body can be taken for the
// next request on that connection.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "services/sandbox/preview/preview_cache.h"
#include "services/sandbox/preview/preview_http.h"

namespace qai::sandbox {

// BodySource: a streamed body's next piece; empty at its end. An error cuts the response short
// (its connection is closed without the body's end, so the client sees it is incomplete).
using BodySource = std::function<absl::StatusOr<std::string>()>;

// DownloadOpener: a snapshot's archive, to be streamed; NOT_FOUND for an unknown snapshot,
// RESOURCE_EXHAUSTED when too many downloads run (both answered, 404 and 503).
using DownloadOpener = std::function<absl::StatusOr<BodySource>(const DownloadPath& download)>;

// PreviewResponse: a response ready to be written.
struct PreviewResponse {
  int status = 0;
  std::string head;       // status line and header fields, ending with the empty line
  std::string_view body;  // empty for HEAD and 304; points into `owner`, `piece` or static text
  std::shared_ptr<const CachedSnapshot> owner;
  bool close = false;  // the connection ends after this response
  // A streamed body: once head and body are written, the next piece goes into `piece` (framed
  // as a chunk when `chunked`) and `body` points to it, until the source's end.
  BodySource stream;
  bool chunked = false;
  std::string piece;
};

// RespondToRequest: the response to `request`. `may_keep_alive` is false when the connection
// must end after this response anyway (its request quota is used up, the server is stopping).
// Downloads are answered with `downloads` (404 without it).
[[nodiscard]] PreviewResponse RespondToRequest(PreviewCache& cache, const RequestHead& request,
                                               bool may_keep_alive,
                                               const DownloadOpener* downloads = nullptr);

// NextPiece: the next piece of `out`'s streamed body in out.piece (body points to it), framed
// as a chunk, the last chunk after the source's end; false when there is no more to write.
// *failed is set when the source failed (the connection must close at once).
[[nodiscard]] bool NextPiece(PreviewResponse& out, bool* failed);

// RespondToRefusedHead: the response to a head ParseRequestHead refused; it closes the
// connection, since where the next request would start is unknown.
[[nodiscard]] PreviewResponse RespondToRefusedHead(HeadParse result);

}  // namespace qai::sandbox
