#include "services/orchestrator/agent/model_events.h"

#include "absl/time/clock.h"
#include "common/utf8.h"
#include "services/orchestrator/store/events.h"

namespace qai::orchestrator {
using common::ToValidUtf8;
using common::TruncateUtf8;

ModelEvents::ModelEvents(Report report, std::function<bool()> cancelled, size_t max_text_bytes)
    : report_(std::move(report)),
      cancelled_(std::move(cancelled)),
      max_text_bytes_(max_text_bytes) {}

void ModelEvents::OnDelta(std::string_view text) {
  if (cut_) return;
  pending_.append(text);
  if (pending_.empty()) return;
  if (pending_.size() >= kFlushBytes || absl::Now() - last_flush_ >= kFlushInterval) Flush();
}

void ModelEvents::OnRetry(int attempt, std::string_view reason, absl::Duration delay) {
  Flush();
  v1::RunEvent e;
  e.ParseFromString(events::Retrying(attempt, TruncateUtf8(reason, max_text_bytes_), delay));
  Send(std::move(e));
  shown_ = 0;
  cut_ = false;
  last_flush_ = absl::InfinitePast();
}

bool ModelEvents::Cancelled() { return !status_.ok() || cancelled_(); }

absl::Status ModelEvents::Finish() {
  Flush();
  return status_;
}

void ModelEvents::Flush() {
  last_flush_ = absl::Now();
  if (pending_.empty()) return;
  v1::RunEvent e;
  e.mutable_model_output()->set_text(TruncateUtf8(pending_, max_text_bytes_ - shown_, &cut_));
  pending_.clear();
  shown_ += e.model_output().text().size();
  if (!e.model_output().text().empty()) Send(std::move(e));
}

void ModelEvents::Send(v1::RunEvent event) {
  if (!status_.ok()) return;
  std::vector<v1::RunEvent> events;
  events.push_back(std::move(event));
  status_ = report_(std::move(events));
}

}  // namespace qai::orchestrator
