#include "services/orchestrator/runs/run_metrics.h"

#include <chrono>

#include "absl/status/status.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace qai::orchestrator {

// InstrumentedModel: passes every call on and counts it.
class RunMetrics::InstrumentedModel : public Model {
 public:
  InstrumentedModel(RunMetrics* metrics, Model* inner)
      : metrics_(metrics),
        inner_(inner),
        provider_(inner->name()),
        prompt_tokens_(metrics->prompt_tokens_.Add({{"provider", provider_}})),
        completion_tokens_(metrics->completion_tokens_.Add({{"provider", provider_}})) {}

  std::string name() const override { return inner_->name(); }
  [[nodiscard]] absl::StatusOr<ModelReply> Complete(const std::vector<ChatMessage>& conversation,
                                                    const std::vector<ToolSpec>& tools) override {
    const auto start = std::chrono::steady_clock::now();
    return Count(start, inner_->Complete(conversation, tools));
  }
  [[nodiscard]] absl::StatusOr<ModelReply> Stream(const std::vector<ChatMessage>& conversation,
                                                  const std::vector<ToolSpec>& tools,
                                                  ModelObserver& observer) override {
    const auto start = std::chrono::steady_clock::now();
    return Count(start, inner_->Stream(conversation, tools, observer));
  }
  // ForModel: the inner provider's model of that name, counted the same way.
  [[nodiscard]] std::unique_ptr<Model> ForModel(const std::string& model) const override {
    std::unique_ptr<Model> chosen = inner_->ForModel(model);
    if (chosen == nullptr) return nullptr;
    auto counted = std::make_unique<InstrumentedModel>(metrics_, chosen.get());
    counted->owned_ = std::move(chosen);
    return counted;
  }

 private:
  absl::StatusOr<ModelReply> Count(std::chrono::steady_clock::time_point start,
                                   absl::StatusOr<ModelReply> reply) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics_->model_calls_
        .Add(
            {{"provider", provider_}, {"outcome", absl::StatusCodeToString(reply.status().code())}},
            common::LatencyBuckets())
        .Observe(seconds);
    if (reply.ok()) {
      prompt_tokens_.Increment(static_cast<double>(reply->usage.prompt_tokens));
      completion_tokens_.Increment(static_cast<double>(reply->usage.completion_tokens));
    }
    return reply;
  }

  RunMetrics* const metrics_;
  std::unique_ptr<Model> owned_;  // the inner model, when ForModel made it
  Model* const inner_;
  const std::string provider_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& completion_tokens_;
};

RunMetrics::RunMetrics(common::Metrics& metrics, RunStore* store, EventHub* hub,
                       absl::Duration queue_interval)
    : store_(store),
      runs_(prometheus::BuildGauge()
                .Name("qai_runs")
                .Help("Runs queued or running now, on every replica (read periodically).")
                .Register(metrics.registry())),
      queued_(runs_.Add({{"state", "queued"}})),
      running_(runs_.Add({{"state", "running"}})),
      queue_depth_(prometheus::BuildGauge()
                       .Name("qai_run_queue_depth")
                       .Help("Queued runs that are due now (not waiting out a retry's backoff).")
                       .Register(metrics.registry())
                       .Add({})),
      finished_(prometheus::BuildCounter()
                    .Name("qai_runs_finished_total")
                    .Help("Runs this replica's workers ended, by final state.")
                    .Register(metrics.registry())),
      claim_(prometheus::BuildHistogram()
                 .Name("qai_run_claim_seconds")
                 .Help("Time of one claim of the next due run, by result (claimed, empty, error).")
                 .Register(metrics.registry())),
      watchers_(prometheus::BuildGauge()
                    .Name("qai_watchers")
                    .Help("Open WatchRun streams following live events on this replica.")
                    .Register(metrics.registry())
                    .Add({})),
      model_calls_(
          prometheus::BuildHistogram()
              .Name("qai_model_call_seconds")
              .Help("Model calls (retries inside a call included), by provider and outcome.")
              .Register(metrics.registry())),
      prompt_tokens_(prometheus::BuildCounter()
                         .Name("qai_model_prompt_tokens_total")
                         .Help("Prompt tokens the model provider reported.")
                         .Register(metrics.registry())),
      completion_tokens_(prometheus::BuildCounter()
                             .Name("qai_model_completion_tokens_total")
                             .Help("Completion tokens the model provider reported.")
                             .Register(metrics.registry())) {
  for (const char* state : {"succeeded", "failed", "cancelled"}) finished_.Add({{"state", state}});
  for (const char* result : {"claimed", "empty", "error"})
    claim_.Add({{"result", result}}, common::LatencyBuckets());
  watchers_hook_ =
      metrics.OnScrape([this, hub] { watchers_.Set(static_cast<double>(hub->subscriptions())); });
  queue_hook_ = metrics.Every(queue_interval, [this] {
    if (absl::Status s = RefreshQueue(); !s.ok()) {
      common::Log(common::LogLevel::kDebug, "cannot count runs",
                  {{"error", std::string(s.message())}});
    }
  });
}

void RunMetrics::ObservedClaim(absl::Duration took,
                               const absl::StatusOr<std::optional<RunStore::Claimed>>& claimed) {
  const char* result = !claimed.ok() ? "error" : claimed->has_value() ? "claimed" : "empty";
  claim_.Add({{"result", result}}, common::LatencyBuckets()).Observe(absl::ToDoubleSeconds(took));
}

void RunMetrics::RunFinished(int state) {
  const char* name = state == kSucceeded   ? "succeeded"
                     : state == kCancelled ? "cancelled"
                                           : "failed";
  finished_.Add({{"state", name}}).Increment();
}

std::unique_ptr<Model> RunMetrics::Instrument(Model* inner) {
  return std::make_unique<InstrumentedModel>(this, inner);
}

absl::Status RunMetrics::RefreshQueue() {
  QAI_ASSIGN_OR_RETURN(RunStore::QueueCounts counts, store_->CountQueue());
  queued_.Set(static_cast<double>(counts.queued));
  running_.Set(static_cast<double>(counts.running));
  queue_depth_.Set(static_cast<double>(counts.due));
  return absl::OkStatus();
}

}  // namespace qai::orchestrator
