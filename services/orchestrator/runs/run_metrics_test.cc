#include "services/orchestrator/runs/run_metrics.h"

#include <gtest/gtest.h>

#include "common/ids.h"
#include "tests/support/pg_server.h"
#include "tests/support/scrape.h"

namespace qai::orchestrator {
namespace {

using testing::SampleValue;

// A model that answers with fixed usage, or fails.
class FixedModel : public Model {
 public:
  std::string name() const override { return "fixed"; }
  absl::StatusOr<ModelReply> Complete(const std::vector<ChatMessage>&,
                                      const std::vector<ToolSpec>&) override {
    if (!fail)
      return ModelReply{.text = "hi", .usage = {.prompt_tokens = 100, .completion_tokens = 7}};
    return absl::UnavailableError("provider down");
  }
  bool fail = false;
};

class RunMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool = common::DbPool::Create(
        {.url = qai::testing::PgServer::Shared().CreateDatabase(), .size = 4});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    store_ = std::make_unique<RunStore>(pool_.get());
    hub_ = std::make_unique<EventHub>(store_.get(), EventHub::Options{});
    auto metrics = common::Metrics::Create("");
    ASSERT_TRUE(metrics.ok());
    metrics_ = std::move(*metrics);
    run_metrics_ = std::make_unique<RunMetrics>(*metrics_, store_.get(), hub_.get());
  }

  RunRecord MustStart(const std::string& project) {
    auto r = store_->Start({.id = common::NewUuid(),
                            .project_id = project,
                            .message_id = common::NewUuid(),
                            .prompt = "Build a site",
                            .max_iterations = 5,
                            .queued_event = "queued"});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(RunRecord{});
  }

  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<RunStore> store_;
  std::unique_ptr<EventHub> hub_;
  std::unique_ptr<common::Metrics> metrics_;
  std::unique_ptr<RunMetrics> run_metrics_;
};

TEST_F(RunMetricsTest, CountsModelCallsByOutcomeAndTheirTokens) {
  FixedModel provider;
  std::unique_ptr<Model> model = run_metrics_->Instrument(&provider);
  EXPECT_EQ(model->name(), "fixed");
  ASSERT_TRUE(model->Complete({}, {}).ok());
  ASSERT_TRUE(model->Complete({}, {}).ok());
  provider.fail = true;
  EXPECT_EQ(model->Complete({}, {}).status().code(), absl::StatusCode::kUnavailable);

  const std::string text = metrics_->Render();
  EXPECT_EQ(
      SampleValue(text, "qai_model_call_seconds_count", {{"provider", "fixed"}, {"outcome", "OK"}}),
      2);
  EXPECT_EQ(SampleValue(text, "qai_model_call_seconds_count",
                        {{"provider", "fixed"}, {"outcome", "UNAVAILABLE"}}),
            1);
  EXPECT_EQ(SampleValue(text, "qai_model_prompt_tokens_total", {{"provider", "fixed"}}), 200);
  EXPECT_EQ(SampleValue(text, "qai_model_completion_tokens_total", {{"provider", "fixed"}}), 14);
}

TEST_F(RunMetricsTest, CountsTheQueueClaimsFinishedRunsAndWatchers) {
  const std::string project_a = common::NewUuid();
  MustStart(project_a);
  MustStart(project_a);  // behind the first: queued, not claimable until it ends
  MustStart(common::NewUuid());
  const absl::Time start = absl::Now();
  auto claimed = store_->Claim("w1", absl::Seconds(30), [](int) { return std::string("started"); });
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  run_metrics_->ObservedClaim(absl::Now() - start, claimed);
  run_metrics_->ObservedClaim(absl::Milliseconds(1), std::optional<RunStore::Claimed>());
  run_metrics_->RunFinished(kSucceeded);
  run_metrics_->RunFinished(kSucceeded);
  run_metrics_->RunFinished(kCancelled);
  ASSERT_TRUE(run_metrics_->RefreshQueue().ok());
  EventHub::Subscription subscription = hub_->Subscribe((*claimed)->run.id, [](int64_t) {});

  std::string text = metrics_->Render();
  EXPECT_EQ(SampleValue(text, "qai_runs", {{"state", "queued"}}), 2);
  EXPECT_EQ(SampleValue(text, "qai_runs", {{"state", "running"}}), 1);
  EXPECT_EQ(SampleValue(text, "qai_run_queue_depth"), 2);
  EXPECT_EQ(SampleValue(text, "qai_run_claim_seconds_count", {{"result", "claimed"}}), 1);
  EXPECT_EQ(SampleValue(text, "qai_run_claim_seconds_count", {{"result", "empty"}}), 1);
  EXPECT_EQ(SampleValue(text, "qai_run_claim_seconds_count", {{"result", "error"}}), 0);
  EXPECT_EQ(SampleValue(text, "qai_runs_finished_total", {{"state", "succeeded"}}), 2);
  EXPECT_EQ(SampleValue(text, "qai_runs_finished_total", {{"state", "cancelled"}}), 1);
  EXPECT_EQ(SampleValue(text, "qai_runs_finished_total", {{"state", "failed"}}), 0);
  EXPECT_EQ(SampleValue(text, "qai_watchers"), 1);

  hub_->Unsubscribe(subscription);
  EXPECT_EQ(SampleValue(metrics_->Render(), "qai_watchers"), 0);
}

}  // namespace
}  // namespace qai::orchestrator
