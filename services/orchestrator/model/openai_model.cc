#include "services/orchestrator/model/openai_model.h"

#include <algorithm>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"
#include "services/orchestrator/model/http_client.h"
#include "services/orchestrator/model/openai_protocol.h"

namespace qai::orchestrator {
namespace {

using common::Log;
using common::LogLevel;

constexpr size_t kMaxErrorBody = 64 << 10;  // enough for any error message
constexpr absl::Duration kCancelPoll = absl::Milliseconds(50);

std::string CompletionsUrl(std::string base) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/chat/completions";
}

// WaitUnlessCancelled: sleeps for `delay`; false as soon as the observer cancels.
bool WaitUnlessCancelled(absl::Duration delay, ModelObserver& observer) {
  const absl::Time until = absl::Now() + delay;
  for (absl::Time now = absl::Now(); now < until; now = absl::Now()) {
    if (observer.Cancelled()) return false;
    absl::SleepFor(std::min(kCancelPoll, until - now));
  }
  return !observer.Cancelled();
}

// WithContext: a status with its message prefixed, its code and retry delay kept.
absl::Status WithContext(const absl::Status& s, std::string_view prefix) {
  absl::Status out(s.code(), absl::StrCat(common::ToAbsl(prefix), s.message()));
  if (std::optional<absl::Duration> delay = common::GetRetryDelay(s))
    return common::WithRetryDelay(out, *delay);
  return out;
}

}  // namespace

OpenAiModel::OpenAiModel(OpenAiOptions options)
    : options_(std::move(options)), url_(CompletionsUrl(options_.base_url)) {}

std::unique_ptr<Model> OpenAiModel::ForModel(const std::string& model) const {
  if (model.empty() || model == options_.model) return nullptr;
  OpenAiOptions options = options_;
  options.model = model;
  return std::make_unique<OpenAiModel>(std::move(options));
}

absl::StatusOr<ModelReply> OpenAiModel::Complete(const std::vector<ChatMessage>& conversation,
                                                 const std::vector<ToolSpec>& tools) {
  ModelObserver quiet;
  return Stream(conversation, tools, quiet);
}

absl::StatusOr<ModelReply> OpenAiModel::Stream(const std::vector<ChatMessage>& conversation,
                                               const std::vector<ToolSpec>& tools,
                                               ModelObserver& observer) {
  const std::string body = ChatRequestBody(options_.model, conversation, tools, options_.stream);
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<ModelReply> reply = Try(body, observer);
    if (reply.ok() || reply.status().code() == absl::StatusCode::kCancelled) return reply;
    const absl::Status& fault = reply.status();
    if (!common::IsRetryable(fault)) return reply;
    if (attempt > options_.max_retries) {
      return attempt == 1 ? fault : WithContext(fault, absl::StrCat("after ", attempt, " tries: "));
    }
    const std::optional<absl::Duration> asked = common::GetRetryDelay(fault);
    const absl::Duration delay =
        asked ? std::min(*asked, options_.max_backoff) : Backoff(attempt - 1);
    Log(LogLevel::kWarn, "model call failed; retrying",
        {{"attempt", attempt},
         {"error", std::string(fault.message())},
         {"retry_in_ms", absl::ToInt64Milliseconds(delay)}});
    observer.OnRetry(attempt, common::ToStd(fault.message()), delay);
    if (!WaitUnlessCancelled(delay, observer)) return absl::CancelledError("cancelled");
  }
}

