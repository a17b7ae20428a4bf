#include "tools/qai/run_view.h"

#include <algorithm>
#include <optional>
#include <ostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/json.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"
#include "tools/qai/output.h"
#include "tools/qai/printable.h"

namespace qai::cli {
namespace {

using qai::orchestrator::v1::Run;
using qai::orchestrator::v1::RunEvent;

constexpr char kClearLine[] = "\r\033[2K";
constexpr char kFrames[] = {'|', '/', '-', '\\'};
// ANSI styles (live only).
constexpr char kBold[] = "1";
constexpr char kDim[] = "2";
constexpr char kGreen[] = "1;32";
constexpr char kRed[] = "1;31";
constexpr char kYellow[] = "33";
constexpr char kUrl[] = "1;4";

// Cut: at most max_chars characters (UTF-8 code points), "..." at the end of a cut text.
std::string Cut(absl::string_view text, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) == 0x80) continue;  // a continuation byte
    if (chars == max_chars) {
      if (max_chars < 3) return std::string(text.substr(0, i));
      // Room for "...": drop the last three characters again.
      size_t end = i, dropped = 0;
      while (end > 0 && dropped < 3) {
        --end;
        if ((static_cast<unsigned char>(text[end]) & 0xc0) != 0x80) ++dropped;
      }
      return absl::StrCat(text.substr(0, end), "...");
    }
    ++chars;
  }
  return std::string(text);
}

// JsonStringAfter: the value of the JSON string that follows `"key":` at or after `from` in
// text that may be cut short (then the part that is there); npos in `*next` when none.
std::optional<std::string> JsonStringAfter(absl::string_view text, absl::string_view key,
                                           size_t from, size_t* next) {
  const std::string quoted = absl::StrCat("\"", key, "\"");
  size_t at = text.find(quoted, from);
  while (at != absl::string_view::npos) {
    size_t i = at + quoted.size();
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    if (i < text.size() && text[i] == ':') {
      ++i;
      while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
      if (i < text.size() && text[i] == '"') break;
    }
    at = text.find(quoted, at + 1);
  }
  if (at == absl::string_view::npos) {
    *next = absl::string_view::npos;
    return std::nullopt;
  }
  size_t i = text.find('"', text.find(':', at + quoted.size())) + 1;
  std::string value;
  for (; i < text.size() && text[i] != '"'; ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      ++i;
      switch (text[i]) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'u':
          i += std::min<size_t>(4, text.size() - i - 1);
          value += '?';
          break;
        default:
          value += text[i];
      }
    } else {
      value += text[i];
    }
  }
  *next = i;
  return value;
}

// PathsOf: the file paths of createOrUpdateFiles ({"files":[{"path":...}]}) or readFiles
// ({"files":["a", "b"]}) arguments; a last "..." when the arguments were cut short.
std::vector<std::string> PathsOf(std::string_view tool, std::string_view arguments_json) {
  std::vector<std::string> paths;
  const nlohmann::json args = common::ParseUntrustedJson(arguments_json);
  if (args.is_object() && args.contains("files") && args["files"].is_array()) {
    for (const auto& f : args["files"]) {
      if (f.is_string()) {
        paths.push_back(f.get<std::string>());
      } else if (f.is_object() && f.contains("path") && f["path"].is_string()) {
        paths.push_back(f["path"].get<std::string>());
      }
    }
    return paths;
  }
  if (!args.is_discarded() || tool != "createOrUpdateFiles") return paths;
  // The server caps the arguments it reports, so a call that writes big files arrives cut.
  size_t next = 0;
  while (std::optional<std::string> path =
             JsonStringAfter(common::ToAbsl(arguments_json), "path", next, &next)) {
    paths.push_back(*std::move(path));
    if (next == absl::string_view::npos) break;
  }
  // More files may have followed where the text ends.
  if (!paths.empty()) paths.push_back("...");
  return paths;
}

// MoreLines: how many non-blank lines follow the first non-blank one.
size_t MoreLines(std::string_view text) {
  size_t lines = 0;
  for (absl::string_view line : absl::StrSplit(common::ToAbsl(text), '\n')) {
    if (!absl::StripAsciiWhitespace(line).empty()) ++lines;
  }
  return lines > 0 ? lines - 1 : 0;
}

// WithMoreLines: a first line, and how many lines it stands for, within max_chars.
std::string WithMoreLines(const std::string& first, size_t more, size_t max_chars) {
  if (more == 0) return first;
  return Cut(absl::StrCat(first, " (+", more, more == 1 ? " line)" : " lines)"), max_chars);
}

