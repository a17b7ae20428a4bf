#pragma once
// Model: the language model behind the agent, as one interface over every provider.
//
// The conversation is OpenAI-shaped (system, user, assistant with tool calls, tool results), so
// an OpenAI-compatible endpoint maps onto it one to one. The `builtin` provider is the offline
// default: a deterministic stand-in that needs no network (see builtin_model.h); `openai` talks
// to any OpenAI-compatible endpoint (see openai_model.h).
//
// Complete() gives the whole reply; Stream() gives the same reply while reporting to a
// ModelObserver as it goes (text as it arrives, retries as they are scheduled) and stops when
// the observer says so. A provider that neither streams nor retries needs only Complete().

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace qai::orchestrator {

struct ToolCall {
  std::string id;
  std::string name;            // terminal | createOrUpdateFiles | readFiles
  std::string arguments_json;  // e.g. {"command": "ls"}
};

struct ChatMessage {
  enum class Role { kSystem, kUser, kAssistant, kTool };
  Role role = Role::kUser;
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant messages that call tools
  std::string tool_call_id;          // tool messages: the call they answer
};

// ToolSpec: a tool the model may call, with its JSON-schema parameters.
struct ToolSpec {
  std::string name;
  std::string description;
  std::string parameters_json_schema;
};

// TokenUsage: what one reply cost, as the provider counts it (zero when it does not say).
struct TokenUsage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  bool empty() const { return prompt_tokens == 0 && completion_tokens == 0; }
};

struct ModelReply {
  std::string text;
  std::vector<ToolCall> tool_calls;
  TokenUsage usage;
};

// ModelObserver: hears about one Model::Stream() call while it runs. Called on the thread that
// called Stream().
class ModelObserver {
 public:
  virtual ~ModelObserver() = default;
  // OnDelta: the reply's text as it arrives, in order. A streaming provider calls it for every
  // piece of the answer it receives, with "" when the piece held no text (a part of a tool
  // call), so an observer can pace its output on the stream's clock.
  virtual void OnDelta(std::string_view text) {}
  // OnRetry: attempt `attempt` (1 for the first) failed with a transient fault; the next one
  // starts after `delay`. Text that attempt delivered is void: the next one's starts afresh.
  virtual void OnRetry(int attempt, std::string_view reason, absl::Duration delay) {}
  // Cancelled: polled while the call waits; true makes Stream() give up with CANCELLED.
  virtual bool Cancelled() { return false; }
};

class Model {
 public:
  virtual ~Model() = default;
  // name: what the logs and the docs call this provider (e.g. "builtin").
  virtual std::string name() const = 0;
  // Complete: the model's next turn. UNAVAILABLE or RESOURCE_EXHAUSTED for faults worth retrying.
  [[nodiscard]] virtual absl::StatusOr<ModelReply> Complete(
      const std::vector<ChatMessage>& conversation, const std::vector<ToolSpec>& tools) = 0;
  // Stream: Complete(), reporting to `observer` as it goes. This default reports the whole text
  // as one delta once the reply is there.
  [[nodiscard]] virtual absl::StatusOr<ModelReply> Stream(
      const std::vector<ChatMessage>& conversation, const std::vector<ToolSpec>& tools,
      ModelObserver& observer) {
    absl::StatusOr<ModelReply> reply = Complete(conversation, tools);
    if (reply.ok() && !reply->text.empty()) observer.OnDelta(reply->text);
    return reply;
  }
  // ForModel: this provider asking for the model named `model` instead of its configured one
  // (a run's own choice, already checked against the allowed ones); nullptr when this instance
  // serves that name as it is (it is the configured model, or the provider has but one model,
  // as the builtin, which only records the name).
  [[nodiscard]] virtual std::unique_ptr<Model> ForModel(const std::string& model) const {
    return nullptr;
  }
};

}  // namespace qai::orchestrator
