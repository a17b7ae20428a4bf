#include "services/orchestrator/model/builtin_model.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "services/orchestrator/agent/workspace.h"
#include "services/orchestrator/model/prompts.h"
#include "services/orchestrator/runs/test_sandbox.h"

namespace qai::orchestrator {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Role = ChatMessage::Role;

constexpr char kProject[] = "9b2e4c1d-7f3a-4e5b-8c6d-1a2b3c4d5e6f";

ChatMessage Msg(Role role, std::string content) {
  ChatMessage m;
  m.role = role;
  m.content = std::move(content);
  return m;
}

size_t Count(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

// AgentRun: what one agent run looked like.
struct AgentRun {
  std::vector<ModelReply> replies;
  std::vector<ChatMessage> conversation;
  std::string tool_outputs;  // every tool result, in order

  const ModelReply& last() const { return replies.back(); }
  std::string Summary() const {
    const std::string& text = last().text;
    const size_t open = text.find("<task_summary>");
    const size_t close = text.find("</task_summary>");
    if (open == std::string::npos || close == std::string::npos) return "";
    return text.substr(open + 14, close - open - 14);
  }
};

// BuiltinModelTest: drives the model as the agent loop would, running its tool calls in a
// real workspace and feeding the results back as tool messages.
class BuiltinModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sandbox_ = std::make_unique<TestSandbox>();
    ASSERT_FALSE(HasFatalFailure());
    ws_ = OpenWorkspace(kProject);
  }

  // OpenWorkspace: another project's workspace in the same sandbox service.
  Workspace* OpenWorkspace(const std::string& project) {
    auto ws = std::make_unique<SandboxWorkspace>(sandbox_->client.get(), project, 1);
    absl::StatusOr<HeldWorkspace> opened = ws->Open();
    EXPECT_TRUE(opened.ok()) << opened.status();
    workspaces_.push_back(std::move(ws));
    return workspaces_.back().get();
  }

  std::string Execute(Workspace& ws, const ToolCall& call) {
    const json args = json::parse(call.arguments_json);
    if (call.name == kToolReadFiles) {
      json files = json::array();
      std::vector<std::string> paths;
      for (const auto& path : args.at("files")) paths.push_back(path.get<std::string>());
      absl::StatusOr<std::vector<FileResult>> read = ws.ReadFiles(paths, 1 << 20);
      EXPECT_TRUE(read.ok()) << read.status();
      for (const FileResult& r : read.value_or(std::vector<FileResult>{})) {
        if (r.error.empty()) {
          files.push_back({{"path", r.path}, {"content", r.content}});
        } else {
          files.push_back({{"path", r.path}, {"error", r.error}});
        }
      }
      return json{{"files", files}}.dump();
    }
    if (call.name == kToolWriteFiles) {
      std::vector<std::pair<std::string, std::string>> files;
      for (const auto& file : args.at("files")) {
        files.emplace_back(file.at("path").get<std::string>(),
                           file.at("content").get<std::string>());
      }
      absl::StatusOr<std::vector<FileResult>> written = ws.WriteFiles(files);
      EXPECT_TRUE(written.ok()) << written.status();
      for (const FileResult& r : written.value_or(std::vector<FileResult>{}))
        EXPECT_EQ(r.error, "") << r.path;
      return absl::StrCat("wrote ", args.at("files").size(), " files");
    }
    EXPECT_EQ(call.name, kToolTerminal);
    absl::StatusOr<CommandOutcome> r =
        ws.Run(args.at("command").get<std::string>(), [] { return false; });
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    return json{{"exit_code", r->exit_code}, {"output", r->output}}.dump();
  }

