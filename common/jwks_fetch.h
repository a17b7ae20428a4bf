#pragma once
// Where a JSON Web Key Set comes from (QAI_JWT_JWKS): a file, or an HTTPS URL fetched with
// libcurl, with how long its server says the answer stays fresh (Cache-Control: max-age).
//
//   absl::StatusOr<JwksLoader> load =
//   JwksLoaderFor("https://clerk.example.com/.well-known/jwks.json"); absl::StatusOr<JwksDocument>
//   doc = (*load)([] { return false; });
//
// Errors never hold anything secret (a URL with credentials is refused up front), so they may
// be logged.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace qai::common {

// JwksDocument: a key set's text, and how long its source says it stays fresh (nullopt: said
// nothing; zero: not to be reused, as with no-cache or no-store).
struct JwksDocument {
  std::string body;
  std::optional<absl::Duration> max_age;
};

// JwksLoader: reads the key set once; `cancelled` is polled while waiting on the network, and
// true stops the transfer (CANCELLED).
using JwksLoader =
    std::function<absl::StatusOr<JwksDocument>(const std::function<bool()>& cancelled)>;

struct JwksFetchOptions {
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(10);  // the whole exchange
  size_t max_bytes = size_t{1} << 20;          // a larger key set is refused, not read
};

// IsJwksUrl: whether QAI_JWT_JWKS names a URL (it has "://") rather than a file.
[[nodiscard]] bool IsJwksUrl(std::string_view source);

// JwksLoaderFor: the loader of QAI_JWT_JWKS's value. A URL must be https://, or http:// to a
// loopback host (127.0.0.1, [::1], localhost: a sidecar, a test), and carry no user:password@;
// anything else is INVALID_ARGUMENT. A file is read whole (at most max_bytes), and says nothing
// about freshness.
[[nodiscard]] absl::StatusOr<JwksLoader> JwksLoaderFor(std::string_view source,
                                                       JwksFetchOptions options = {});

// FetchJwks: one GET of `url` (checked by JwksLoaderFor): no redirects followed, anything but
// 200 refused ("answered HTTP 404"), a body over max_bytes refused; DEADLINE_EXCEEDED past the
// timeouts, UNAVAILABLE when the connection fails.
[[nodiscard]] absl::StatusOr<JwksDocument> FetchJwks(const std::string& url,
                                                     const JwksFetchOptions& options,
                                                     const std::function<bool()>& cancelled);

// CacheControlMaxAge: the freshness a Cache-Control value gives: max-age in seconds (the
// smallest if repeated; a value past a year counts as a year), zero for no-cache or no-store,
// nullopt when it says neither. Directive names are case-insensitive.
[[nodiscard]] std::optional<absl::Duration> CacheControlMaxAge(std::string_view cache_control);

}  // namespace qai::common
