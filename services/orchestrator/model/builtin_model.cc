#include "services/orchestrator/model/builtin_model.h"

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/strings.h"
#include "common/utf8.h"
#include "nlohmann/json.hpp"
#include "services/orchestrator/model/builtin_site.h"
#include "services/orchestrator/model/prompts.h"

namespace qai::orchestrator {
using common::ToValidUtf8;
using common::TruncateUtf8;
namespace {

using common::ToAbsl;
using Role = ChatMessage::Role;

constexpr char kCheckCommand[] = "ls -la && grep -c '<section' index.html";
constexpr char kSummaryOpen[] = "<task_summary>";
constexpr char kSummaryClose[] = "</task_summary>";

// ---------------------------------------------------------------------------------------------
// Test directives

struct Directives {
  std::optional<std::string> sleep;  // seconds, as digits: it becomes part of a shell command
  bool no_summary = false;
  bool no_files = false;
  bool instant = false;
  int flaky = 0;
};

bool IsDuration(std::string_view s) {
  const size_t dot = s.find('.');
  auto digits = [](std::string_view d, size_t max) {
    return !d.empty() && d.size() <= max &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (dot == std::string_view::npos) return digits(s, 6);
  return digits(s.substr(0, dot), 6) && digits(s.substr(dot + 1), 3);
}

Directives ParseDirectives(std::string_view text) {
  Directives d;
  for (size_t open = text.find("[["); open != std::string_view::npos;
       open = text.find("[[", open + 2)) {
    const size_t close = text.find("]]", open + 2);
    if (close == std::string_view::npos) break;
    const std::string inner =
        absl::AsciiStrToLower(ToAbsl(text.substr(open + 2, close - open - 2)));
    std::vector<std::string> words =
        absl::StrSplit(inner, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (words.size() == 2 && words[0] == "sleep" && IsDuration(words[1])) d.sleep = words[1];
    if (words.size() == 1 && words[0] == "no-summary") d.no_summary = true;
    if (words.size() == 1 && words[0] == "no-files") d.no_files = true;
    if (words.size() == 1 && words[0] == "instant") d.instant = true;
    int n = 0;
    if (words.size() == 2 && words[0] == "flaky" && absl::SimpleAtoi(words[1], &n) && n > 0)
      d.flaky = std::min(n, 1000);
  }
  return d;
}

// SimulatedOutage: whether this call is one of the first `n` for the conversation's request.
bool SimulatedOutage(const std::vector<ChatMessage>& conversation, size_t last_user, int n) {
  std::string key;
  for (size_t i = 0; i <= last_user; ++i) {
    absl::StrAppend(&key, static_cast<int>(conversation[i].role), "\x1f", conversation[i].content,
                    "\x1e");
  }
  static std::mutex mu;
  static auto* failures = new std::map<size_t, int>();
  std::lock_guard<std::mutex> lock(mu);
  int& count = (*failures)[std::hash<std::string>()(key)];
  if (count >= n) return false;
  ++count;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Reading what the readFiles call returned

// LooksLikeHtml: a whole HTML document. A cut one (a capped tool result) does not count: adding
// to half a page would break it, so the builtin writes a new one instead.
bool LooksLikeHtml(std::string_view text) {
  const std::string head = absl::AsciiStrToLower(ToAbsl(text.substr(0, 4096)));
  const std::string tail =
      absl::AsciiStrToLower(ToAbsl(text.substr(text.size() - std::min<size_t>(text.size(), 4096))));
  return (absl::StrContains(head, "<!doctype html") || absl::StrContains(head, "<html")) &&
         absl::StrContains(tail, "</html>");
}

// HtmlInJson: the HTML document among the strings of a JSON value; one tied to index.html
// (`{"path":"index.html","content":...}` or `{"index.html":...}`) first.
void HtmlInJson(const nlohmann::json& j, std::optional<std::string>& tied,
                std::optional<std::string>& any) {
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (!any && LooksLikeHtml(s)) any = s;
  } else if (j.is_object()) {
    auto path = j.find("path");
    auto content = j.find("content");
    if (!tied && path != j.end() && content != j.end() && path->is_string() &&
        content->is_string() && path->get_ref<const std::string&>() == "index.html" &&
        LooksLikeHtml(content->get_ref<const std::string&>())) {
      tied = content->get<std::string>();
    }
    auto named = j.find("index.html");
    if (!tied && named != j.end() && named->is_string() &&
        LooksLikeHtml(named->get_ref<const std::string&>())) {
      tied = named->get<std::string>();
    }
    for (const auto& [unused, value] : j.items()) HtmlInJson(value, tied, any);
  } else if (j.is_array()) {
    for (const auto& value : j) HtmlInJson(value, tied, any);
  }
}

// ExistingPage: index.html as the read returned it, or nullopt when it holds no HTML document
// (the file is missing, or the read failed).
std::optional<std::string> ExistingPage(std::string_view result) {
  const nlohmann::json j = nlohmann::json::parse(result, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    std::optional<std::string> tied, any;
    HtmlInJson(j, tied, any);
    return tied ? tied : any;
  }
  // Plain text around the file's content ("index.html:\n<!DOCTYPE html>...").
  const std::string lower = absl::AsciiStrToLower(ToAbsl(result));
  size_t start = lower.find("<!doctype html");
  if (start == std::string::npos) start = lower.find("<html");
  const size_t end = lower.rfind("</html>");
  if (start == std::string::npos || end == std::string::npos || end < start) return std::nullopt;
  std::string page(result.substr(start, end + 7 - start));
  // Still JSON-escaped (JSON that did not parse, say because it was cut): not the file's text.
  if (absl::StrContains(page, "=\\\"") && !absl::StrContains(page, "=\"")) return std::nullopt;
  return page;
}

// ReadResult: the tool message that answers the run's readFiles call.
std::optional<std::string> ReadResult(const std::vector<ChatMessage>& conversation, size_t from) {
  for (size_t i = from; i < conversation.size(); ++i) {
    const ChatMessage& m = conversation[i];
    if (m.role != Role::kAssistant) continue;
    for (const ToolCall& call : m.tool_calls) {
      if (call.name != kToolReadFiles) continue;
      std::optional<std::string> untagged;
      for (size_t k = i + 1; k < conversation.size() && conversation[k].role == Role::kTool; ++k) {
        if (conversation[k].tool_call_id == call.id) return conversation[k].content;
        if (!untagged && conversation[k].tool_call_id.empty()) untagged = conversation[k].content;
      }
      return untagged;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Replies

ToolCall Call(int n, const char* tool, const nlohmann::json& arguments) {
  return {absl::StrCat("call_", n), tool,
          arguments.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

ModelReply WithCall(std::string text, ToolCall call) {
  ModelReply reply;
  reply.text = std::move(text);
  reply.tool_calls.push_back(std::move(call));
  return reply;
}

ModelReply Finish(std::string_view sentence, std::string_view summary) {
  return {absl::StrCat(ToAbsl(sentence), "\n", kSummaryOpen, ToAbsl(summary), kSummaryClose), {}};
}

// InstantTurn: [[instant]]: a one-file page and the summary in the same first turn.
ModelReply InstantTurn(const std::string& request, int next) {
  const std::string subject = SubjectOf(request);
  // A summary is plain text between tags: no angle brackets from the prompt.
  const std::string summary =
      absl::StrCat("Built a one-file ", absl::StrReplaceAll(subject, {{"<", ""}, {">", ""}}),
                   " page (index.html).");
  if (next > 1) return Finish("Done: the page is written.", summary);
  const std::string escaped = HtmlEscape(subject);
  const std::string page = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", escaped,
      "</title>\n</head>\n<body>\n<h1>", escaped, "</h1>\n</body>\n</html>\n");
  ModelReply reply = Finish("Writing the page, and done.", summary);
  nlohmann::json files = nlohmann::json::array();
  files.push_back(nlohmann::json{{"path", "index.html"}, {"content", page}});
  reply.tool_calls.push_back(Call(next, kToolWriteFiles, {{"files", files}}));
  return reply;
}

absl::StatusOr<ModelReply> AgentTurn(const std::vector<ChatMessage>& conversation) {
  size_t last_user = conversation.size();
  for (size_t i = conversation.size(); i-- > 1;) {
    if (conversation[i].role == Role::kUser) {
      last_user = i;
      break;
    }
  }
  if (last_user == conversation.size())
    return absl::InvalidArgumentError("builtin: the conversation has no request");
  const std::string request = ToValidUtf8(conversation[last_user].content);
  const Directives directives = ParseDirectives(request);
  if (directives.flaky > 0 && SimulatedOutage(conversation, last_user, directives.flaky)) {
    return absl::UnavailableError("builtin: simulated outage");
  }

  const ChatMessage* last_turn = nullptr;
  int turns = 0;
  for (size_t i = last_user + 1; i < conversation.size(); ++i) {
    if (conversation[i].role == Role::kAssistant) {
      last_turn = &conversation[i];
      ++turns;
    }
  }
  const int next = turns + 1;
  if (directives.instant) return InstantTurn(request, next);
  if (last_turn == nullptr) {
    return WithCall("Let me look at what the workspace already has.",
                    Call(next, kToolReadFiles, {{"files", nlohmann::json::array({"index.html"})}}));
  }
  const std::string previous =
      last_turn->tool_calls.empty() ? "" : last_turn->tool_calls.back().name;
  const std::string check =
      directives.sleep ? absl::StrCat("sleep ", *directives.sleep) : kCheckCommand;

  if (previous == kToolReadFiles && !directives.no_files) {
    std::optional<std::string> read = ReadResult(conversation, last_user + 1);
    std::optional<std::string> page = read ? ExistingPage(*read) : std::nullopt;
    const SitePlan plan = PlanSite(request, page);
    nlohmann::json files = nlohmann::json::array();
    for (const SiteFile& f : plan.files)
      files.push_back(nlohmann::json{{"path", f.path}, {"content", f.content}});
    return WithCall(page ? "index.html is there: I will add to that page."
                         : "There is no page yet: writing one.",
                    Call(next, kToolWriteFiles, {{"files", files}}));
  }
  if (previous == kToolReadFiles || previous == kToolWriteFiles) {
    return WithCall("Checking the result.", Call(next, kToolTerminal, {{"command", check}}));
  }
  if (directives.no_summary) {
    return WithCall("Still checking.", Call(next, kToolTerminal, {{"command", "true"}}));
  }
  if (directives.no_files) {
    return Finish("Nothing to write this time.",
                  "Looked at the workspace and changed no files, as the request asked.");
  }
  std::optional<std::string> read = ReadResult(conversation, last_user + 1);
  const SitePlan plan = PlanSite(request, read ? ExistingPage(*read) : std::nullopt);
  return Finish("Done: the page is written and checked.", plan.summary);
}

// ---------------------------------------------------------------------------------------------
// Title and response

// SummaryText: the summary without its tags, on one line.
std::string SummaryText(std::string_view text) {
  std::string s =
      absl::StrReplaceAll(ToAbsl(ToValidUtf8(text)), {{kSummaryOpen, " "}, {kSummaryClose, " "}});
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return std::string(absl::StripAsciiWhitespace(s));
}

const std::set<std::string_view>& SummaryVerbs() {
  static const auto* verbs = new std::set<std::string_view>{
      "built",     "build",      "created",   "create",   "made",     "make",        "added",
      "add",       "updated",    "update",    "designed", "wrote",    "implemented", "changed",
      "improved",  "extended",   "generated", "set",      "setup",    "rebuilt",     "expanded",
      "refreshed", "redesigned", "looked",    "checked",  "prepared", "put"};
  return *verbs;
}

std::string Title(std::string_view summary) {
  static const std::set<std::string_view> kStop = {
      "a",   "an", "the",  "to",   "for", "of", "with", "and", "in", "on", "my",   "your", "our",
      "its", "it", "that", "this", "i",   "we", "you",  "up",  "at", "by", "from", "as",   "new"};
  std::vector<std::string> title;
  bool leading = true;
  for (std::string& w : Words(SummaryText(summary))) {
    const std::string lower = absl::AsciiStrToLower(w);
    if (kStop.count(lower)) continue;
    if (leading && SummaryVerbs().count(lower)) continue;
    leading = false;
    if (absl::ascii_islower(static_cast<unsigned char>(w[0])))
      w[0] = absl::ascii_toupper(static_cast<unsigned char>(w[0]));
    title.push_back(std::move(w));
    if (title.size() == 3) break;
  }
  return title.empty() ? "New Website" : absl::StrJoin(title, " ");
}

std::string Response(std::string_view summary) {
  constexpr char kInvite[] =
      "Have a look at the preview and tell me what you would like to change next.";
  std::string text = SummaryText(summary);
  // The first sentence ("example.com" does not end one), without parentheses and markdown.
  for (size_t i = 0; i < text.size(); ++i) {
    if ((text[i] == '.' || text[i] == '!' || text[i] == '?') &&
        (i + 1 == text.size() || text[i + 1] == ' ')) {
      text.resize(i);
      break;
    }
  }
  std::string plain;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (depth == 0 && c != '*' && c != '`' && c != '#' && c != '<' && c != '>' && c != '_' &&
        c != '[' && c != ']') {
      plain += c;
    }
    if (c == ')' && depth > 0) --depth;
  }
  std::vector<std::string> words = absl::StrSplit(plain, ' ', absl::SkipEmpty());
  while (!words.empty() && (words.front() == "-" || words.front() == "+"))
    words.erase(words.begin());
  if (words.size() > 40) words.resize(40);  // a long summary makes a short answer
  std::string sentence = absl::StrJoin(words, " ");
  if (sentence.size() > 300) {  // one long word: cut it on a character boundary
    size_t cut = 300;
    while (cut > 0 && (static_cast<unsigned char>(sentence[cut]) & 0xC0) == 0x80) --cut;
    sentence.resize(cut);
  }
  while (!sentence.empty() && absl::StrContains(".,;:!?-", sentence.back())) sentence.pop_back();
  if (sentence.empty()) return absl::StrCat("Your page is ready! ", kInvite);
  if (SummaryVerbs().count(absl::AsciiStrToLower(words.front()))) {
    sentence[0] = absl::ascii_tolower(static_cast<unsigned char>(sentence[0]));
    return absl::StrCat("I ", sentence, ". ", kInvite);
  }
  if (sentence.size() > 1 && absl::ascii_isupper(static_cast<unsigned char>(sentence[0])) &&
      absl::ascii_islower(static_cast<unsigned char>(sentence[1]))) {
    sentence[0] = absl::ascii_tolower(static_cast<unsigned char>(sentence[0]));
  }
  return absl::StrCat("All done: ", sentence, ". ", kInvite);
}

std::string LastUserContent(const std::vector<ChatMessage>& conversation) {
  for (size_t i = conversation.size(); i-- > 1;) {
    if (conversation[i].role == Role::kUser) return conversation[i].content;
  }
  return "";
}

}  // namespace

absl::StatusOr<ModelReply> BuiltinModel::Complete(const std::vector<ChatMessage>& conversation,
                                                  const std::vector<ToolSpec>& tools) {
  if (conversation.empty() || conversation.front().role != Role::kSystem) {
    return absl::InvalidArgumentError("builtin: a conversation starts with a system message");
  }
  const std::string& system = conversation.front().content;
  if (absl::StartsWith(system, kAgentSystemPrompt)) return AgentTurn(conversation);
  if (absl::StartsWith(system, kTitleSystemPrompt))
    return ModelReply{Title(LastUserContent(conversation)), {}};
  if (absl::StartsWith(system, kResponseSystemPrompt))
    return ModelReply{Response(LastUserContent(conversation)), {}};
  return absl::InvalidArgumentError(
      "builtin: unknown conversation (the system prompt is not one of prompts.h)");
}

}  // namespace qai::orchestrator