  // RunAgent: one run for `prompt` after `history`, until the model stops calling tools.
  AgentRun RunAgent(const std::string& prompt, std::vector<ChatMessage> history = {},
                    Workspace* ws = nullptr, int max_turns = 10) {
    if (ws == nullptr) ws = ws_;
    AgentRun run;
    run.conversation.push_back(Msg(Role::kSystem, kAgentSystemPrompt));
    for (ChatMessage& m : history) run.conversation.push_back(std::move(m));
    run.conversation.push_back(Msg(Role::kUser, prompt));
    for (int turn = 0; turn < max_turns; ++turn) {
      absl::StatusOr<ModelReply> reply = model_.Complete(run.conversation, AgentTools());
      EXPECT_TRUE(reply.ok()) << reply.status();
      if (!reply.ok()) break;
      run.replies.push_back(*reply);
      ChatMessage assistant = Msg(Role::kAssistant, reply->text);
      assistant.tool_calls = reply->tool_calls;
      run.conversation.push_back(assistant);
      if (reply->tool_calls.empty()) break;
      for (const ToolCall& call : reply->tool_calls) {
        ChatMessage result = Msg(Role::kTool, Execute(*ws, call));
        result.tool_call_id = call.id;
        absl::StrAppend(&run.tool_outputs, result.content, "\n");
        run.conversation.push_back(std::move(result));
      }
    }
    return run;
  }

  std::string Read(const std::string& path) {
    absl::StatusOr<std::vector<FileResult>> read = ws_->ReadFiles({path}, 1 << 20);
    return read.ok() && read->at(0).error.empty() ? read->at(0).content : "";
  }

  std::string Ask(const char* system, const std::string& user) {
    absl::StatusOr<ModelReply> reply =
        model_.Complete({Msg(Role::kSystem, system), Msg(Role::kUser, user)}, {});
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return "";
    EXPECT_TRUE(reply->tool_calls.empty());
    return reply->text;
  }

  BuiltinModel model_;
  std::unique_ptr<TestSandbox> sandbox_;
  std::vector<std::unique_ptr<SandboxWorkspace>> workspaces_;
  Workspace* ws_ = nullptr;
};

TEST_F(BuiltinModelTest, IsNamedBuiltin) { EXPECT_EQ(model_.name(), "builtin"); }

TEST_F(BuiltinModelTest, BuildsAPageThroughTheToolProtocol) {
  AgentRun run = RunAgent("Build a landing page for a coffee shop");
  ASSERT_EQ(run.replies.size(), 4u);
  // 1: read what is there.
  ASSERT_EQ(run.replies[0].tool_calls.size(), 1u);
  EXPECT_EQ(run.replies[0].tool_calls[0].id, "call_1");
  EXPECT_EQ(run.replies[0].tool_calls[0].name, kToolReadFiles);
  EXPECT_EQ(run.replies[0].tool_calls[0].arguments_json, R"({"files":["index.html"]})");
  // 2: write the page.
  ASSERT_EQ(run.replies[1].tool_calls.size(), 1u);
  EXPECT_EQ(run.replies[1].tool_calls[0].id, "call_2");
  EXPECT_EQ(run.replies[1].tool_calls[0].name, kToolWriteFiles);
  // 3: a real check.
  ASSERT_EQ(run.replies[2].tool_calls.size(), 1u);
  EXPECT_EQ(run.replies[2].tool_calls[0].id, "call_3");
  EXPECT_EQ(run.replies[2].tool_calls[0].name, kToolTerminal);
  EXPECT_EQ(run.replies[2].tool_calls[0].arguments_json,
            R"({"command":"ls -la && grep -c '<section' index.html"})");
  // 4: the summary, and no more tools.
  EXPECT_TRUE(run.last().tool_calls.empty());
  EXPECT_TRUE(absl::StrContains(run.last().text, "<task_summary>")) << run.last().text;
  EXPECT_TRUE(run.last().text.ends_with("</task_summary>"));
  EXPECT_EQ(run.Summary(),
            "Built a Coffee Shop landing page with About, Menu and Contact sections (index.html, "
            "styles.css, app.js).");

  const std::string html = Read("index.html");
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  EXPECT_TRUE(absl::StrContains(html, "<title>Coffee Shop</title>"));
  EXPECT_TRUE(absl::StrContains(html, "<h1>Coffee Shop</h1>"));
  EXPECT_TRUE(absl::StrContains(html, "<link rel=\"stylesheet\" href=\"styles.css\">"));
  EXPECT_EQ(Count(html, "<section"), 4u);
  EXPECT_EQ(Count(html, "<section"), Count(html, "</section>"));
  EXPECT_TRUE(html.ends_with("</html>\n"));
  EXPECT_FALSE(Read("styles.css").empty());
  EXPECT_FALSE(Read("app.js").empty());
  // The check ran for real: the listing and grep's count of the sections.
  EXPECT_TRUE(absl::StrContains(run.tool_outputs, "index.html")) << run.tool_outputs;
  EXPECT_TRUE(absl::StrContains(run.tool_outputs, R"("exit_code":0,"output")")) << run.tool_outputs;
  EXPECT_TRUE(absl::StrContains(run.tool_outputs, "styles.css\\n4\\n")) << run.tool_outputs;
}

