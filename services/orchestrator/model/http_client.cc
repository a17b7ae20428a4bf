#include "services/orchestrator/model/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/strings.h"

namespace qai::orchestrator {
namespace {

using common::Log;
using common::LogLevel;

void InitCurlOnce() {
  // curl_global_init is not safe to race with itself; every later use is.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  CURL* curl = nullptr;
  const HttpSink* sink = nullptr;
  const std::function<bool()>* cancelled = nullptr;
  HttpHead head;
  bool refused = false;
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    t->head.headers.clear();  // an interim answer (100 Continue) or a redirect came before
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    std::string name =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(common::ToAbsl(line.substr(0, colon))));
    t->head.headers[name] =
        std::string(absl::StripAsciiWhitespace(common::ToAbsl(line.substr(colon + 1))));
  }
  return size * count;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  t->head.status = static_cast<int>(status);
  if (!(*t->sink)(t->head, std::string_view(data, size * count))) {
    t->refused = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  return size * count;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return (*t->cancelled)() ? 1 : 0;
}

absl::Status TransportError(CURLcode code, const Transfer& t, const HttpRequest& request,
                            const char* detail) {
  const bool ours = code == CURLE_ABORTED_BY_CALLBACK || (code == CURLE_WRITE_ERROR && t.refused);
  if (!ours)
    Log(LogLevel::kWarn, "HTTP request failed",
        {{"error", detail[0] ? detail : curl_easy_strerror(code)}});
  // curl_easy_strerror names the kind of fault and never the host; `detail` may name it.
  const std::string what = curl_easy_strerror(code);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(
          absl::StrCat("no complete answer within ", absl::FormatDuration(request.timeout)));
    case CURLE_ABORTED_BY_CALLBACK:
      return absl::CancelledError("cancelled");
    case CURLE_WRITE_ERROR:
      if (t.refused) return absl::AbortedError("the answer was refused by its reader");
      return absl::UnavailableError(what);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(absl::StrCat("bad URL: ", what));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return absl::FailedPreconditionError(absl::StrCat("TLS: ", what));
    case CURLE_PARTIAL_FILE:
      return absl::UnavailableError("the answer was cut short");
    default:
      return absl::UnavailableError(what);
  }
}

}  // namespace

std::string HttpHead::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

std::optional<absl::Duration> RetryAfter(const HttpHead& head, absl::Time now) {
  double value = 0;
  if (absl::SimpleAtod(head.Header("retry-after-ms"), &value) && value >= 0 &&
      std::isfinite(value)) {
    return absl::Milliseconds(value);
  }
  const std::string retry_after = head.Header("retry-after");
  if (absl::SimpleAtod(retry_after, &value) && value >= 0 && std::isfinite(value))
    return absl::Seconds(value);
  absl::Time when;
  std::string error;
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", retry_after, absl::UTCTimeZone(), &when,
                      &error)) {
    return std::max(absl::ZeroDuration(), when - now);
  }
  return std::nullopt;
}

absl::StatusOr<HttpHead> HttpPost(const HttpRequest& request, const HttpSink& sink,
                                  const std::function<bool()>& cancelled) {
  InitCurlOnce();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::ResourceExhaustedError("could not start an HTTP request");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr, curl_slist_free_all);
  auto add_header = [&](const std::string& h) {
    curl_slist* grown = curl_slist_append(headers.get(), h.c_str());
    if (grown) {
      headers.release();
      headers.reset(grown);
    }
    return grown != nullptr;
  };
  for (const std::string& h : request.headers) {
    if (!add_header(h))
      return absl::ResourceExhaustedError("could not build the request's headers");
  }
  // No "Expect: 100-continue" round trip for larger bodies: every server answers a POST anyway.
  if (!add_header("Expect:"))
    return absl::ResourceExhaustedError("could not build the request's headers");

  Transfer t{.curl = curl.get(), .sink = &sink, .cancelled = &cancelled};
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // worker threads: no SIGALRM for timeouts
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(
                       std::min(request.connect_timeout, request.timeout))));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");

  const CURLcode code = curl_easy_perform(c);
  if (code != CURLE_OK) return TransportError(code, t, request, error);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  t.head.status = static_cast<int>(status);
  return t.head;
}

}  // namespace qai::orchestrator
