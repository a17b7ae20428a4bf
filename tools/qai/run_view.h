#pragma once
// RunView: how `qai watch` shows an agent run's progress. It is fed RunEvents (from WatchRun)
// and writes, per event that matters, one line: an iteration starting, a tool call with a
// short summary of its arguments (the command, the file paths), a tool's result with its exit
// code and first line of output, the files changed, the model's first line, a retry with its
// reason and delay. A terminal event prints the outcome: the title, the response and the
// preview URL, or the error, or that the run was cancelled.
//
// On a terminal (`live`), a status line under the events shows a spinner, the elapsed time and
// what the run is doing; it is redrawn in place (`\r` and ANSI clear-line) by Tick and by each
// event. Anywhere else the output is plain lines, one per event, so logs and tests stay clean.
// With `json` every event is one protobuf-JSON line and nothing else is printed.
//
//   RunView view(out, err, {.live = terminal.tty, .columns = terminal.columns});
//   while (reader->Read(&event)) view.Event(event);   // Tick(absl::Now()) from a timer thread
//   return view.ExitCode();
//
// Every method may be called from any thread.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"

namespace qai::cli {

// RunViewOptions: where and how a RunView prints.
struct RunViewOptions {
  // Each event as a protobuf-JSON line, nothing else.
  bool json = false;
  // Standard output is a terminal: keep a status line redrawn in place, and use colour.
  bool live = false;
  // The terminal's width; the status line is cut to fit it.
  int columns = 80;
};

// SummarizeToolCall: the part of a tool call a person wants to see: the command of
// `terminal`, the paths of `createOrUpdateFiles` and `readFiles`, else the arguments as they
// are. Arguments cut short by the server's cap (not valid JSON any more) are summarised from
// what is there. At most `max_chars` characters.
std::string SummarizeToolCall(std::string_view tool, std::string_view arguments_json,
                              size_t max_chars = 100);

// SummarizeToolOutput: the first non-empty line of a tool's output, or for `readFiles` (a JSON
// list of files) each path with its size or error; at most `max_chars` characters.
std::string SummarizeToolOutput(std::string_view tool, std::string_view output,
                                size_t max_chars = 100);

// FirstLine: the first non-blank line of `text`, trimmed, cut to `max_chars` characters (UTF-8
// aware) with "..." when cut.
std::string FirstLine(std::string_view text, size_t max_chars);

class RunView {
 public:
  RunView(std::ostream& out, std::ostream& err, RunViewOptions options);

  RunView(const RunView&) = delete;
  RunView& operator=(const RunView&) = delete;

  // Waiting: the status line's text before the first event (e.g. "waiting for the run").
  void Waiting(std::string_view what);

  // Header: a line naming the run about to be watched (not with json).
  void Header(std::string_view run_id);

  // Event: shows one event. Events at or below the last sequence shown are ignored, so a
  // replay after a reconnect never prints anything twice.
  void Event(const qai::orchestrator::v1::RunEvent& event);

  // Tick: redraws the status line for `now` (live only; otherwise nothing).
  void Tick(absl::Time now);

  // Note: a line about the watch itself (e.g. a reconnect), on `err`; live, the status line is
  // cleared first and drawn again after it.
  void Note(std::string_view text);

  // FinishFrom: the outcome as `run` tells it, for a stream that ended without a terminal event
  // because the run had ended before the watch began (after its last sequence).
  void FinishFrom(const qai::orchestrator::v1::Run& run);

  // Close: removes the status line for good (later ticks draw nothing); call before anything
  // else is written to `out` or `err`.
  void Close();

  // ended: whether the outcome was shown. ExitCode: 0 for a success, 1 otherwise (failed,
  // cancelled, or not ended).
  bool ended() const;
  int ExitCode() const;
  // last_sequence: the newest event shown (0 for none): where a reconnect resumes.
  int64_t last_sequence() const;

 private:
  // Line: an event line (time offset, indentation, text); live, around the status line.
  void LineLocked(const google::protobuf::Timestamp& time, int indent, const std::string& text)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OutcomeLocked(const std::string& text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string StatusLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearStatusLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DrawStatusLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Styled(std::string_view style, std::string_view text) const;
  // HowLong: " (N iterations, 8.4s)" for a run that ended at `end`; without the time when the
  // watch did not see the run begin.
  std::string HowLong(absl::Time end) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // FailedText: "failed: ERROR (how)" and the error's later lines, indented.
  std::string FailedText(std::string_view error, const std::string& how) const;

  mutable absl::Mutex mu_;
  std::ostream& out_ ABSL_GUARDED_BY(mu_);
  std::ostream& err_ ABSL_GUARDED_BY(mu_);
  const RunViewOptions options_;

  int64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // Server time and sequence of the first event shown; event lines show their offset from it.
  absl::Time start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t first_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // Local time of the first Tick: the status line's clock before any event.
  absl::Time first_tick_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int iteration_ ABSL_GUARDED_BY(mu_) = 0;
  // What the status line says the run is doing.
  std::string doing_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool succeeded_ ABSL_GUARDED_BY(mu_) = false;
  bool status_drawn_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_now_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int frame_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace qai::cli