TEST_F(BuiltinModelTest, EscapesThePrompt) {
  AgentRun run = RunAgent("Build a page for <script>alert('x')</script>");
  const std::string html = Read("index.html");
  EXPECT_FALSE(absl::StrContains(html, "<script>alert"));
  EXPECT_TRUE(absl::StrContains(html, "<h1>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</h1>"))
      << html;
  EXPECT_FALSE(absl::StrContains(run.Summary(), "<"));
}

TEST_F(BuiltinModelTest, AFollowUpBuildsOnThePreviousPage) {
  AgentRun first = RunAgent("Build a landing page for a coffee shop");
  const std::string before = Read("index.html");
  // The project's history as the next run sees it: the request and the answer.
  AgentRun second =
      RunAgent("Add a photo gallery", {Msg(Role::kUser, "Build a landing page for a coffee shop"),
                                       Msg(Role::kAssistant, first.last().text)});
  ASSERT_EQ(second.replies.size(), 4u);
  EXPECT_EQ(second.replies[0].tool_calls[0].id, "call_1");  // ids count this run's turns
  const std::string after = Read("index.html");
  EXPECT_EQ(Count(after, "<section"), Count(before, "<section") + 1);
  for (const char* id : {"top", "about", "menu", "contact", "gallery"}) {
    EXPECT_TRUE(absl::StrContains(after, absl::StrCat("id=\"", id, "\""))) << id;
  }
  EXPECT_TRUE(absl::StrContains(after, "<h1>Coffee Shop</h1>"));
  EXPECT_TRUE(absl::StrContains(second.tool_outputs, "styles.css\\n5\\n")) << second.tool_outputs;
  EXPECT_TRUE(second.Summary().starts_with("Updated the Coffee Shop page: added a Gallery section"))
      << second.Summary();
  // And once more: the page keeps growing.
  RunAgent("Also add customer testimonials");
  EXPECT_EQ(Count(Read("index.html"), "<section"), Count(before, "<section") + 2);
  EXPECT_TRUE(absl::StrContains(Read("index.html"), "id=\"gallery\""));
}

// PageWrittenAfterRead: the index.html the model writes for `request` when its readFiles call
// got `read_result`.
std::string PageWrittenAfterRead(BuiltinModel& model, const std::string& request,
                                 const std::string& read_result) {
  std::vector<ChatMessage> conversation = {Msg(Role::kSystem, kAgentSystemPrompt),
                                           Msg(Role::kUser, request)};
  absl::StatusOr<ModelReply> read = model.Complete(conversation, AgentTools());
  EXPECT_TRUE(read.ok() && read->tool_calls.size() == 1);
  if (!read.ok() || read->tool_calls.size() != 1) return "";
  ChatMessage assistant = Msg(Role::kAssistant, read->text);
  assistant.tool_calls = read->tool_calls;
  conversation.push_back(assistant);
  ChatMessage result = Msg(Role::kTool, read_result);
  result.tool_call_id = read->tool_calls[0].id;
  conversation.push_back(result);
  absl::StatusOr<ModelReply> write = model.Complete(conversation, AgentTools());
  EXPECT_TRUE(write.ok() && write->tool_calls.size() == 1);
  if (!write.ok() || write->tool_calls.size() != 1) return "";
  EXPECT_EQ(write->tool_calls[0].name, kToolWriteFiles);
  const json files = json::parse(write->tool_calls[0].arguments_json).at("files");
  EXPECT_EQ(files.at(0).at("path"), "index.html");
  return files.at(0).at("content").get<std::string>();
}

