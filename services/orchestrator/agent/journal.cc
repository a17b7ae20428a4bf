#include "services/orchestrator/agent/journal.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace qai::orchestrator::journal {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

absl::StatusOr<json> Parse(const std::string& step, size_t index) {
  json j = json::parse(step, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string()) {
    return absl::DataLossError(absl::StrCat("journal step ", index + 1, " is unreadable"));
  }
  return j;
}

}  // namespace

std::string Start(int iteration) { return Dump({{"kind", "start"}, {"iteration", iteration}}); }

std::string End(int iteration) { return Dump({{"kind", "end"}, {"iteration", iteration}}); }

std::string Model(int iteration, const ModelReply& reply) {
  json calls = json::array();
  for (const ToolCall& c : reply.tool_calls) {
    calls.push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments_json}});
  }
  return Dump(
      {{"kind", "model"}, {"iteration", iteration}, {"text", reply.text}, {"tool_calls", calls}});
}

std::string Call(const std::string& call_id) {
  return Dump({{"kind", "call"}, {"call_id", call_id}});
}

std::string Tool(const std::string& call_id, const std::string& output,
                 const std::vector<std::string>& written, const Changes& changes) {
  json files = json::object();
  for (const auto& [path, content] : changes)
    files[path] = content ? json(*content) : json(nullptr);
  return Dump({{"kind", "tool"},
               {"call_id", call_id},
               {"output", output},
               {"written", written},
               {"changes", files}});
}

Changes Diff(const Files& before, const Files& after) {
  Changes out;
  for (const auto& [path, content] : after) {
    auto it = before.find(path);
    if (it == before.end() || it->second != content) out[path] = content;
  }
  for (const auto& [path, content] : before) {
    if (!after.contains(path)) out[path] = std::nullopt;
  }
  return out;
}

absl::StatusOr<Replayed> Replay(const std::vector<std::string>& steps) {
  Replayed r;
  for (size_t i = 0; i < steps.size(); ++i) {
    QAI_ASSIGN_OR_RETURN(json j, Parse(steps[i], i));
    const std::string kind = j["kind"].get<std::string>();
    r.calling = kind == "call";
    if (kind == "start") {
      r.phase = Replayed::Phase::kStarted;
      r.iteration = j.value("iteration", 0);
      r.reply = {};
      r.answered = 0;
    } else if (kind == "model") {
      r.phase = Replayed::Phase::kAnswered;
      r.iteration = j.value("iteration", 0);
      r.reply = {.text = j.value("text", "")};
      for (const json& c : j.value("tool_calls", json::array())) {
        r.reply.tool_calls.push_back({.id = c.value("id", ""),
                                      .name = c.value("name", ""),
                                      .arguments_json = c.value("arguments", "")});
      }
      r.answered = 0;
      r.turns.push_back({.role = ChatMessage::Role::kAssistant,
                         .content = r.reply.text,
                         .tool_calls = r.reply.tool_calls});
    } else if (kind == "tool") {
      ++r.answered;
      r.turns.push_back({.role = ChatMessage::Role::kTool,
                         .content = j.value("output", ""),
                         .tool_call_id = j.value("call_id", "")});
      for (const json& p : j.value("written", json::array())) {
        if (p.is_string()) r.written.push_back(p.get<std::string>());
      }
    } else if (kind == "call") {
      // r.calling says it all.
    } else if (kind == "end") {
      r.phase = Replayed::Phase::kEnded;
    } else {
      return absl::DataLossError(
          absl::StrCat("journal step ", i + 1, " has an unknown kind \"", kind, "\""));
    }
  }
  return r;
}

absl::StatusOr<Changes> NetChanges(const std::vector<std::string>& steps) {
  Changes net;
  for (size_t i = 0; i < steps.size(); ++i) {
    QAI_ASSIGN_OR_RETURN(json j, Parse(steps[i], i));
    if (j["kind"] != "tool" || !j.contains("changes") || !j["changes"].is_object()) continue;
    for (const auto& [path, content] : j["changes"].items()) {
      net[path] = content.is_string() ? std::optional(content.get<std::string>()) : std::nullopt;
    }
  }
  return net;
}

}  // namespace qai::orchestrator::journal