std::string Seconds(absl::Duration d) { return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d)); }

// Delay: absl's form ("2.5s", "250ms"), and "0s" rather than a bare "0".
std::string Delay(absl::Duration d) {
  return d == absl::ZeroDuration() ? "0s" : absl::FormatDuration(d);
}

// HowLongText: " (3 iterations, 8.4s)", each part only when known; "" when neither is.
std::string HowLongText(int iterations, std::optional<absl::Duration> took) {
  std::vector<std::string> parts;
  if (iterations > 0)
    parts.push_back(iterations == 1 ? "1 iteration" : absl::StrCat(iterations, " iterations"));
  if (took) parts.push_back(Seconds(*took));
  return parts.empty() ? "" : absl::StrCat(" (", absl::StrJoin(parts, ", "), ")");
}

}  // namespace

std::string FirstLine(std::string_view text, size_t max_chars) {
  for (absl::string_view line : absl::StrSplit(common::ToAbsl(text), '\n')) {
    std::string printable = Printable(line, /*keep_newlines=*/false);
    absl::string_view trimmed = absl::StripAsciiWhitespace(printable);
    if (!trimmed.empty()) return Cut(trimmed, max_chars);
  }
  return "";
}

std::string SummarizeToolCall(std::string_view tool, std::string_view arguments_json,
                              size_t max_chars) {
  if (tool == "terminal") {
    const nlohmann::json args = common::ParseUntrustedJson(arguments_json);
    std::optional<std::string> command;
    if (args.is_object() && args.contains("command") && args["command"].is_string()) {
      command = args["command"].get<std::string>();
    } else if (args.is_discarded()) {
      size_t next = 0;
      command = JsonStringAfter(common::ToAbsl(arguments_json), "command", 0, &next);
    }
    if (command)
      return WithMoreLines(FirstLine(*command, max_chars), MoreLines(*command), max_chars);
  } else if (tool == "createOrUpdateFiles" || tool == "readFiles") {
    std::vector<std::string> paths = PathsOf(tool, arguments_json);
    if (!paths.empty()) return Cut(Printable(absl::StrJoin(paths, ", "), false), max_chars);
  }
  return FirstLine(arguments_json, max_chars);
}

std::string SummarizeToolOutput(std::string_view tool, std::string_view output, size_t max_chars) {
  if (tool == "readFiles") {
    const nlohmann::json files = common::ParseUntrustedJson(output);
    if (files.is_array()) {
      std::vector<std::string> parts;
      for (const auto& f : files) {
        if (!f.is_object() || !f.contains("path") || !f["path"].is_string()) continue;
        std::string part = f["path"].get<std::string>();
        if (f.contains("content") && f["content"].is_string()) {
          absl::StrAppend(&part, " (", f["content"].get_ref<const std::string&>().size(),
                          " bytes)");
        } else if (f.contains("error") && f["error"].is_string()) {
          absl::StrAppend(&part, ": ", f["error"].get<std::string>());
        }
        parts.push_back(std::move(part));
      }
      if (!parts.empty()) return FirstLine(absl::StrJoin(parts, ", "), max_chars);
    }
  }
  std::string first = FirstLine(output, max_chars);
  if (first.empty()) return "(no output)";
  return WithMoreLines(first, MoreLines(output), max_chars);
}

RunView::RunView(std::ostream& out, std::ostream& err, RunViewOptions options)
    : out_(out), err_(err), options_(options), doing_("connecting") {}

void RunView::Waiting(std::string_view what) {
  absl::MutexLock lock(&mu_);
  if (last_sequence_ == 0) doing_ = std::string(what);
}

void RunView::Header(std::string_view run_id) {
  absl::MutexLock lock(&mu_);
  if (options_.json) return;
  ClearStatusLocked();
  out_ << "watching run " << Styled(kBold, run_id) << "\n";
  if (options_.live && last_now_ != absl::InfinitePast()) DrawStatusLocked(last_now_);
  out_.flush();
}