TEST_F(BuiltinModelTest, AFollowUpReadsWhicheverWayTheLoopReturnsTheFile) {
  RunAgent("Build a landing page for a coffee shop");
  const std::string page = Read("index.html");
  // The file's text as it is, with a line before it.
  std::string html =
      PageWrittenAfterRead(model_, "add a blog", absl::StrCat("index.html:\n", page));
  EXPECT_TRUE(absl::StrContains(html, "id=\"blog\""));
  EXPECT_TRUE(absl::StrContains(html, "id=\"menu\""));
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  // JSON of other shapes.
  for (const json& result :
       {json{{"index.html", page}}, json::array({json{{"path", "index.html"}, {"content", page}}}),
        json{{"results", {{{"file", "index.html"}, {"text", page}}}}}}) {
    html = PageWrittenAfterRead(model_, "add a blog", result.dump());
    EXPECT_TRUE(absl::StrContains(html, "id=\"blog\"")) << result.dump().substr(0, 80);
    EXPECT_TRUE(absl::StrContains(html, "id=\"menu\"")) << result.dump().substr(0, 80);
  }
  // A missing file, an error, or a page cut short by a capped result: a new page, not half of
  // the old one with something glued on.
  for (
      const std::string& result :
      {std::string(
           R"({"files":[{"path":"index.html","error":"NOT_FOUND: \"index.html\" does not exist"}]})"),
       std::string("error: index.html: no such file"), page.substr(0, page.size() / 2),
       [&] {  // JSON cut just after the page: it no longer parses, and the text is still escaped
         const std::string dumped =
             json{{"files", {{{"content", page}, {"path", "index.html"}}}}}.dump();
         return dumped.substr(0, dumped.size() - 10);
       }(),
       absl::StrCat("index.html: ", json(page).dump())}) {
    html = PageWrittenAfterRead(model_, "add a blog", result);
    EXPECT_TRUE(absl::StrContains(html, "id=\"blog\"")) << result.substr(0, 80);
    EXPECT_FALSE(absl::StrContains(html, "id=\"menu\"")) << result.substr(0, 80);
    EXPECT_TRUE(html.starts_with("<!DOCTYPE html>")) << result.substr(0, 80);
    EXPECT_TRUE(html.ends_with("</html>\n")) << result.substr(0, 80);
  }
}

TEST_F(BuiltinModelTest, ATodoAppKeepsItsItemsInLocalStorage) {
  AgentRun run = RunAgent("Create a simple todo app");
  const std::string html = Read("index.html");
  EXPECT_TRUE(absl::StrContains(html, "<title>Todo App</title>"));
  EXPECT_TRUE(absl::StrContains(html, "data-widget=\"todo\""));
  EXPECT_TRUE(absl::StrContains(html, "<script src=\"app.js\" defer></script>"));
  const std::string js = Read("app.js");
  EXPECT_TRUE(absl::StrContains(js, "localStorage.setItem"));
  EXPECT_TRUE(absl::StrContains(js, "localStorage.getItem"));
  EXPECT_TRUE(absl::StrContains(js, "items.splice"));         // remove
  EXPECT_TRUE(absl::StrContains(js, ".done = box.checked"));  // toggle
  EXPECT_FALSE(absl::StrContains(js, "innerHTML"));           // typed text never becomes markup
  // Where node is installed, the script must at least parse.
  absl::StatusOr<CommandOutcome> node = ws_->Run("command -v node", nullptr);
  ASSERT_TRUE(node.ok()) << node.status();
  if (node->exit_code == 0) {
    absl::StatusOr<CommandOutcome> check = ws_->Run("node --check app.js", nullptr);
    ASSERT_TRUE(check.ok()) << check.status();
    EXPECT_EQ(check->exit_code, 0) << check->output;
  }
}

