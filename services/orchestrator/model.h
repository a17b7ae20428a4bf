#pragma once
// Model: the language model behind the agent, as one interface over every provider.
//
// The conversation is OpenAI-shaped (system, user, assistant with tool calls, tool results), so
// an OpenAI-compatible endpoint maps onto it one to one. The `builtin` provider is the offline
// default: a deterministic stand-in that needs no network (see builtin_model.h).

#include <string>
#include <vector>

#include "absl/status/statusor.h"

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

struct ModelReply {
  std::string text;
  std::vector<ToolCall> tool_calls;
};

class Model {
 public:
  virtual ~Model() = default;
  // name: what the logs and the README call this provider (e.g. "builtin").
  virtual std::string name() const = 0;
  // Complete: the model's next turn. UNAVAILABLE or RESOURCE_EXHAUSTED for faults worth retrying.
  [[nodiscard]] virtual absl::StatusOr<ModelReply> Complete(const std::vector<ChatMessage>& conversation,
                                                            const std::vector<ToolSpec>& tools) = 0;
};

}  // namespace qai::orchestrator