void RunView::Event(const RunEvent& event) {
  absl::MutexLock lock(&mu_);
  if (ended_ || event.sequence() <= last_sequence_) return;
  last_sequence_ = event.sequence();
  if (start_ == absl::InfinitePast()) {
    start_ = ToTime(event.time());
    first_sequence_ = event.sequence();
  }
  if (options_.json) {
    out_ << ToJsonLine(event);
    out_.flush();
    switch (event.event_case()) {
      case RunEvent::kSucceeded:
        succeeded_ = true;
        [[fallthrough]];
      case RunEvent::kFailed:
      case RunEvent::kCancelled:
        ended_ = true;
        break;
      default:
        break;
    }
    return;
  }
  const auto& time = event.time();
  switch (event.event_case()) {
    case RunEvent::kQueued:
      doing_ = "queued";
      LineLocked(time, 0, "queued");
      break;
    case RunEvent::kStarted:
      doing_ = absl::StrCat("started (attempt ", event.started().attempt(), ")");
      LineLocked(time, 0, doing_);
      break;
    case RunEvent::kIterationStarted:
      iteration_ = event.iteration_started().iteration();
      doing_ = absl::StrCat("iteration ", iteration_, ": the model is thinking");
      LineLocked(time, 0, Styled(kBold, absl::StrCat("iteration ", iteration_)));
      break;
    case RunEvent::kModelOutput:
      LineLocked(
          time, 2,
          absl::StrCat(Styled(kDim, "model: "), FirstLine(event.model_output().text(), 100)));
      break;
    case RunEvent::kToolCall: {
      const auto& call = event.tool_call();
      const std::string summary = SummarizeToolCall(call.tool(), call.arguments_json());
      doing_ =
          absl::StrCat("iteration ", iteration_, ": ", FirstLine(call.tool(), 40), " ", summary);
      LineLocked(time, 2,
                 absl::StrCat(Styled(kDim, "call "), FirstLine(call.tool(), 40), ": ", summary));
      break;
    }
    case RunEvent::kToolResult: {
      const auto& result = event.tool_result();
      doing_ = absl::StrCat("iteration ", iteration_, ": the model is thinking");
      const std::string exit = absl::StrCat("exit ", result.exit_code());
      LineLocked(time, 2,
                 absl::StrCat(Styled(kDim, "result "), FirstLine(result.tool(), 40), " (",
                              result.exit_code() == 0 ? exit : Styled(kRed, exit),
                              "): ", SummarizeToolOutput(result.tool(), result.output()),
                              result.truncated() ? " [output truncated]" : ""));
      break;
    }
    case RunEvent::kFilesChanged:
      LineLocked(
          time, 2,
          absl::StrCat(
              Styled(kDim, "files changed: "),
              Cut(Printable(absl::StrJoin(event.files_changed().paths(), ", "), false), 200)));
      break;
    case RunEvent::kIterationFinished:
      // The next line (an iteration starting, or the outcome) says as much.
      break;
    case RunEvent::kRetrying: {
      const auto& retrying = event.retrying();
      const absl::Duration delay = ToDuration(retrying.delay());
      doing_ = absl::StrCat("retrying in ", Delay(delay), " (attempt ", retrying.attempt(), ")");
      LineLocked(
          time, 0,
          Styled(kYellow, absl::StrCat("retrying (attempt ", retrying.attempt(), ") in ",
                                       Delay(delay), ": ", FirstLine(retrying.reason(), 160))));
      break;
    }
    case RunEvent::kSucceeded: {
      const auto& done = event.succeeded();
      ended_ = succeeded_ = true;
      std::string text = absl::StrCat(Styled(kGreen, "succeeded"), ": ",
                                      FirstLine(done.title(), 200), HowLong(ToTime(time)), "\n");
      const std::string response = Printable(absl::StripAsciiWhitespace(done.response()), true);
      if (!response.empty()) {
        for (absl::string_view line : absl::StrSplit(response, '\n'))
          absl::StrAppend(&text, "  ", line, "\n");
      }
      if (!done.sandbox_url().empty()) {
        absl::StrAppend(&text, Styled(kBold, "preview: "),
                        Styled(kUrl, Printable(done.sandbox_url(), false)), "\n");
      }
      OutcomeLocked(text);
      break;
    }
    case RunEvent::kFailed: {
      ended_ = true;
      OutcomeLocked(FailedText(event.failed().error(), HowLong(ToTime(time))));
      break;
    }
    case RunEvent::kCancelled: {
      ended_ = true;
      OutcomeLocked(absl::StrCat(Styled(kRed, "cancelled"), HowLong(ToTime(time)), "\n"));
      break;
    }
    case RunEvent::EVENT_NOT_SET:
      // An event kind added after this build: its sequence counts, there is nothing to show.
      break;
  }
}

