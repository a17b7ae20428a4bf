#include "common/jwks_fetch.h"

#include <curl/curl.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace qai::common {
namespace {

// No key set is fresh for longer than this, whatever a server claims.
constexpr int64_t kLongestMaxAgeSeconds = int64_t{365} * 24 * 3600;
// Headers are kept only as far as freshness needs them.
constexpr size_t kMaxCacheControlChars = 4096;

struct Url {
  std::string scheme;
  std::string host;
};

// SplitUrl: the scheme (lower case) and host of `url`; the authority's userinfo, if any, stays
// in `host` (so that it is refused).
Url SplitUrl(std::string_view url) {
  const size_t sep = url.find("://");
  Url out{.scheme = absl::AsciiStrToLower(ToAbsl(url.substr(0, sep)))};
  std::string_view rest = url.substr(sep + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) {
    out.host = std::string(authority);
    return out;
  }
  if (!authority.empty() && authority.front() == '[') {
    out.host = std::string(authority.substr(0, authority.find(']') + 1));
  } else {
    out.host = std::string(authority.substr(0, authority.find(':')));
  }
  out.host = absl::AsciiStrToLower(out.host);
  return out;
}

absl::Status CheckUrl(std::string_view url) {
  const Url parts = SplitUrl(url);
  if (parts.host.find('@') != std::string::npos) {
    return absl::InvalidArgumentError(
        "QAI_JWT_JWKS must not carry user:password@ (key sets are public)");
  }
  if (parts.host.empty()) return absl::InvalidArgumentError("QAI_JWT_JWKS has no host");
  const bool loopback =
      parts.host == "127.0.0.1" || parts.host == "[::1]" || parts.host == "localhost";
  if (parts.scheme == "https" || (parts.scheme == "http" && loopback)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "QAI_JWT_JWKS must be an https:// URL (http:// only to 127.0.0.1, [::1] or localhost) or a "
      "file");
}

absl::StatusOr<JwksDocument> ReadJwksFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string body(max_bytes + 1, '\0');
  in.read(body.data(), static_cast<std::streamsize>(body.size()));
  if (in.bad()) return absl::UnavailableError(absl::StrCat("cannot read ", path));
  body.resize(static_cast<size_t>(in.gcount()));
  if (body.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is larger than ", max_bytes, " bytes"));
  }
  return JwksDocument{.body = std::move(body), .max_age = std::nullopt};
}

// Transfer: what one fetch gathers from libcurl's callbacks.
struct Transfer {
  size_t max_bytes;
  const std::function<bool()>* cancelled;
  std::string body;
  bool too_large = false;
  std::string cache_control;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->body.size() + n > t->max_bytes) {
    t->too_large = true;
    return 0;  // stops the transfer (CURLE_WRITE_ERROR)
  }
  t->body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const absl::string_view line(data, size * count);
  constexpr absl::string_view kName = "cache-control:";
  if (line.size() > kName.size() && absl::StartsWithIgnoreCase(line, kName)) {
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(kName.size()));
    if (t->cache_control.size() + value.size() < kMaxCacheControlChars) {
      absl::StrAppend(&t->cache_control, t->cache_control.empty() ? "" : ", ", value);
    }
  }
  return size * count;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return *t->cancelled && (*t->cancelled)() ? 1 : 0;
}

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

void SetOptions(CURL* c, const std::string& url, const JwksFetchOptions& options, Transfer& t,
                curl_slist* headers, char* error) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "qai-jwks");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
                   absl::StartsWithIgnoreCase(url, "https:") ? "https" : "http");
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // many threads: no SIGALRM for timeouts
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options.connect_timeout)));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options.timeout)));
}

absl::Status TransferError(CURLcode code, const Transfer& t, const char* error,
                           const std::string& url, size_t max_bytes) {
  if (t.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    return absl::ResourceExhaustedError(
        absl::StrCat(url, ": key set larger than ", max_bytes, " bytes"));
  }
  const std::string detail = error[0] != '\0' ? error : curl_easy_strerror(code);
  if (code == CURLE_ABORTED_BY_CALLBACK)
    return absl::CancelledError(absl::StrCat(url, ": cancelled"));
  if (code == CURLE_OPERATION_TIMEDOUT)
    return absl::DeadlineExceededError(absl::StrCat(url, ": ", detail));
  return absl::UnavailableError(absl::StrCat(url, ": ", detail));
}

}  // namespace

bool IsJwksUrl(std::string_view source) { return source.find("://") != std::string_view::npos; }

absl::StatusOr<JwksLoader> JwksLoaderFor(std::string_view source, JwksFetchOptions options) {
  if (source.empty()) return absl::InvalidArgumentError("QAI_JWT_JWKS is empty");
  if (!IsJwksUrl(source)) {
    return JwksLoader([path = std::string(source), max = options.max_bytes](
                          const std::function<bool()>&) { return ReadJwksFile(path, max); });
  }
  QAI_RETURN_IF_ERROR(CheckUrl(source));
  return JwksLoader([url = std::string(source), options](const std::function<bool()>& cancelled) {
    return FetchJwks(url, options, cancelled);
  });
}

absl::StatusOr<JwksDocument> FetchJwks(const std::string& url, const JwksFetchOptions& options,
                                       const std::function<bool()>& cancelled) {
  // curl_global_init must not race itself; every later call is thread-safe.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  std::unique_ptr<curl_slist, SlistFree> headers(
      curl_slist_append(nullptr, "Accept: application/json"));
  if (curl == nullptr || headers == nullptr)
    return absl::ResourceExhaustedError("cannot start a transfer");
  Transfer t{.max_bytes = options.max_bytes, .cancelled = &cancelled};
  char error[CURL_ERROR_SIZE] = {0};
  SetOptions(curl.get(), url, options, t, headers.get(), error);
  const CURLcode code = curl_easy_perform(curl.get());
  if (code != CURLE_OK) return TransferError(code, t, error, url, options.max_bytes);
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return absl::UnavailableError(absl::StrCat(url, " answered HTTP ", status));
  return JwksDocument{.body = std::move(t.body), .max_age = CacheControlMaxAge(t.cache_control)};
}

std::optional<absl::Duration> CacheControlMaxAge(std::string_view cache_control) {
  std::optional<int64_t> seconds;
  for (absl::string_view directive : absl::StrSplit(ToAbsl(cache_control), ',')) {
    directive = absl::StripAsciiWhitespace(directive);
    if (absl::EqualsIgnoreCase(directive, "no-cache") ||
        absl::EqualsIgnoreCase(directive, "no-store")) {
      seconds = 0;
      continue;
    }
    constexpr absl::string_view kMaxAge = "max-age=";
    if (!absl::StartsWithIgnoreCase(directive, kMaxAge)) continue;
    absl::string_view value = absl::StripPrefix(directive.substr(kMaxAge.size()), "\"");
    value = absl::StripSuffix(value, "\"");
    if (value.empty() || !std::all_of(value.begin(), value.end(), absl::ascii_isdigit)) continue;
    int64_t parsed = kLongestMaxAgeSeconds;
    if (value.size() < 12) (void)absl::SimpleAtoi(value, &parsed);
    parsed = std::min(parsed, kLongestMaxAgeSeconds);
    seconds = seconds.has_value() ? std::min(*seconds, parsed) : parsed;
  }
  if (!seconds.has_value()) return std::nullopt;
  return absl::Seconds(*seconds);
}

}  // namespace qai::common
