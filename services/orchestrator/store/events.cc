#include "services/orchestrator/store/events.h"

#include "common/proto_time.h"

namespace qai::orchestrator::events {

std::string Queued() {
  v1::RunEvent e;
  e.mutable_queued();
  return e.SerializeAsString();
}

std::string Started(int attempt) {
  v1::RunEvent e;
  e.mutable_started()->set_attempt(attempt);
  return e.SerializeAsString();
}

std::string Retrying(int attempt, const std::string& reason, absl::Duration delay) {
  v1::RunEvent e;
  auto* r = e.mutable_retrying();
  r->set_attempt(attempt);
  r->set_reason(reason);
  common::SetDuration(delay, r->mutable_delay());
  return e.SerializeAsString();
}

std::string Succeeded(const std::string& title, const std::string& response,
                      const std::string& summary, const std::string& sandbox_url,
                      const std::string& message_id, int version) {
  v1::RunEvent e;
  auto* s = e.mutable_succeeded();
  s->set_title(title);
  s->set_response(response);
  s->set_summary(summary);
  s->set_sandbox_url(sandbox_url);
  s->set_message_id(message_id);
  s->set_version(version);
  return e.SerializeAsString();
}

std::string Failed(const std::string& error) {
  v1::RunEvent e;
  e.mutable_failed()->set_error(error);
  return e.SerializeAsString();
}

std::string Cancelled() {
  v1::RunEvent e;
  e.mutable_cancelled();
  return e.SerializeAsString();
}

bool IsTerminal(const v1::RunEvent& event) {
  return event.has_succeeded() || event.has_failed() || event.has_cancelled();
}

}  // namespace qai::orchestrator::events
