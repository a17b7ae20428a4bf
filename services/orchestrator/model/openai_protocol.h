#pragma once
// The OpenAI chat-completions wire format (POST <base>/chat/completions), as OpenAI, vLLM,
// Ollama and llama.cpp's server speak it: the request body, a whole answer, an answer streamed
// as server-sent events, and error bodies. No I/O here.
//
//   std::string body = ChatRequestBody("gpt-4o-mini", conversation, AgentTools(), /*stream=*/true);
//   ... POST it; then, for every piece of the event stream:
//   ChatStreamParser parser;
//   std::string text;
//   if (absl::Status s = parser.Feed(bytes, &text); !s.ok()) ...   // text: this piece's deltas
//   absl::StatusOr<ModelReply> reply = parser.Finish();             // UNAVAILABLE if cut short
//
// A malformed answer (not JSON, no choices) is INTERNAL with a message saying what was wrong;
// an error the server reports inside a 200 answer is UNAVAILABLE. Tool calls keep their
// arguments as sent, valid JSON or not: judging them is the agent's business (it answers a
// malformed call with an error result). A call without an id gets a generated one, since each
// tool result must name the call it answers.
//
// The endpoint is not trusted to be sane: an answer past the caps below, or JSON nested deeper
// than common::kMaxUntrustedJsonDepth, is INTERNAL ("too large" or "malformed") and the call
// ends at once, so a hostile or broken server costs a bounded amount of memory and stack.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

// The caps on what one answer may hold.
inline constexpr size_t kMaxAnswerBytes =
    32 << 20;  // its text, tool names and arguments, or its whole body
inline constexpr size_t kMaxEventBytes =
    4 << 20;                                  // one server-sent event (an unfinished line included)
inline constexpr size_t kMaxToolCalls = 128;  // tool calls in one answer

// ChatRequestBody: the JSON request. `tools` may be empty (no tools offered). A streamed request
// asks for the usage in the stream's last event (stream_options.include_usage).
std::string ChatRequestBody(const std::string& model, const std::vector<ChatMessage>& conversation,
                            const std::vector<ToolSpec>& tools, bool stream);

// ParseChatCompletion: a whole (non-streamed) answer.
[[nodiscard]] absl::StatusOr<ModelReply> ParseChatCompletion(std::string_view body);

// ChatStreamParser: an answer streamed as server-sent events (`data: {chunk}` lines, ending
// with `data: [DONE]`), fed in pieces as they arrive, split anywhere.
class ChatStreamParser {
 public:
  // Feed: the next bytes; the text deltas of the events they complete are appended to `text`.
  [[nodiscard]] absl::Status Feed(std::string_view bytes, std::string* text);
  // Finish: the reply, once the stream ended. UNAVAILABLE when it ended before [DONE] (or before
  // a finish_reason, for servers that close without [DONE]). Its text may go on past what Feed
  // gave, when the stream's last event lacked its blank line.
  [[nodiscard]] absl::StatusOr<ModelReply> Finish();

 private:
  struct PartialCall {
    std::string id, name, arguments;
  };
  absl::Status Dispatch(std::string* text);
  absl::Status OnChunk(std::string_view json, std::string* text);
  absl::Status Count(size_t bytes);  // adds to the answer's size; too large past the cap

  size_t answer_bytes_ = 0;

  std::string buffer_;  // bytes not yet making a whole line
  std::string data_;    // the data lines of the event being read
  bool has_data_ = false;
  bool done_ = false;
  bool finished_ = false;  // a choice had a finish_reason
  ModelReply reply_;
  std::map<int64_t, PartialCall> calls_;  // by the delta's index
};

// TooLarge: the error for an answer past a cap; `what` says which.
absl::Status TooLarge(std::string_view what);

// ErrorMessage: what an error answer's body says (OpenAI's error.message, or the other
// shapes compatible servers use, or the text itself), cut to a readable length.
std::string ErrorMessage(std::string_view body);

}  // namespace qai::orchestrator
