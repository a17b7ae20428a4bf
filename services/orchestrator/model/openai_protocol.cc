#include "services/orchestrator/model/openai_protocol.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/utf8.h"

namespace qai::orchestrator {
using common::ToValidUtf8;
using common::TruncateUtf8;
namespace {

using nlohmann::json;

constexpr size_t kMaxErrorChars = 500;

const char* RoleName(ChatMessage::Role role) {
  switch (role) {
    case ChatMessage::Role::kSystem:
      return "system";
    case ChatMessage::Role::kUser:
      return "user";
    case ChatMessage::Role::kAssistant:
      return "assistant";
    case ChatMessage::Role::kTool:
      return "tool";
  }
  return "user";
}

json MessageJson(const ChatMessage& m) {
  json out = {{"role", RoleName(m.role)}};
  if (m.role == ChatMessage::Role::kAssistant && !m.tool_calls.empty()) {
    // The protocol's "no text, only tool calls".
    out["content"] = m.content.empty() ? json(nullptr) : json(m.content);
    json calls = json::array();
    for (const ToolCall& c : m.tool_calls) {
      calls.push_back({{"id", c.id},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", c.arguments_json}}}});
    }
    out["tool_calls"] = std::move(calls);
  } else {
    out["content"] = m.content;
  }
  if (m.role == ChatMessage::Role::kTool) out["tool_call_id"] = m.tool_call_id;
  return out;
}

json ToolJson(const ToolSpec& t) {
  json schema = json::parse(t.parameters_json_schema, nullptr, /*allow_exceptions=*/false);
  if (!schema.is_object()) schema = {{"type", "object"}};
  return {{"type", "function"},
          {"function",
           {{"name", t.name}, {"description", t.description}, {"parameters", std::move(schema)}}}};
}

std::string NewCallId() {
  thread_local absl::BitGen rng;
  return absl::StrFormat("call_%016x", absl::Uniform<uint64_t>(rng));
}

// Text: a string, or the text parts of a content array; null and anything else are "".
std::string Text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  std::string out;
  if (v.is_array()) {
    for (const json& part : v) {
      if (part.is_object() && part.contains("text") && part["text"].is_string())
        out += part["text"].get<std::string>();
    }
  }
  return out;
}

// Arguments: a tool call's arguments as the JSON text the model wrote (some servers send an
// object instead of its text).
std::string Arguments(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

int64_t Count(const json& usage, const char* key) {
  return usage.contains(key) && usage[key].is_number_integer() ? usage[key].get<int64_t>() : 0;
}

TokenUsage Usage(const json& usage) {
  if (!usage.is_object()) return {};
  return {.prompt_tokens = Count(usage, "prompt_tokens"),
          .completion_tokens = Count(usage, "completion_tokens")};
}

// ReportedError: the error an answer reports in place of a completion, if it does.
std::optional<std::string> ReportedError(const json& v) {
  if (!v.is_object() || !v.contains("error") || v["error"].is_null()) return std::nullopt;
  const json& e = v["error"];
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object() && e.contains("message") && e["message"].is_string())
    return e["message"].get<std::string>();
  return e.dump();
}

std::string Clip(std::string_view text) {
  return TruncateUtf8(ToValidUtf8(common::ToStd(absl::StripAsciiWhitespace(common::ToAbsl(text)))),
                      kMaxErrorChars);
}

absl::Status Malformed(std::string_view what) {
  return absl::InternalError(
      absl::StrCat("the model endpoint's answer is malformed: ", common::ToAbsl(what)));
}

// NotTooDeep: refuses a document nested deeper than any answer needs, before it is parsed
// (common/json.h says why).
absl::Status NotTooDeep(std::string_view document) {
  if (!common::JsonNestedDeeperThan(document, common::kMaxUntrustedJsonDepth))
    return absl::OkStatus();
  return Malformed(
      absl::StrCat("JSON nested deeper than ", common::kMaxUntrustedJsonDepth, " levels"));
}

absl::Status TooManyCalls() {
  return TooLarge(absl::StrCat("more than ", kMaxToolCalls, " tool calls"));
}

}  // namespace

absl::Status TooLarge(std::string_view what) {
  return absl::InternalError(
      absl::StrCat("the model endpoint's answer is too large: ", common::ToAbsl(what)));
}

std::string ChatRequestBody(const std::string& model, const std::vector<ChatMessage>& conversation,
                            const std::vector<ToolSpec>& tools, bool stream) {
  json body = {{"model", model}, {"messages", json::array()}, {"stream", stream}};
  for (const ChatMessage& m : conversation) body["messages"].push_back(MessageJson(m));
  if (!tools.empty()) {
    body["tools"] = json::array();
    for (const ToolSpec& t : tools) body["tools"].push_back(ToolJson(t));
  }
  if (stream) body["stream_options"] = {{"include_usage", true}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<ModelReply> ParseChatCompletion(std::string_view body) {
  QAI_RETURN_IF_ERROR(NotTooDeep(body));
  json v = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) return Malformed(absl::StrCat("not JSON: ", Clip(body.substr(0, 200))));
  if (std::optional<std::string> error = ReportedError(v)) {
    return absl::UnavailableError(
        absl::StrCat("the model endpoint reported an error: ", Clip(*error)));
  }
  if (!v.is_object() || !v.contains("choices") || !v["choices"].is_array() ||
      v["choices"].empty()) {
    return Malformed("no choices");
  }
  const json& choice = v["choices"][0];
  if (!choice.is_object() || !choice.contains("message") || !choice["message"].is_object()) {
    return Malformed("a choice without a message");
  }
  const json& message = choice["message"];
  ModelReply reply;
  if (message.contains("content")) reply.text = Text(message["content"]);
  if (message.contains("tool_calls") && message["tool_calls"].is_array()) {
    if (message["tool_calls"].size() > kMaxToolCalls) return TooManyCalls();
    for (const json& c : message["tool_calls"]) {
      if (!c.is_object()) continue;
      ToolCall call;
      call.id = c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>() : "";
      if (call.id.empty()) call.id = NewCallId();
      if (c.contains("function") && c["function"].is_object()) {
        const json& f = c["function"];
        if (f.contains("name") && f["name"].is_string()) call.name = f["name"].get<std::string>();
        if (f.contains("arguments")) call.arguments_json = Arguments(f["arguments"]);
      }
      reply.tool_calls.push_back(std::move(call));
    }
  }
  if (v.contains("usage")) reply.usage = Usage(v["usage"]);
  return reply;
}

absl::Status ChatStreamParser::Feed(std::string_view bytes, std::string* text) {
  buffer_.append(bytes);
  size_t start = 0;
  for (size_t eol; (eol = buffer_.find('\n', start)) != std::string::npos; start = eol + 1) {
    std::string_view line(buffer_.data() + start, eol - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) {
      // A blank line ends an event.
      QAI_RETURN_IF_ERROR(Dispatch(text));
    } else if (line.starts_with("data:")) {
      line.remove_prefix(5);
      if (line.starts_with(' ')) line.remove_prefix(1);
      if (has_data_) data_ += '\n';
      data_.append(line);
      has_data_ = true;
    }
    // Comments (":" keep-alives), event:, id: and retry: lines say nothing a completion needs.
  }
  buffer_.erase(0, start);
  // What is held is one event at most: its data so far and the line not yet ended.
  if (data_.size() + buffer_.size() > kMaxEventBytes) {
    return TooLarge(absl::StrCat("an event of over ", kMaxEventBytes >> 20, " MiB"));
  }
  return absl::OkStatus();
}

absl::Status ChatStreamParser::Count(size_t bytes) {
  answer_bytes_ += bytes;
  if (answer_bytes_ <= kMaxAnswerBytes) return absl::OkStatus();
  return TooLarge(absl::StrCat("over ", kMaxAnswerBytes >> 20, " MiB"));
}

absl::Status ChatStreamParser::Dispatch(std::string* text) {
  if (!has_data_) return absl::OkStatus();
  std::string data = std::move(data_);
  data_.clear();
  has_data_ = false;
  if (data == "[DONE]") {
    done_ = true;
    return absl::OkStatus();
  }
  return OnChunk(data, text);
}

absl::Status ChatStreamParser::OnChunk(std::string_view data, std::string* text) {
  QAI_RETURN_IF_ERROR(NotTooDeep(data));
  json v = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded() || !v.is_object())
    return Malformed(absl::StrCat("an event is not JSON: ", Clip(data.substr(0, 200))));
  if (std::optional<std::string> error = ReportedError(v)) {
    return absl::UnavailableError(
        absl::StrCat("the model endpoint reported an error mid-answer: ", Clip(*error)));
  }
  if (v.contains("usage") && v["usage"].is_object()) reply_.usage = Usage(v["usage"]);
  if (!v.contains("choices") || !v["choices"].is_array()) return absl::OkStatus();
  for (const json& choice : v["choices"]) {
    if (!choice.is_object()) continue;
    if (choice.contains("index") && choice["index"].is_number_integer() &&
        choice["index"].get<int64_t>() != 0)
      continue;
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) finished_ = true;
    if (!choice.contains("delta") || !choice["delta"].is_object()) continue;
    const json& delta = choice["delta"];
    if (delta.contains("content")) {
      std::string piece = Text(delta["content"]);
      QAI_RETURN_IF_ERROR(Count(piece.size()));
      reply_.text += piece;
      text->append(piece);
    }
    if (!delta.contains("tool_calls") || !delta["tool_calls"].is_array()) continue;
    for (const json& c : delta["tool_calls"]) {
      if (!c.is_object()) continue;
      const std::string id =
          c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>() : "";
      int64_t index;
      if (c.contains("index") && c["index"].is_number_integer()) {
        index = c["index"].get<int64_t>();
      } else if (calls_.empty() || (!id.empty() && id != calls_.rbegin()->second.id)) {
        // A server that numbers nothing: the next number, if the last call left one.
        if (!calls_.empty() && calls_.rbegin()->first == std::numeric_limits<int64_t>::max()) {
          return Malformed("a new tool call after the largest index");
        }
        index = calls_.empty() ? 0 : calls_.rbegin()->first + 1;
      } else {
        index = calls_.rbegin()->first;
      }
      if (!calls_.contains(index) && calls_.size() == kMaxToolCalls) return TooManyCalls();
      PartialCall& call = calls_[index];
      if (!id.empty()) call.id = id;
      if (c.contains("function") && c["function"].is_object()) {
        const json& f = c["function"];
        std::string name =
            f.contains("name") && f["name"].is_string() ? f["name"].get<std::string>() : "";
        std::string arguments = f.contains("arguments") ? Arguments(f["arguments"]) : "";
        QAI_RETURN_IF_ERROR(Count(id.size() + name.size() + arguments.size()));
        call.name += name;
        call.arguments += arguments;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelReply> ChatStreamParser::Finish() {
  if (!done_) {
    // An event the stream ended in without its blank line: what a server that never sends
    // [DONE] may end with, or half an event of a stream cut short.
    std::string text;
    absl::Status last = buffer_.empty() ? absl::OkStatus() : Feed("\n", &text);
    if (last.ok()) last = Dispatch(&text);
    if (!done_ && !finished_)
      return absl::UnavailableError("the model's streamed answer was cut short");
    if (!last.ok()) return last;
  }
  ModelReply reply = std::move(reply_);
  for (auto& [index, c] : calls_) {
    reply.tool_calls.push_back({.id = c.id.empty() ? NewCallId() : c.id,
                                .name = std::move(c.name),
                                .arguments_json = std::move(c.arguments)});
  }
  return reply;
}

std::string ErrorMessage(std::string_view body) {
  json v = common::ParseUntrustedJson(body);
  if (v.is_object()) {
    if (std::optional<std::string> error = ReportedError(v)) return Clip(*error);
    for (const char* key : {"message", "detail"}) {
      if (v.contains(key))
        return Clip(v[key].is_string() ? v[key].get<std::string>() : v[key].dump());
    }
  }
  return Clip(body);
}

}  // namespace qai::orchestrator