TEST_F(BuiltinModelTest, SameConversationSameReply) {
  AgentRun a = RunAgent("Build a landing page for a bakery with pricing");
  auto other = OpenWorkspace("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  AgentRun b = RunAgent("Build a landing page for a bakery with pricing", {}, other);
  ASSERT_EQ(a.replies.size(), b.replies.size());
  for (size_t i = 0; i < a.replies.size(); ++i) {
    EXPECT_EQ(a.replies[i].text, b.replies[i].text);
    ASSERT_EQ(a.replies[i].tool_calls.size(), b.replies[i].tool_calls.size());
    for (size_t k = 0; k < a.replies[i].tool_calls.size(); ++k) {
      EXPECT_EQ(a.replies[i].tool_calls[k].id, b.replies[i].tool_calls[k].id);
      EXPECT_EQ(a.replies[i].tool_calls[k].name, b.replies[i].tool_calls[k].name);
      EXPECT_EQ(a.replies[i].tool_calls[k].arguments_json,
                b.replies[i].tool_calls[k].arguments_json);
    }
  }
  // Asking again at any point of the run gives the same turn.
  for (size_t end = 2; end <= a.conversation.size(); ++end) {
    std::vector<ChatMessage> prefix(a.conversation.begin(),
                                    a.conversation.begin() + static_cast<long>(end));
    if (prefix.back().role == Role::kAssistant) continue;
    absl::StatusOr<ModelReply> x = model_.Complete(prefix, AgentTools());
    absl::StatusOr<ModelReply> y = model_.Complete(prefix, AgentTools());
    ASSERT_TRUE(x.ok() && y.ok());
    EXPECT_EQ(x->text, y->text);
    ASSERT_EQ(x->tool_calls.size(), y->tool_calls.size());
    if (!x->tool_calls.empty()) {
      EXPECT_EQ(x->tool_calls[0].arguments_json, y->tool_calls[0].arguments_json);
    }
  }
}

TEST_F(BuiltinModelTest, SleepDirectiveReplacesTheCheck) {
  AgentRun run = RunAgent("Build a landing page for a coffee shop [[sleep 0.2]]");
  ASSERT_EQ(run.replies.size(), 4u);
  EXPECT_EQ(run.replies[2].tool_calls[0].arguments_json, R"({"command":"sleep 0.2"})");
  // The directive is no part of the page.
  EXPECT_FALSE(absl::StrContains(Read("index.html"), "sleep"));
  EXPECT_FALSE(absl::StrContains(run.Summary(), "sleep"));
  // Only a number is taken: the directive cannot smuggle a command in.
  AgentRun evil = RunAgent("Build a page [[sleep 1; touch pwned]]");
  EXPECT_EQ(evil.replies[2].tool_calls[0].arguments_json,
            R"({"command":"ls -la && grep -c '<section' index.html"})");
  absl::StatusOr<std::vector<FileResult>> pwned = ws_->ReadFiles({"pwned"}, 1024);
  ASSERT_TRUE(pwned.ok()) << pwned.status();
  EXPECT_TRUE(absl::StrContains(pwned->at(0).error, "does not exist")) << pwned->at(0).error;
}

TEST_F(BuiltinModelTest, NoSummaryDirectiveNeverFinishes) {
  AgentRun run = RunAgent("Build a todo app [[no-summary]]", {}, nullptr, /*max_turns=*/8);
  ASSERT_EQ(run.replies.size(), 8u);
  std::set<std::string> ids;
  for (size_t i = 0; i < run.replies.size(); ++i) {
    ASSERT_EQ(run.replies[i].tool_calls.size(), 1u) << i;
    ids.insert(run.replies[i].tool_calls[0].id);
    EXPECT_FALSE(absl::StrContains(run.replies[i].text, "task_summary"));
    if (i >= 3) {
      EXPECT_EQ(run.replies[i].tool_calls[0].arguments_json, R"({"command":"true"})");
    }
  }
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_TRUE(ids.count("call_8"));
}

TEST_F(BuiltinModelTest, NoFilesDirectiveWritesNothing) {
  AgentRun run = RunAgent("Build a landing page for a coffee shop [[no-files]]");
  for (const ModelReply& reply : run.replies) {
    for (const ToolCall& call : reply.tool_calls) EXPECT_NE(call.name, kToolWriteFiles);
  }
  EXPECT_TRUE(run.last().tool_calls.empty());
  EXPECT_FALSE(run.Summary().empty());
  auto files = ws_->Changes();  // since the workspace was opened, empty
  ASSERT_TRUE(files.ok() && files->has_value());
  EXPECT_TRUE((*files)->empty());
}

TEST_F(BuiltinModelTest, InstantDirectiveWritesThePageAndFinishesInTheFirstTurn) {
  AgentRun run = RunAgent("Build a landing page for a coffee shop [[instant]]");
  // The first turn both writes and finishes (the agent loop stops there); the test loop asks
  // once more, and a later turn is the summary alone.
  ASSERT_EQ(run.replies.size(), 2u);
  const ModelReply& first = run.replies[0];
  ASSERT_EQ(first.tool_calls.size(), 1u);
  EXPECT_EQ(first.tool_calls[0].id, "call_1");
  EXPECT_EQ(first.tool_calls[0].name, kToolWriteFiles);
  const size_t open = first.text.find("<task_summary>");
  ASSERT_NE(open, std::string::npos) << first.text;
  const std::string summary = first.text.substr(open);
  EXPECT_EQ(summary,
            "<task_summary>Built a one-file Coffee Shop page (index.html).</task_summary>");
  EXPECT_TRUE(run.replies[1].tool_calls.empty());
  EXPECT_TRUE(absl::StrContains(run.replies[1].text, summary));
  // One file, without the directive; no command ran.
  const std::string html = Read("index.html");
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>")) << html;
  EXPECT_TRUE(absl::StrContains(html, "<h1>Coffee Shop</h1>")) << html;
  EXPECT_FALSE(absl::StrContains(html, "instant"));
  auto files = ws_->Changes();  // since the workspace was opened, empty
  ASSERT_TRUE(files.ok() && files->has_value());
  EXPECT_EQ((*files)->size(), 1u);
  // The same conversation gets the same reply.
  std::vector<ChatMessage> conversation = {Msg(Role::kSystem, kAgentSystemPrompt),
                                           Msg(Role::kUser, "Build a bakery site [[instant]]")};
  absl::StatusOr<ModelReply> a = model_.Complete(conversation, AgentTools());
  absl::StatusOr<ModelReply> b = model_.Complete(conversation, AgentTools());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->text, b->text);
  EXPECT_EQ(a->tool_calls[0].arguments_json, b->tool_calls[0].arguments_json);
}

