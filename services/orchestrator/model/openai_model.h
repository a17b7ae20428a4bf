#pragma once
// OpenAiModel: the `openai` model provider, for any OpenAI-compatible chat-completions endpoint
// (OpenAI, vLLM, Ollama, llama.cpp's server, ...).
//
//   OpenAiModel model({.base_url = "http://localhost:11434/v1", .model = "qwen2.5-coder"});
//   absl::StatusOr<ModelReply> reply = model.Stream(conversation, AgentTools(), observer);
//
// Each call POSTs to <base_url>/chat/completions, streamed (server-sent events, text reported
// to the observer as it arrives) unless options.stream is false or the server answers with
// plain JSON anyway. The reply carries the token usage the server reports.
//
// Faults worth another try (HTTP 408, 409, 429 and 5xx, timeouts, broken connections, a
// stream cut short, an error reported mid-answer) are retried up to max_retries times, after
// the server's Retry-After when it gives one, else after an exponential backoff with jitter;
// both capped at max_backoff. Every retry is reported (ModelObserver::OnRetry) before its wait,
// and a cancel (ModelObserver::Cancelled) ends the call, waiting or not. What remains after the
// last try is RESOURCE_EXHAUSTED (429) or UNAVAILABLE, with the delay the server asked for
// attached (common::WithRetryDelay). Other HTTP errors are not retried and keep the server's
// message: 400/413/422 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
// 404 NOT_FOUND, others FAILED_PRECONDITION; an answer that is not the protocol's JSON is
// INTERNAL. No message names the API key (it is blanked wherever a server echoes it) or the
// endpoint's host.
//
// Thread-safe: one instance serves every worker.

#include <optional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

struct OpenAiOptions {
  std::string base_url;  // up to and including the API version, e.g. https://api.openai.com/v1
  std::string api_key;   // sent as a bearer token; empty for local servers that want none
  std::string model;
  bool stream = true;
  absl::Duration timeout = absl::Minutes(10);  // each try, from connecting to the answer's end
  absl::Duration connect_timeout = absl::Seconds(10);
  int max_retries = 4;  // tries after the first
  absl::Duration base_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(60);  // caps every wait, Retry-After included
};

class OpenAiModel : public Model {
 public:
  explicit OpenAiModel(OpenAiOptions options);

  std::string name() const override { return "openai"; }
  [[nodiscard]] absl::StatusOr<ModelReply> Complete(const std::vector<ChatMessage>& conversation,
                                                    const std::vector<ToolSpec>& tools) override;
  [[nodiscard]] absl::StatusOr<ModelReply> Stream(const std::vector<ChatMessage>& conversation,
                                                  const std::vector<ToolSpec>& tools,
                                                  ModelObserver& observer) override;
  // ForModel: the same endpoint and settings, asking for `model`.
  [[nodiscard]] std::unique_ptr<Model> ForModel(const std::string& model) const override;

 private:
  // Try: one request and its answer.
  absl::StatusOr<ModelReply> Try(const std::string& body, ModelObserver& observer);
  absl::Status StatusFor(int http_status, const std::string& error_body,
                         const std::optional<absl::Duration>& retry_after);
  // Redact: text with the API key blanked out.
  std::string Redact(std::string text) const;
  absl::Duration Backoff(int retry);

  const OpenAiOptions options_;
  const std::string url_;
  absl::Mutex mu_;
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qai::orchestrator