absl::StatusOr<ModelReply> OpenAiModel::Try(const std::string& body, ModelObserver& observer) {
  HttpRequest request{.url = url_,
                      .headers = {"Content-Type: application/json",
                                  options_.stream ? "Accept: text/event-stream, application/json"
                                                  : "Accept: application/json"},
                      .body = body,
                      .connect_timeout = options_.connect_timeout,
                      .timeout = options_.timeout};
  if (!options_.api_key.empty())
    request.headers.push_back(absl::StrCat("Authorization: Bearer ", options_.api_key));

  // The body is an event stream, a whole JSON answer, or (not 2xx) an error to report.
  enum class Kind { kUnknown, kEvents, kWhole, kError } kind = Kind::kUnknown;
  ChatStreamParser events;
  std::string whole, error_body;
  size_t delivered = 0;  // bytes of text given to the observer
  absl::Status refused;
  auto sink = [&](const HttpHead& head, std::string_view bytes) {
    if (kind == Kind::kUnknown) {
      const bool event_stream = absl::StrContains(
          absl::AsciiStrToLower(head.Header("content-type")), "text/event-stream");
      kind = head.status / 100 != 2 ? Kind::kError : (event_stream ? Kind::kEvents : Kind::kWhole);
    }
    switch (kind) {
      case Kind::kEvents: {
        std::string text;
        refused = events.Feed(bytes, &text);
        if (!refused.ok()) return false;
        delivered += text.size();
        observer.OnDelta(text);
        return true;
      }
      case Kind::kWhole:
        if (whole.size() + bytes.size() > kMaxAnswerBytes) {
          refused = TooLarge(absl::StrCat("over ", kMaxAnswerBytes >> 20, " MiB"));
          return false;
        }
        whole.append(bytes);
        return true;
      default:
        if (error_body.size() < kMaxErrorBody)
          error_body.append(bytes.substr(0, kMaxErrorBody - error_body.size()));
        return true;
    }
  };
  absl::StatusOr<HttpHead> head = HttpPost(request, sink, [&] { return observer.Cancelled(); });
  if (!refused.ok()) return absl::Status(refused.code(), Redact(std::string(refused.message())));
  if (!head.ok()) {
    const absl::Status& s = head.status();
    switch (s.code()) {
      case absl::StatusCode::kCancelled:
        return s;
      case absl::StatusCode::kInvalidArgument:
      case absl::StatusCode::kFailedPrecondition:
        return WithContext(s, "model endpoint: ");
      default:  // timeouts, refused or broken connections: worth another try
        return absl::UnavailableError(absl::StrCat("model endpoint: ", s.message()));
    }
  }
  if (head->status / 100 != 2)
    return StatusFor(head->status, error_body, RetryAfter(*head, absl::Now()));

  absl::StatusOr<ModelReply> reply;
  if (kind == Kind::kEvents) {
    reply = events.Finish();
  } else if (absl::StartsWith(whole, "data:")) {
    // An event stream its server did not label as one.
    std::string ignored;
    absl::Status fed = events.Feed(whole, &ignored);
    reply = fed.ok() ? events.Finish() : absl::StatusOr<ModelReply>(fed);
  } else {
    reply = ParseChatCompletion(whole);
  }
  if (!reply.ok())
    return absl::Status(reply.status().code(), Redact(std::string(reply.status().message())));
  if (reply->text.size() > delivered)
    observer.OnDelta(std::string_view(reply->text).substr(delivered));
  return reply;
}

absl::Status OpenAiModel::StatusFor(int http_status, const std::string& error_body,
                                    const std::optional<absl::Duration>& retry_after) {
  std::string detail = error_body.empty() ? "" : Redact(ErrorMessage(error_body));
  const std::string message =
      absl::StrCat("model endpoint: HTTP ", http_status, detail.empty() ? "" : ": ", detail);
  absl::Status status;
  switch (http_status) {
    case 429:
      status = absl::ResourceExhaustedError(message);
      break;
    case 408:
    case 409:
      status = absl::UnavailableError(message);
      break;
    case 400:
    case 413:
    case 422:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    default:
      if (http_status < 500) return absl::FailedPreconditionError(message);
      status = absl::UnavailableError(message);
  }
  return retry_after ? common::WithRetryDelay(status, *retry_after) : status;
}

std::string OpenAiModel::Redact(std::string text) const {
  // A key too short to be a secret would blank ordinary words.
  if (options_.api_key.size() < 8) return text;
  return absl::StrReplaceAll(text, {{options_.api_key, "***"}});
}

absl::Duration OpenAiModel::Backoff(int retry) {
  absl::MutexLock lock(&mu_);
  return common::BackoffDelay(retry, options_.base_backoff, options_.max_backoff, rng_);
}

}  // namespace qai::orchestrator