void RunView::FinishFrom(const Run& run) {
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  if (run.state() != Run::STATE_SUCCEEDED && run.state() != Run::STATE_FAILED &&
      run.state() != Run::STATE_CANCELLED) {
    return;
  }
  ended_ = true;
  succeeded_ = run.state() == Run::STATE_SUCCEEDED;
  if (options_.json) return;
  iteration_ = std::max(iteration_, run.iteration());
  std::optional<absl::Duration> took;
  if (run.has_create_time() && run.has_end_time()) {
    took = std::max(absl::ZeroDuration(), ToTime(run.end_time()) - ToTime(run.create_time()));
  }
  const std::string how = HowLongText(iteration_, took);
  std::string text;
  if (succeeded_) {
    text = absl::StrCat(Styled(kGreen, "succeeded"), how, "\n");
    if (!run.sandbox_url().empty()) {
      absl::StrAppend(&text, Styled(kBold, "preview: "),
                      Styled(kUrl, Printable(run.sandbox_url(), false)), "\n");
    }
  } else if (run.state() == Run::STATE_FAILED) {
    text = FailedText(run.error(), how);
  } else {
    text = absl::StrCat(Styled(kRed, "cancelled"), how, "\n");
  }
  OutcomeLocked(text);
}

void RunView::Tick(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (!options_.live || options_.json || ended_ || closed_) return;
  if (first_tick_ == absl::InfinitePast()) first_tick_ = now;
  last_now_ = now;
  ++frame_;
  DrawStatusLocked(now);
  out_.flush();
}

void RunView::Note(std::string_view text) {
  absl::MutexLock lock(&mu_);
  ClearStatusLocked();
  out_.flush();
  err_ << text << "\n";
  err_.flush();
  if (options_.live && !options_.json && !ended_ && !closed_ && last_now_ != absl::InfinitePast()) {
    DrawStatusLocked(last_now_);
    out_.flush();
  }
}

void RunView::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  ClearStatusLocked();
  out_.flush();
}

bool RunView::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

int RunView::ExitCode() const {
  absl::MutexLock lock(&mu_);
  return succeeded_ ? 0 : 1;
}

int64_t RunView::last_sequence() const {
  absl::MutexLock lock(&mu_);
  return last_sequence_;
}

void RunView::LineLocked(const google::protobuf::Timestamp& time, int indent,
                         const std::string& text) {
  ClearStatusLocked();
  const absl::Duration offset = std::max(absl::ZeroDuration(), ToTime(time) - start_);
  out_ << Styled(kDim, absl::StrFormat("[%6.1fs]", absl::ToDoubleSeconds(offset))) << " "
       << std::string(indent, ' ') << text << "\n";
  if (options_.live && last_now_ != absl::InfinitePast()) DrawStatusLocked(last_now_);
  out_.flush();
}

void RunView::OutcomeLocked(const std::string& text) {
  ClearStatusLocked();
  out_ << "\n" << text;
  out_.flush();
}

std::string RunView::StatusLocked(absl::Time now) const {
  const absl::Time since = start_ != absl::InfinitePast() ? start_ : first_tick_;
  const absl::Duration elapsed = std::max(absl::ZeroDuration(), now - since);
  const std::string text = absl::StrCat(std::string(1, kFrames[frame_ % sizeof(kFrames)]), " ",
                                        Seconds(elapsed), "  ", doing_);
  return Cut(text, static_cast<size_t>(std::max(options_.columns - 1, 10)));
}

void RunView::ClearStatusLocked() {
  if (!status_drawn_) return;
  out_ << kClearLine;
  status_drawn_ = false;
}

void RunView::DrawStatusLocked(absl::Time now) {
  if (!options_.live || options_.json || ended_ || closed_) return;
  out_ << kClearLine << StatusLocked(now);
  status_drawn_ = true;
}

std::string RunView::Styled(std::string_view style, std::string_view text) const {
  if (!options_.live) return std::string(text);
  return absl::StrCat("\033[", common::ToAbsl(style), "m", common::ToAbsl(text), "\033[0m");
}

std::string RunView::HowLong(absl::Time end) const {
  // Only a watch that saw the run's first event knows when it began.
  std::optional<absl::Duration> took;
  if (first_sequence_ == 1) took = std::max(absl::ZeroDuration(), end - start_);
  return HowLongText(iteration_, took);
}

std::string RunView::FailedText(std::string_view error, const std::string& how) const {
  const std::string text = Printable(absl::StripAsciiWhitespace(common::ToAbsl(error)), true);
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  std::string out = absl::StrCat(Styled(kRed, "failed"), ": ", Cut(lines[0], 500), how, "\n");
  for (size_t i = 1; i < lines.size(); ++i) absl::StrAppend(&out, "  ", lines[i], "\n");
  return out;
}

}  // namespace qai::cli