TEST_F(BuiltinModelTest, FlakyDirectiveFailsTheFirstCalls) {
  const std::vector<ChatMessage> conversation = {
      Msg(Role::kSystem, kAgentSystemPrompt),
      Msg(Role::kUser, "Build a flaky test page [[flaky 2]]")};
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<ModelReply> reply = model_.Complete(conversation, AgentTools());
    EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(reply.status().message(), "builtin: simulated outage");
  }
  absl::StatusOr<ModelReply> reply = model_.Complete(conversation, AgentTools());
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->tool_calls[0].name, kToolReadFiles);
  // The count is per request and process-wide: another instance continues it; the run goes on.
  BuiltinModel another;
  EXPECT_TRUE(another.Complete(conversation, AgentTools()).ok());
  AgentRun run = RunAgent("Build a flaky test page [[flaky 2]]");
  EXPECT_EQ(run.replies.size(), 4u);
  EXPECT_FALSE(run.Summary().empty());
}

TEST_F(BuiltinModelTest, TitleIsAtMostThreeWordsInTitleCase) {
  EXPECT_EQ(
      Ask(kTitleSystemPrompt,
          "Built a Coffee Shop landing page with About, Menu and Contact sections (index.html)."),
      "Coffee Shop Landing");
  EXPECT_EQ(Ask(kTitleSystemPrompt, "Updated the Coffee Shop page: added a Gallery section."),
            "Coffee Shop Page");
  EXPECT_EQ(
      Ask(kTitleSystemPrompt, "<task_summary>created a todo app with local storage</task_summary>"),
      "Todo App Local");
  EXPECT_EQ(Ask(kTitleSystemPrompt, ""), "New Website");
  EXPECT_EQ(Ask(kTitleSystemPrompt, "Built the “Cozy” — café ✨ page."), "Cozy Café Page");
  for (const std::string& summary :
       std::vector<std::string>{"Built a page for &&& !!! ???", "x", "Built an A-B-C-D-E test.",
                                "Made the ünïcode café page, really.", "1 2 3 4 5 6",
                                "Built a “Cozy” — café page 🎉 ok"}) {
    const std::string title = Ask(kTitleSystemPrompt, summary);
    std::vector<std::string> words = absl::StrSplit(title, ' ');
    EXPECT_GE(words.size(), 1u) << summary;
    EXPECT_LE(words.size(), 3u) << summary;
    for (const std::string& w : words) {
      EXPECT_FALSE(w.empty()) << summary;
      if (!w.empty() && absl::ascii_isalpha(static_cast<unsigned char>(w[0]))) {
        EXPECT_TRUE(absl::ascii_isupper(static_cast<unsigned char>(w[0]))) << title;
      }
      for (char c : w) EXPECT_FALSE(absl::ascii_ispunct(static_cast<unsigned char>(c))) << title;
    }
  }
}

