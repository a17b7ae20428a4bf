#pragma once
// ModelEvents: what the model reports during one Model::Stream() call, as RunEvents while it
// happens: its text as model_output events, each retry as a `retrying` event.
//
//   ModelEvents events(report, cancelled, limits.max_tool_output_chars);
//   absl::StatusOr<ModelReply> reply = model.Stream(conversation, tools, events);
//   if (absl::Status s = events.Finish(); !s.ok()) ... the attempt stops: nothing more to write
//
// Text is batched a little, so a model streaming a token at a time does not cost an event per
// token: the first piece goes out at once, then at most one event per kFlushInterval unless
// kFlushBytes gathered first; Finish() sends the rest. At most max_text_bytes of a reply are
// shown (cut on a character boundary), as for every other event: the model itself keeps all of
// it. A retry's text is a new reply and starts a new allowance.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

class ModelEvents : public ModelObserver {
 public:
  static constexpr absl::Duration kFlushInterval = absl::Milliseconds(250);
  static constexpr size_t kFlushBytes = 4 << 10;

  // Report: stores events; an error (the lease is gone) stops the call and every later report.
  using Report = std::function<absl::Status(std::vector<v1::RunEvent> events)>;
  ModelEvents(Report report, std::function<bool()> cancelled, size_t max_text_bytes);

  void OnDelta(std::string_view text) override;
  void OnRetry(int attempt, std::string_view reason, absl::Duration delay) override;
  // Cancelled: the run was cancelled, or a report failed.
  bool Cancelled() override;
  // Finish: sends the text still held back; the first failed report's status, if any.
  [[nodiscard]] absl::Status Finish();

 private:
  void Flush();
  void Send(v1::RunEvent event);

  const Report report_;
  const std::function<bool()> cancelled_;
  const size_t max_text_bytes_;
  std::string pending_;
  size_t shown_ = 0;  // bytes of this reply's text sent so far
  bool cut_ = false;  // the allowance ran out
  absl::Time last_flush_ = absl::InfinitePast();
  absl::Status status_;
};

}  // namespace qai::orchestrator
