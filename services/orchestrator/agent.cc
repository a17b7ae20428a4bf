#include "services/orchestrator/agent.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/strings.h"
#include "services/orchestrator/model_events.h"
#include "services/orchestrator/prompts.h"
#include "services/orchestrator/utf8.h"

namespace qai::orchestrator {
namespace {

using v1::RunEvent;

struct ToolOutcome {
  std::string output;
  int exit_code = 0;
  bool truncated = false;
  std::vector<std::string> written;
  bool cancelled = false;
};

ToolOutcome RunTool(const ToolCall& call, Workspace& ws, const AgentLimits& limits,
                    const std::function<bool()>& cancelled) {
  ToolOutcome out;
  nlohmann::json args = nlohmann::json::parse(call.arguments_json, nullptr, /*allow_exceptions=*/false);
  auto fail = [&](std::string message) {
    out.output = std::move(message);
    out.exit_code = 1;
    return out;
  };
  if (!args.is_object()) return fail("error: the arguments are not a JSON object");
  if (call.name == kToolTerminal) {
    if (!args.contains("command") || !args["command"].is_string()) return fail("error: missing \"command\"");
    CommandResult r = ws.Run(args["command"].get<std::string>(), limits.command, cancelled);
    out.output = TruncateUtf8(r.output, limits.max_tool_output_chars, &out.truncated);
    out.truncated = out.truncated || r.truncated;
    out.exit_code = r.exit_code;
    out.cancelled = r.cancelled;
    if (r.timed_out) absl::StrAppend(&out.output, "\n[command timed out]");
    return out;
  }
  if (call.name == kToolWriteFiles) {
    if (!args.contains("files") || !args["files"].is_array()) return fail("error: missing \"files\"");
    std::vector<std::string> lines;
    for (const auto& f : args["files"]) {
      if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("content") ||
          !f["content"].is_string()) {
        lines.push_back("error: each file needs a string path and content");
        out.exit_code = 1;
        continue;
      }
      const std::string path = f["path"].get<std::string>();
      absl::Status s = ws.WriteFile(path, f["content"].get<std::string>());
      if (s.ok()) {
        out.written.push_back(path);
        lines.push_back(absl::StrCat("wrote ", path));
      } else {
        lines.push_back(absl::StrCat("error: ", path, ": ", s.message()));
        out.exit_code = 1;
      }
    }
    out.output = TruncateUtf8(absl::StrJoin(lines, "\n"), limits.max_tool_output_chars, &out.truncated);
    return out;
  }
  if (call.name == kToolReadFiles) {
    if (!args.contains("files") || !args["files"].is_array()) return fail("error: missing \"files\"");
    nlohmann::json result = nlohmann::json::array();
    for (const auto& p : args["files"]) {
      if (!p.is_string()) continue;
      const std::string path = p.get<std::string>();
      absl::StatusOr<std::string> content = ws.ReadFile(path, limits.max_read_bytes);
      if (content.ok()) {
        result.push_back({{"path", path}, {"content", *content}});
      } else {
        result.push_back({{"path", path}, {"error", std::string(content.status().message())}});
      }
    }
    out.output = TruncateUtf8(result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                     limits.max_read_bytes * 4, &out.truncated);
    return out;
  }
  return fail(absl::StrCat("error: unknown tool ", call.name));
}

}  // namespace

std::optional<std::string> ExtractSummary(std::string_view text) {
  const size_t open = text.find("<task_summary>");
  if (open == std::string_view::npos) return std::nullopt;
  const size_t start = open + std::string_view("<task_summary>").size();
  const size_t close = text.find("</task_summary>", start);
  if (close == std::string_view::npos) return std::nullopt;
  std::string summary(absl::StripAsciiWhitespace(common::ToAbsl(text.substr(start, close - start))));
  if (summary.empty()) return std::nullopt;
  return summary;
}