// Sentences: how many sentences text has (an end mark followed by a space or the end).
int Sentences(const std::string& text) {
  int n = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((text[i] == '.' || text[i] == '!' || text[i] == '?') &&
        (i + 1 == text.size() || text[i + 1] == ' '))
      ++n;
  }
  return n;
}

TEST_F(BuiltinModelTest, ResponseIsOneToThreeFriendlySentences) {
  EXPECT_EQ(Ask(kResponseSystemPrompt,
                "Built a Coffee Shop landing page with About, Menu and Contact sections "
                "(index.html, styles.css, app.js)."),
            "I built a Coffee Shop landing page with About, Menu and Contact sections. Have a look "
            "at the preview and "
            "tell me what you would like to change next.");
  for (const std::string& summary : std::vector<std::string>{
           "", "A todo app.", "**Created** a `counter` app. It has + and - buttons! And a reset?",
           "<task_summary>Updated the Coffee Shop page: added a Gallery section "
           "(index.html).</task_summary>",
           "# Heading\n- built a thing\n- with example.com links", std::string(5000, 'w')}) {
    const std::string response = Ask(kResponseSystemPrompt, summary);
    EXPECT_GE(Sentences(response), 1) << response;
    EXPECT_LE(Sentences(response), 3) << response;
    EXPECT_FALSE(absl::StrContains(response, "\n")) << response;
    for (const char* markdown : {"*", "`", "#", "<", ">"})
      EXPECT_FALSE(absl::StrContains(response, markdown)) << response;
    EXPECT_LT(response.size(), 6000u);
  }
}

TEST_F(BuiltinModelTest, RefusesConversationsItDoesNotKnow) {
  EXPECT_EQ(model_.Complete({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_.Complete({Msg(Role::kUser, "hi")}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_.Complete({Msg(Role::kSystem, "You are a pirate."), Msg(Role::kUser, "hi")}, {})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_.Complete({Msg(Role::kSystem, kAgentSystemPrompt)}, AgentTools()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qai::orchestrator
