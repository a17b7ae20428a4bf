#include "services/orchestrator/agent/model_events.h"

#include <gtest/gtest.h>

#include <thread>

#include "absl/time/clock.h"

namespace qai::orchestrator {
namespace {

class ModelEventsTest : public ::testing::Test {
 protected:
  ModelEvents Make(size_t max_text_bytes = 1000) {
    return ModelEvents(
        [this](std::vector<v1::RunEvent> events) {
          ++reports_;
          for (auto& e : events) events_.push_back(std::move(e));
          return report_status_;
        },
        [this] { return cancelled_; }, max_text_bytes);
  }
  std::vector<std::string> Texts() const {
    std::vector<std::string> out;
    for (const auto& e : events_) {
      if (e.has_model_output()) out.push_back(e.model_output().text());
    }
    return out;
  }

  std::vector<v1::RunEvent> events_;
  int reports_ = 0;
  absl::Status report_status_;
  bool cancelled_ = false;
};

TEST_F(ModelEventsTest, TheFirstTextGoesAtOnceTheRestInPacedBatches) {
  ModelEvents events = Make();
  events.OnDelta("Hel");
  EXPECT_EQ(Texts(), std::vector<std::string>{"Hel"});  // at once
  events.OnDelta("lo");
  events.OnDelta("");
  events.OnDelta(" wor");
  EXPECT_EQ(Texts().size(), 1u);  // held back: a token per event would be an event per token
  std::this_thread::sleep_for(absl::ToChronoMilliseconds(ModelEvents::kFlushInterval));
  events.OnDelta("");  // the stream's clock: a piece without text
  EXPECT_EQ(Texts(), (std::vector<std::string>{"Hel", "lo wor"}));
  events.OnDelta("ld");
  ASSERT_TRUE(events.Finish().ok());
  EXPECT_EQ(Texts(), (std::vector<std::string>{"Hel", "lo wor", "ld"}));
}

TEST_F(ModelEventsTest, ALotOfTextGoesWithoutWaiting) {
  ModelEvents events = Make(1 << 20);
  events.OnDelta("a");
  events.OnDelta(std::string(ModelEvents::kFlushBytes, 'b'));
  EXPECT_EQ(Texts().size(), 2u);
}

TEST_F(ModelEventsTest, TextIsCappedPerReplyAndARetryStartsAfresh) {
  ModelEvents events = Make(10);
  events.OnDelta("0123456");
  events.OnDelta("789abcdef");
  events.OnRetry(1, "model endpoint: HTTP 500: boom", absl::Seconds(2));
  events.OnDelta("again");
  ASSERT_TRUE(events.Finish().ok());
  ASSERT_EQ(events_.size(), 4u);
  EXPECT_EQ(events_[0].model_output().text(), "0123456");
  EXPECT_EQ(events_[1].model_output().text(), "789");  // flushed before the retry, cut at 10 bytes
  ASSERT_TRUE(events_[2].has_retrying());
  EXPECT_EQ(events_[2].retrying().attempt(), 1);
  EXPECT_EQ(events_[2].retrying().reason(), "model endp");  // reasons are capped too
  EXPECT_EQ(events_[2].retrying().delay().seconds(), 2);
  EXPECT_EQ(events_[3].model_output().text(), "again");
}

TEST_F(ModelEventsTest, AFailedReportStopsTheCall) {
  ModelEvents events = Make();
  EXPECT_FALSE(events.Cancelled());
  cancelled_ = true;
  EXPECT_TRUE(events.Cancelled());
  cancelled_ = false;
  report_status_ = absl::FailedPreconditionError("lease lost");
  events.OnDelta("a");
  EXPECT_TRUE(events.Cancelled());
  events.OnRetry(1, "x", absl::ZeroDuration());
  EXPECT_EQ(reports_, 1);  // nothing more once a report failed
  EXPECT_EQ(events.Finish().code(), absl::StatusCode::kFailedPrecondition);
}

// A provider with only Complete(): its text arrives as one delta, so one event, as before.
class WholeModel : public Model {
 public:
  std::string name() const override { return "whole"; }
  absl::StatusOr<ModelReply> Complete(const std::vector<ChatMessage>&,
                                      const std::vector<ToolSpec>&) override {
    return ModelReply{.text = "all at once"};
  }
};

TEST_F(ModelEventsTest, AProviderThatDoesNotStreamMakesOneEvent) {
  WholeModel model;
  ModelEvents events = Make();
  auto reply = model.Stream({}, {}, events);
  ASSERT_TRUE(reply.ok());
  ASSERT_TRUE(events.Finish().ok());
  EXPECT_EQ(Texts(), std::vector<std::string>{"all at once"});
}

}  // namespace
}  // namespace qai::orchestrator
