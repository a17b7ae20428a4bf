#include "tools/orchbench/probe_run.h"

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "services/orchestrator/store/events.h"
#include "tools/orchbench/stamp.h"

namespace qai::orchbench {

namespace events = ::qai::orchestrator::events;

absl::StatusOr<std::unique_ptr<ProbeRun>> ProbeRun::Claim(orchestrator::RunStore* store,
                                                          absl::Duration lease) {
  absl::StatusOr<orchestrator::RunRecord> run = store->Start({.id = common::NewUuid(),
                                                              .project_id = common::NewUuid(),
                                                              .message_id = common::NewUuid(),
                                                              .prompt = "qai-orchbench probe run",
                                                              .max_iterations = 1,
                                                              .queued_event = events::Queued()});
  if (!run.ok()) return run.status();
  absl::StatusOr<std::optional<orchestrator::RunStore::Claimed>> claimed =
      store->Claim("qai-orchbench", lease, [](int attempt) { return events::Started(attempt); });
  if (!claimed.ok()) return claimed.status();
  if (!claimed->has_value())
    return absl::FailedPreconditionError("a worker claimed the probe run first");
  if ((*claimed)->run.id != run->id) {
    absl::Status back = store->Requeue(
        (*claimed)->lease, absl::ZeroDuration(),
        events::Retrying((*claimed)->run.attempt, "claimed by qai-orchbench by mistake",
                         absl::ZeroDuration()));
    return absl::FailedPreconditionError(
        absl::StrCat("another run (", (*claimed)->run.id,
                     ") was queued before the probe run; it went back: ", back.ToString()));
  }
  return std::unique_ptr<ProbeRun>(
      new ProbeRun(store, (*claimed)->lease, lease, (*claimed)->run.last_sequence));
}

absl::StatusOr<ProbeRun::Sent> ProbeRun::Append(int64_t index) {
  Sent sent;
  sent.sent_ns = SteadyNanos();
  orchestrator::v1::RunEvent event;
  event.mutable_model_output()->set_text(StampText(index, sent.sent_ns));
  absl::StatusOr<int64_t> last = store_->Append(lease_, {event.SerializeAsString()});
  sent.committed_ns = SteadyNanos();
  if (!last.ok()) return last.status();
  sent.sequence = last_sequence_ = *last;
  return sent;
}

absl::Status ProbeRun::Heartbeat() { return store_->Heartbeat(lease_, lease_for_).status(); }

absl::Status ProbeRun::End() {
  return store_->Finish(lease_,
                        {.state = orchestrator::kCancelled, .terminal_event = events::Cancelled()});
}

}  // namespace qai::orchbench
