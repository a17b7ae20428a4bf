// RunView fed RunEvents directly: the plain, live and JSON renderings of a run.

#include "tools/qai/run_view.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/qai/output.h"

namespace qai::cli {
namespace {

namespace opb = qai::orchestrator::v1;
using qai::orchestrator::v1::RunEvent;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int64_t kT0 = 1769850900;  // 2026-01-31T09:15:00Z

// Script: the events of one run, each `ms` after the run began, numbered as they are added.
class Script {
 public:
  RunEvent& Add(int ms) {
    RunEvent& e = events_.emplace_back();
    e.set_run_id("run-1");
    e.set_sequence(static_cast<int64_t>(events_.size()));
    e.mutable_time()->set_seconds(kT0 + ms / 1000);
    e.mutable_time()->set_nanos((ms % 1000) * 1000000);
    return e;
  }
  const std::vector<RunEvent>& events() const { return events_; }

 private:
  std::vector<RunEvent> events_;
};

// WholeRun: what the builtin model does for a first prompt, ending with `ending`.
Script WholeRun() {
  Script s;
  s.Add(0).mutable_queued();
  s.Add(100).mutable_started()->set_attempt(1);
  s.Add(150).mutable_iteration_started()->set_iteration(1);
  s.Add(200).mutable_model_output()->set_text("Let me look at what the workspace already has.");
  auto* read = s.Add(210).mutable_tool_call();
  read->set_call_id("call_1");
  read->set_tool("readFiles");
  read->set_arguments_json(R"({"files":["index.html"]})");
  auto* read_result = s.Add(300).mutable_tool_result();
  read_result->set_call_id("call_1");
  read_result->set_tool("readFiles");
  read_result->set_output(R"([{"path":"index.html","error":"not found"}])");
  s.Add(310).mutable_iteration_finished()->set_iteration(1);
  s.Add(320).mutable_iteration_started()->set_iteration(2);
  s.Add(400).mutable_model_output()->set_text("There is no page yet: writing one.");
  auto* write = s.Add(410).mutable_tool_call();
  write->set_tool("createOrUpdateFiles");
  write->set_arguments_json(
      R"({"files":[{"path":"index.html","content":"<!doctype html>"},{"path":"styles.css","content":"body{}"}]})");
  auto* write_result = s.Add(500).mutable_tool_result();
  write_result->set_tool("createOrUpdateFiles");
  write_result->set_output("wrote index.html\nwrote styles.css");
  auto* changed = s.Add(500).mutable_files_changed();
  changed->add_paths("index.html");
  changed->add_paths("styles.css");
  s.Add(510).mutable_iteration_finished()->set_iteration(2);
  s.Add(520).mutable_iteration_started()->set_iteration(3);
  auto* check = s.Add(600).mutable_tool_call();
  check->set_tool("terminal");
  check->set_arguments_json(R"({"command":"grep -c section index.html"})");
  auto* check_result = s.Add(1700).mutable_tool_result();
  check_result->set_tool("terminal");
  check_result->set_output("3\n");
  return s;
}

std::string Render(const std::vector<RunEvent>& events, RunViewOptions options = {},
                   int* exit_code = nullptr) {
  std::ostringstream out, err;
  RunView view(out, err, options);
  for (const RunEvent& e : events) view.Event(e);
  if (exit_code != nullptr) *exit_code = view.ExitCode();
  EXPECT_EQ(err.str(), "");
  return out.str();
}

constexpr char kWholeRunLines[] =
    "[   0.0s] queued\n"
    "[   0.1s] started (attempt 1)\n"
    "[   0.1s] iteration 1\n"
    "[   0.2s]   model: Let me look at what the workspace already has.\n"
    "[   0.2s]   call readFiles: index.html\n"
    "[   0.3s]   result readFiles (exit 0): index.html: not found\n"
    "[   0.3s] iteration 2\n"
    "[   0.4s]   model: There is no page yet: writing one.\n"
    "[   0.4s]   call createOrUpdateFiles: index.html, styles.css\n"
    "[   0.5s]   result createOrUpdateFiles (exit 0): wrote index.html (+1 line)\n"
    "[   0.5s]   files changed: index.html, styles.css\n"
    "[   0.5s] iteration 3\n"
    "[   0.6s]   call terminal: grep -c section index.html\n"
    "[   1.7s]   result terminal (exit 0): 3\n";

TEST(WatchViewTest, PlainLinesOneEventEach) {
  Script s = WholeRun();
  auto* done = s.Add(2000).mutable_succeeded();
  done->set_title("Coffee Shop");
  done->set_response("I built a landing page.\nIt has a menu.");
  done->set_sandbox_url("http://localhost:8080/abc/");
  int code = -1;
  EXPECT_EQ(Render(s.events(), {}, &code),
            absl::StrCat(kWholeRunLines,
                         "\n"
                         "succeeded: Coffee Shop (3 iterations, 2.0s)\n"
                         "  I built a landing page.\n"
                         "  It has a menu.\n"
                         "preview: http://localhost:8080/abc/\n"));
  EXPECT_EQ(code, 0);
}

TEST(WatchViewTest, FailedAndCancelledExitOne) {
  Script failed = WholeRun();
  failed.Add(3000).mutable_failed()->set_error(
      "the iteration limit (3) was reached\nwithout a summary");
  int code = -1;
  EXPECT_EQ(Render(failed.events(), {}, &code),
            absl::StrCat(kWholeRunLines,
                         "\nfailed: the iteration limit (3) was reached (3 iterations, 3.0s)\n  "
                         "without a summary\n"));
  EXPECT_EQ(code, 1);

  Script cancelled;
  cancelled.Add(0).mutable_queued();
  cancelled.Add(500).mutable_cancelled();
  EXPECT_EQ(Render(cancelled.events(), {}, &code), "[   0.0s] queued\n\ncancelled (0.5s)\n");
  EXPECT_EQ(code, 1);
}

TEST(WatchViewTest, NoOutcomeYetExitsOne) {
  std::ostringstream out, err;
  RunView view(out, err, {});
  const Script s = WholeRun();
  for (const RunEvent& e : s.events()) view.Event(e);
  EXPECT_FALSE(view.ended());
  EXPECT_EQ(view.ExitCode(), 1);
  EXPECT_EQ(view.last_sequence(), static_cast<int64_t>(s.events().size()));
}

TEST(WatchViewTest, AReplayedEventIsShownOnce) {
  Script s = WholeRun();
  std::vector<RunEvent> events(s.events().begin(), s.events().begin() + 5);
  // A reconnect that resumed one event too early, then the rest.
  events.insert(events.end(), s.events().begin() + 4, s.events().end());
  EXPECT_EQ(Render(events), kWholeRunLines);
}

TEST(WatchViewTest, ResumedMidRunTimesFromTheFirstEventSeen) {
  Script s = WholeRun();
  auto* done = s.Add(2000).mutable_succeeded();
  done->set_title("Coffee Shop");
  std::vector<RunEvent> tail(s.events().end() - 2, s.events().end());
  EXPECT_EQ(Render(tail), "[   0.0s]   result terminal (exit 0): 3\n\nsucceeded: Coffee Shop\n")
      << "neither the iterations nor the run's length are known: its start was not seen";
}

TEST(WatchViewTest, RetryingShowsTheReasonAndDelay) {
  Script s;
  s.Add(0).mutable_queued();
  auto* retrying = s.Add(1500).mutable_retrying();
  retrying->set_attempt(2);
  retrying->set_reason("model: UNAVAILABLE: simulated outage");
  retrying->mutable_delay()->set_seconds(2);
  retrying->mutable_delay()->set_nanos(500000000);
  EXPECT_EQ(Render(s.events()),
            "[   0.0s] queued\n[   1.5s] retrying (attempt 2) in 2.5s: model: UNAVAILABLE: "
            "simulated outage\n");
  retrying->mutable_delay()->Clear();
  retrying->set_reason("its replica shut down");
  EXPECT_EQ(Render({s.events()[1]}),
            "[   0.0s] retrying (attempt 2) in 0s: its replica shut down\n");
}

TEST(WatchViewTest, AFailedToolShowsItsExitCode) {
  Script s;
  auto* result = s.Add(0).mutable_tool_result();
  result->set_tool("terminal");
  result->set_output("\n  grep: index.html: No such file or directory\n");
  result->set_exit_code(2);
  result->set_truncated(true);
  EXPECT_EQ(Render(s.events()),
            "[   0.0s]   result terminal (exit 2): grep: index.html: No such file or directory "
            "[output truncated]\n");
}

TEST(WatchViewTest, JsonIsOneLinePerEventAndNothingElse) {
  Script s = WholeRun();
  s.Add(2000).mutable_succeeded()->set_title("Coffee Shop");
  std::string expected;
  for (const RunEvent& e : s.events()) expected += ToJsonLine(e);
  int code = -1;
  EXPECT_EQ(Render(s.events(), {.json = true}, &code), expected);
  EXPECT_EQ(code, 0);
  // Even on a terminal: JSON is for programs.
  std::ostringstream out, err;
  RunView view(out, err, {.json = true, .live = true});
  view.Header("run-1");
  view.Tick(absl::Now());
  view.Event(s.events()[0]);
  view.Close();
  EXPECT_EQ(out.str(), ToJsonLine(s.events()[0]));
}

TEST(WatchViewTest, PlainOutputHasNoControlSequences) {
  Script s = WholeRun();
  s.Add(2000).mutable_succeeded()->set_title("Coffee Shop");
  std::ostringstream out, err;
  RunView view(out, err, {});
  view.Waiting("waiting for the run to start");
  view.Tick(absl::FromUnixSeconds(kT0));
  view.Header("run-1");
  for (const RunEvent& e : s.events()) {
    view.Event(e);
    view.Tick(absl::FromUnixSeconds(kT0 + 1));
  }
  view.Close();
  EXPECT_THAT(out.str(), StartsWith("watching run run-1\n[   0.0s] queued\n"));
  EXPECT_THAT(out.str(), Not(HasSubstr("\r")));
  EXPECT_THAT(out.str(), Not(HasSubstr("\033")));
}

TEST(WatchViewTest, ToolOutputCannotDriveTheTerminal) {
  Script s;
  auto* result = s.Add(0).mutable_tool_result();
  result->set_tool("terminal");
  result->set_output(
      "\033[2Jcleared\tscreen\r \xc2\x9b"
      "2J \xc2\xa0ok");
  EXPECT_EQ(Render(s.events()),
            "[   0.0s]   result terminal (exit 0): ?[2Jcleared screen ?2J \xc2\xa0ok\n")
      << "C0 and C1 controls are replaced, other characters kept";
}

TEST(WatchViewTest, LiveRedrawsAStatusLineInPlace) {
  std::ostringstream out, err;
  RunView view(out, err, {.live = true, .columns = 60});
  Script s = WholeRun();
  view.Waiting("waiting for the run to start");
  view.Tick(absl::FromUnixSeconds(kT0));
  EXPECT_EQ(out.str(), "\r\033[2K/ 0.0s  waiting for the run to start");

  out.str("");
  view.Event(s.events()[0]);  // queued: the status line makes way for the event and comes back
  EXPECT_THAT(out.str(), StartsWith("\r\033[2K\033[2m[   0.0s]\033[0m queued\n\r\033[2K"));
  EXPECT_THAT(out.str(), EndsWith("queued"));

  for (size_t i = 1; i < s.events().size(); ++i) view.Event(s.events()[i]);
  out.str("");
  view.Tick(absl::FromUnixSeconds(kT0 + 12));
  EXPECT_EQ(out.str(), "\r\033[2K- 12.0s  iteration 3: the model is thinking");

  // A tool that runs: its summary, cut to the terminal's width.
  RunEvent call = s.Add(12000);
  auto* tool_call = call.mutable_tool_call();
  tool_call->set_tool("terminal");
  tool_call->set_arguments_json(
      R"({"command":"npm run build && npm run test -- --coverage --reporter=verbose"})");
  view.Event(call);
  out.str("");
  view.Tick(absl::FromUnixSeconds(kT0 + 13));
  EXPECT_EQ(out.str(), "\r\033[2K\\ 13.0s  iteration 3: terminal npm run build && npm run ...");

  out.str("");
  view.Note("qai: the stream broke (UNAVAILABLE); reconnecting after event 17 in 250ms (1/10)");
  EXPECT_EQ(out.str(),
            "\r\033[2K\r\033[2K\\ 13.0s  iteration 3: terminal npm run build && npm run ...");
  EXPECT_EQ(err.str(),
            "qai: the stream broke (UNAVAILABLE); reconnecting after event 17 in 250ms (1/10)\n");

  out.str("");
  RunEvent done = s.Add(14000);
  done.mutable_succeeded()->set_title("Coffee Shop");
  done.mutable_succeeded()->set_sandbox_url("http://localhost:8080/abc/");
  view.Event(done);
  EXPECT_EQ(out.str(),
            "\r\033[2K\n\033[1;32msucceeded\033[0m: Coffee Shop (3 iterations, 14.0s)\n"
            "\033[1mpreview: \033[0m\033[1;4mhttp://localhost:8080/abc/\033[0m\n")
      << "the outcome replaces the status line for good";
  out.str("");
  view.Tick(absl::FromUnixSeconds(kT0 + 15));
  view.Close();
  EXPECT_EQ(out.str(), "");
}

TEST(WatchViewTest, AClosedLiveViewDrawsNoMore) {
  std::ostringstream out, err;
  RunView view(out, err, {.live = true});
  view.Tick(absl::FromUnixSeconds(kT0));
  view.Close();
  EXPECT_EQ(out.str(), "\r\033[2K/ 0.0s  connecting\r\033[2K");
  out.str("");
  view.Tick(absl::FromUnixSeconds(kT0 + 1));
  view.Note("qai: bye");
  EXPECT_EQ(out.str(), "") << "an error printed after Close stays the last line";
  EXPECT_EQ(err.str(), "qai: bye\n");
}

TEST(WatchViewTest, FinishFromARunThatEndedBeforeTheWatch) {
  opb::Run run;
  run.set_id("run-1");
  run.set_state(opb::Run::STATE_SUCCEEDED);
  run.set_iteration(4);
  run.set_sandbox_url("http://localhost:8080/abc/");
  run.mutable_create_time()->set_seconds(kT0);
  run.mutable_end_time()->set_seconds(kT0 + 3);
  std::ostringstream out, err;
  RunView view(out, err, {});
  view.FinishFrom(run);
  EXPECT_TRUE(view.ended());
  EXPECT_EQ(view.ExitCode(), 0);
  EXPECT_EQ(out.str(), "\nsucceeded (4 iterations, 3.0s)\npreview: http://localhost:8080/abc/\n");

  run.set_state(opb::Run::STATE_FAILED);
  run.set_error("boom");
  run.clear_end_time();
  RunView failed(out, err, {});
  out.str("");
  failed.FinishFrom(run);
  EXPECT_EQ(failed.ExitCode(), 1);
  EXPECT_EQ(out.str(), "\nfailed: boom (4 iterations)\n");

  run.set_state(opb::Run::STATE_RUNNING);
  RunView running(out, err, {});
  running.FinishFrom(run);
  EXPECT_FALSE(running.ended()) << "a run that goes on has no outcome yet";
}

TEST(WatchSummaryTest, ToolCallTheCommandOrThePaths) {
  // Arguments nested 100,000 deep (a hostile model's) are summarised, not parsed into a crash.
  const std::string deep =
      R"({"files":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_FALSE(SummarizeToolCall("readFiles", deep).empty());
  EXPECT_EQ(SummarizeToolCall("terminal", R"({"command":"npm test"})"), "npm test");
  EXPECT_EQ(SummarizeToolCall("terminal", R"({"command":"cd app\nnpm test\n"})"),
            "cd app (+1 line)");
  EXPECT_EQ(SummarizeToolCall("readFiles", R"({"files":["a.html","b.css"]})"), "a.html, b.css");
  EXPECT_EQ(
      SummarizeToolCall("createOrUpdateFiles", R"({"files":[{"path":"a.html","content":"x"}]})"),
      "a.html");
  EXPECT_EQ(SummarizeToolCall("search", R"({"query":"cats"})"), R"({"query":"cats"})")
      << "unknown tools as they are";
  EXPECT_EQ(SummarizeToolCall("terminal", "not json"), "not json");
}

TEST(WatchSummaryTest, ToolCallArgumentsCutShortByTheServer) {
  // The server caps the arguments it reports (16 KiB): big files arrive as broken JSON.
  const std::string cut =
      absl::StrCat(R"({"files":[{"path":"index.html","content":")", std::string(100, 'x'),
                   R"("},{"path":"app.js","content":"con)");
  EXPECT_EQ(SummarizeToolCall("createOrUpdateFiles", cut), "index.html, app.js, ...");
  EXPECT_EQ(SummarizeToolCall("terminal", R"({"command":"echo \"hi\" && sle)"),
            "echo \"hi\" && sle");
}

TEST(WatchSummaryTest, ToolCallCutToTheLimit) {
  const std::string command = absl::StrCat(R"({"command":")", std::string(200, 'a'), R"("})");
  EXPECT_EQ(SummarizeToolCall("terminal", command, 10), "aaaaaaa...");
  EXPECT_EQ(FirstLine("\n  \n  héllo wörld  \nmore", 8), "héllo...")
      << "cut by characters, not bytes";
  EXPECT_EQ(FirstLine("héllo", 5), "héllo");
}

TEST(WatchSummaryTest, ToolOutputFirstLineOrTheFilesRead) {
  EXPECT_EQ(SummarizeToolOutput("terminal", ""), "(no output)");
  EXPECT_EQ(SummarizeToolOutput("terminal", "ok\n"), "ok");
  EXPECT_EQ(SummarizeToolOutput("terminal", "a\n\nb\nc\n"), "a (+2 lines)");
  EXPECT_EQ(
      SummarizeToolOutput(
          "readFiles", R"([{"path":"index.html","content":"12345"},{"path":"x","error":"nope"}])"),
      "index.html (5 bytes), x: nope");
  EXPECT_EQ(SummarizeToolOutput("readFiles", R"([{"path":"index.html","content":"12)"),
            R"([{"path":"index.html","content":"12)")
      << "a cut-short list as it is";
}

}  // namespace
}  // namespace qai::cli
