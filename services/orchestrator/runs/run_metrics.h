#pragma once
// RunMetrics: the orchestrator's own metrics, next to the ones every service has.
//
//   qai_runs{state="queued"|"running"}        runs in each active state, every replica's
//   qai_run_queue_depth                        queued runs that are due (not waiting out a backoff)
//   qai_runs_finished_total{state}             runs this replica's workers ended (succeeded,
//   failed, cancelled) qai_run_claim_seconds{result}              RunStore::Claim calls (claimed,
//   empty, error) qai_watchers                               open WatchRun subscriptions on this
//   replica qai_model_call_seconds{provider, outcome}  model calls (outcome: the status code, OK,
//   UNAVAILABLE, ...) qai_model_prompt_tokens_total{provider},
//   qai_model_completion_tokens_total{provider}
//
// The run counts are a query (RunStore::CountQueue), read every `queue_interval` on the
// metrics thread while /metrics is served; the watchers are read at each scrape.
//
//   RunMetrics run_metrics(*base->metrics(), &store, &hub);
//   std::unique_ptr<Model> model = run_metrics.Instrument(provider.get());
//   WorkerOptions{..., .metrics = &run_metrics};

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "services/orchestrator/model/model.h"
#include "services/orchestrator/store/run_store.h"
#include "services/orchestrator/stream/event_hub.h"

namespace qai::orchestrator {

class RunMetrics {
 public:
  // `metrics`, `store` and `hub` must outlive this object.
  RunMetrics(common::Metrics& metrics, RunStore* store, EventHub* hub,
             absl::Duration queue_interval = absl::Seconds(5));

  // ObservedClaim: one Claim call took `took` and claimed a run, found none, or failed.
  void ObservedClaim(absl::Duration took,
                     const absl::StatusOr<std::optional<RunStore::Claimed>>& claimed);
  // RunFinished: this replica ended a run in `state` (kSucceeded, kFailed or kCancelled); a
  // success counts when its worker posts the result.
  void RunFinished(int state);
  // Instrument: `inner` (which must outlive the result) with each call's latency, outcome and
  // tokens counted under its name() as the provider.
  std::unique_ptr<Model> Instrument(Model* inner);

  // RefreshQueue: reads the run counts now (what the metrics thread does periodically).
  [[nodiscard]] absl::Status RefreshQueue();

 private:
  class InstrumentedModel;

  RunStore* const store_;
  prometheus::Family<prometheus::Gauge>& runs_;
  prometheus::Gauge& queued_;
  prometheus::Gauge& running_;
  prometheus::Gauge& queue_depth_;
  prometheus::Family<prometheus::Counter>& finished_;
  prometheus::Family<prometheus::Histogram>& claim_;
  prometheus::Gauge& watchers_;
  prometheus::Family<prometheus::Histogram>& model_calls_;
  prometheus::Family<prometheus::Counter>& prompt_tokens_;
  prometheus::Family<prometheus::Counter>& completion_tokens_;
  common::Metrics::Hook watchers_hook_;
  common::Metrics::Hook queue_hook_;
};

}  // namespace qai::orchestrator
