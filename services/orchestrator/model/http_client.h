#pragma once
// HttpPost: one HTTP(S) POST on libcurl, its answer delivered as it arrives.
//
//   HttpRequest req{.url = "https://api.example.com/v1/chat/completions",
//                   .headers = {"Content-Type: application/json"}, .body = json,
//                   .timeout = absl::Seconds(30)};
//   absl::StatusOr<HttpHead> head = HttpPost(req, [&](const HttpHead& head, std::string_view bytes)
//   {
//     ... consume bytes; return false to stop ...
//   }, [] { return false; });
//
// Transport faults are statuses whose text names no host (they end up in run records that
// callers see): DEADLINE_EXCEEDED when the timeout passed, UNAVAILABLE when the connection
// failed or broke (the answer cut short included), CANCELLED when `cancelled` said so, ABORTED
// when the sink refused more bytes. The full libcurl diagnostic goes to the log. HTTP error
// statuses are not faults here: the caller reads head.status.
//
// Thread-safe: every call has its own connection.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace qai::orchestrator {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration timeout = absl::Minutes(10);  // the whole exchange
};

// HttpHead: the status line and headers of the answer (names lower-cased; the last of repeats).
struct HttpHead {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string Header(const std::string& lower_name) const;
};

// HttpSink: receives the answer's body piece by piece, with its head; false stops the transfer.
using HttpSink = std::function<bool(const HttpHead& head, std::string_view bytes)>;

// HttpPost: sends the request and feeds the answer's body to `sink`; returns the answer's head
// once all of it arrived. `cancelled` is polled at least once a second while waiting.
[[nodiscard]] absl::StatusOr<HttpHead> HttpPost(const HttpRequest& request, const HttpSink& sink,
                                                const std::function<bool()>& cancelled);

// RetryAfter: how long the answer asks a client to wait before trying again: `Retry-After` in
// seconds or as an HTTP date (RFC 9110), or OpenAI's `retry-after-ms`; nullopt when it says
// nothing readable. Never negative.
std::optional<absl::Duration> RetryAfter(const HttpHead& head, absl::Time now);

}  // namespace qai::orchestrator