AgentOutcome RunAgent(const AgentInput& input, Model& model, Workspace& ws, const AgentLimits& limits,
                      const std::function<bool()>& cancelled, const Emit& emit) {
  AgentOutcome outcome;
  std::vector<ChatMessage> conversation = {{.role = ChatMessage::Role::kSystem, .content = kAgentSystemPrompt}};
  conversation.insert(conversation.end(), input.history.begin(), input.history.end());
  conversation.push_back({.role = ChatMessage::Role::kUser, .content = input.prompt});
  const std::vector<ToolSpec> tools = AgentTools();

  auto stop = [&](absl::Status status) {
    outcome.kind = AgentOutcome::Kind::kStopped;
    outcome.status = std::move(status);
    return outcome;
  };
  auto report = [&](std::vector<RunEvent> events, std::optional<int> iteration = std::nullopt) {
    return emit(std::move(events), iteration);
  };

  for (int iteration = 1; iteration <= input.max_iterations; ++iteration) {
    if (cancelled()) {
      outcome.kind = AgentOutcome::Kind::kCancelled;
      return outcome;
    }
    outcome.iterations = iteration;
    RunEvent started;
    started.mutable_iteration_started()->set_iteration(iteration);
    if (absl::Status s = report({started}, iteration); !s.ok()) return stop(s);

    // The reply's text and the model's retries become events as they happen.
    ModelEvents model_events([&](std::vector<RunEvent> events) { return report(std::move(events)); }, cancelled,
                             limits.max_tool_output_chars);
    absl::StatusOr<ModelReply> reply = model.Stream(conversation, tools, model_events);
    if (absl::Status s = model_events.Finish(); !s.ok()) return stop(s);
    if (!reply.ok()) {
      if (reply.status().code() == absl::StatusCode::kCancelled && cancelled()) {
        outcome.kind = AgentOutcome::Kind::kCancelled;
        return outcome;
      }
      return stop(reply.status());
    }
    conversation.push_back({.role = ChatMessage::Role::kAssistant, .content = reply->text,
                            .tool_calls = reply->tool_calls});

    for (const ToolCall& call : reply->tool_calls) {
      if (cancelled()) {
        outcome.kind = AgentOutcome::Kind::kCancelled;
        return outcome;
      }
      RunEvent call_event;
      call_event.mutable_tool_call()->set_call_id(call.id);
      call_event.mutable_tool_call()->set_tool(call.name);
      call_event.mutable_tool_call()->set_arguments_json(TruncateUtf8(call.arguments_json, limits.max_tool_output_chars));
      if (absl::Status s = report({call_event}); !s.ok()) return stop(s);

      ToolOutcome result = RunTool(call, ws, limits, cancelled);
      std::vector<RunEvent> events(1);
      RunEvent::ToolResult* r = events[0].mutable_tool_result();
      r->set_call_id(call.id);
      r->set_tool(call.name);
      // The model may see more of a file than an event carries: events stay small, whoever
      // watches them.
      bool cut = false;
      r->set_output(TruncateUtf8(result.output, limits.max_tool_output_chars, &cut));
      r->set_exit_code(result.exit_code);
      r->set_truncated(result.truncated || cut);
      if (!result.written.empty()) {
        RunEvent changed;
        for (const std::string& path : result.written) {
          changed.mutable_files_changed()->add_paths(path);
          outcome.files_written.insert(path);
        }
        events.push_back(std::move(changed));
      }
      if (absl::Status s = report(std::move(events)); !s.ok()) return stop(s);
      if (result.cancelled) {
        outcome.kind = AgentOutcome::Kind::kCancelled;
        return outcome;
      }
      conversation.push_back({.role = ChatMessage::Role::kTool, .content = result.output, .tool_call_id = call.id});
    }

    RunEvent finished;
    finished.mutable_iteration_finished()->set_iteration(iteration);
    if (absl::Status s = report({finished}); !s.ok()) return stop(s);
    if (std::optional<std::string> summary = ExtractSummary(reply->text)) {
      outcome.kind = AgentOutcome::Kind::kSummary;
      outcome.summary = *std::move(summary);
      return outcome;
    }
  }
  outcome.kind = AgentOutcome::Kind::kNoSummary;
  return outcome;
}

}  // namespace qai::orchestrator
