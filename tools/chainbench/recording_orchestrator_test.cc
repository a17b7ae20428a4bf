#include "tools/chainbench/recording_orchestrator.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"

namespace qai::chainbench {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
namespace opb = ::qai::orchestrator::v1;

class RecordingOrchestratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = RecordingOrchestrator::Start("127.0.0.1:0");
    ASSERT_TRUE(started.ok()) << started.status();
    orchestrator_ = std::move(*started);
    stub_ = opb::AgentOrchestrator::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", orchestrator_->port()), grpc::InsecureChannelCredentials()));
  }

  grpc::Status StartRun(const std::string& message_id, opb::Run* run,
                        const std::string& prompt = "p") {
    grpc::ClientContext context;
    opb::StartRunRequest request;
    request.set_project_id("project-1");
    request.set_message_id(message_id);
    request.set_prompt(prompt);
    return stub_->StartRun(&context, request, run);
  }

  std::unique_ptr<RecordingOrchestrator> orchestrator_;
  std::unique_ptr<opb::AgentOrchestrator::Stub> stub_;
};

TEST_F(RecordingOrchestratorTest, AnswersARepeatWithTheSameRunAndCountsIt) {
  const auto before = std::chrono::steady_clock::now();
  opb::Run first, again, other;
  ASSERT_TRUE(StartRun("m1", &first, "Build a todo app").ok());
  ASSERT_TRUE(StartRun("m1", &again).ok());
  ASSERT_TRUE(StartRun("m2", &other).ok());
  EXPECT_TRUE(common::IsUuid(first.id())) << "MessageService stores run ids as UUIDs";
  EXPECT_EQ(again.id(), first.id());
  EXPECT_NE(other.id(), first.id());
  EXPECT_EQ(first.message_id(), "m1");
  EXPECT_EQ(first.state(), opb::Run::STATE_QUEUED);

  std::map<std::string, Arrival> arrivals = orchestrator_->Arrivals();
  ASSERT_EQ(arrivals.size(), 2u);
  const Arrival& m1 = arrivals.at("m1");
  EXPECT_EQ(m1.calls, 2);
  EXPECT_EQ(m1.prompt, "Build a todo app") << "the first call's, not the repeat's";
  EXPECT_EQ(m1.project_id, "project-1");
  EXPECT_EQ(m1.run_id, first.id());
  EXPECT_GE(m1.first, before);
  EXPECT_LE(m1.first, arrivals.at("m2").first);
  EXPECT_EQ(arrivals.at("m2").calls, 1);
}

TEST_F(RecordingOrchestratorTest, RefusesAStartRunWithoutMessage) {
  opb::Run run;
  EXPECT_EQ(StartRun("", &run).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(orchestrator_->Arrivals(), IsEmpty());
}

TEST_F(RecordingOrchestratorTest, WaitForReturnsWhenAllArrivedOrNamesTheMissing) {
  std::thread later([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    opb::Run run;
    EXPECT_TRUE(StartRun("m1", &run).ok());
  });
  EXPECT_THAT(orchestrator_->WaitFor({"m1"}, absl::Seconds(10)), IsEmpty());
  later.join();
  const absl::Time start = absl::Now();
  EXPECT_THAT(orchestrator_->WaitFor({"m1", "m9"}, absl::Milliseconds(100)), ElementsAre("m9"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
}

}  // namespace
}  // namespace qai::chainbench
