// RunChain against an in-process MessageService whose "relay" calls StartRun on the recording
// orchestrator over gRPC: before it replies, after it replies, twice, never, or wrongly.

#include "tools/chainbench/chain_runner.h"

#include <atomic>
#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "gtest/gtest.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"

namespace qai::chainbench {
namespace {

namespace pb = ::qai::messages::v1;
namespace opb = ::qai::orchestrator::v1;

enum class Relay {
  kBeforeReply,  // StartRun arrives before CreateMessage returns: negative differences
  kAfterReply,   // a background relay delivers 20 ms after the message was created
  kTwice,        // every message is delivered twice
  kSkipOne,      // the first message (a warm-up one) is never delivered
  kWrongPrompt,  // the StartRun carries another prompt
};

class RelayingMessages final : public pb::MessageService::Service {
 public:
  static constexpr auto kRelayDelay = std::chrono::milliseconds(20);

  RelayingMessages(Relay relay, int orchestrator_port)
      : relay_(relay),
        orchestrator_(opb::AgentOrchestrator::NewStub(grpc::CreateChannel(
            absl::StrCat("127.0.0.1:", orchestrator_port), grpc::InsecureChannelCredentials()))),
        thread_([this] { Loop(); }) {}
  ~RelayingMessages() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  grpc::Status CreateMessage(grpc::ServerContext* context, const pb::CreateMessageRequest* request,
                             pb::Message* response) override {
    if (context->client_metadata().find("authorization") == context->client_metadata().end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no token");
    }
    if (request->content().find("prompt 3:") != std::string::npos && fail_third_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down for a moment");
    }
    opb::StartRunRequest start;
    start.set_project_id(request->project_id());
    start.set_message_id(common::NewUuid());
    start.set_prompt(relay_ == Relay::kWrongPrompt ? "something else" : request->content());
    response->set_id(start.message_id());
    response->set_content(request->content());
    if (relay_ == Relay::kBeforeReply) {
      Deliver(start);
    } else if (relay_ != Relay::kSkipOne || skipped_.exchange(true)) {
      std::lock_guard lock(mu_);
      queue_.emplace_back(std::chrono::steady_clock::now() + kRelayDelay, start);
      cv_.notify_all();
    }
    return grpc::Status::OK;
  }

  void FailThirdPrompts() { fail_third_ = true; }

  // DeliverExtra: a StartRun for a message nobody created.
  void DeliverExtra() {
    opb::StartRunRequest start;
    start.set_project_id("p");
    start.set_message_id(common::NewUuid());
    Deliver(start);
  }

 private:
  void Deliver(const opb::StartRunRequest& start) {
    for (int i = 0; i < (relay_ == Relay::kTwice ? 2 : 1); ++i) {
      grpc::ClientContext context;
      opb::Run run;
      EXPECT_TRUE(orchestrator_->StartRun(&context, start, &run).ok());
    }
  }

  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      auto [due, start] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      std::this_thread::sleep_until(due);
      Deliver(start);
      lock.lock();
    }
  }

  const Relay relay_;
  std::unique_ptr<opb::AgentOrchestrator::Stub> orchestrator_;
  std::atomic<bool> skipped_{false};
  std::atomic<bool> fail_third_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, opb::StartRunRequest>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

class ChainRunnerTest : public ::testing::Test {
 protected:
  void Start(Relay relay) {
    auto started = RecordingOrchestrator::Start("127.0.0.1:0");
    ASSERT_TRUE(started.ok()) << started.status();
    orchestrator_ = std::move(*started);
    messages_ = std::make_unique<RelayingMessages>(relay, orchestrator_->port());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(messages_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = pb::MessageService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  ChainResult Run(int concurrency = 2, absl::Duration think = absl::ZeroDuration()) {
    return RunChain({.project_id = "p",
                     .token = "tok",
                     .prompts = 20,
                     .concurrency = concurrency,
                     .think = think,
                     .warmup = 3,
                     .arrival_timeout = absl::Milliseconds(500),
                     .linger = absl::Milliseconds(50)},
                    *stub_, *orchestrator_);
  }

  std::unique_ptr<RecordingOrchestrator> orchestrator_;
  std::unique_ptr<RelayingMessages> messages_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<pb::MessageService::Stub> stub_;
};

TEST_F(ChainRunnerTest, StartRunAfterTheReplyIsPositive) {
  Start(Relay::kAfterReply);
  ChainResult r = Run();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.created, 20);
  EXPECT_EQ(r.chain.count, 20);
  EXPECT_EQ(r.create.count, 20);
  EXPECT_EQ(r.chain.negative, 0);
  EXPECT_GT(r.chain.min_ms, 0) << "the relay waits 20 ms; the reply takes less";
  EXPECT_LE(r.chain.p50_ms, r.chain.p99_ms);
  EXPECT_LE(r.chain.p99_ms, r.chain.max_ms);
  EXPECT_EQ(r.duplicates, 0);
  EXPECT_EQ(r.unmatched, 0);
  EXPECT_GT(r.rate, 0);
}

TEST_F(ChainRunnerTest, ThinkTimePacesTheCallers) {
  Start(Relay::kAfterReply);
  ChainResult r = Run(1, absl::Milliseconds(10));
  EXPECT_TRUE(r.ok());
  EXPECT_GE(r.seconds, 0.19) << "20 calls, each followed by 10 ms";
  EXPECT_GT(r.arrival_rate, 0);
  EXPECT_LT(r.arrival_rate, 150) << "StartRuns come no faster than the prompts (at most 100/s)";
}

TEST_F(ChainRunnerTest, StartRunBeforeTheReplyIsNegativeAndKept) {
  Start(Relay::kBeforeReply);
  ChainResult r = Run(1);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.chain.count, 20);
  EXPECT_EQ(r.chain.negative, 20);
  EXPECT_LT(r.chain.max_ms, 0);
  EXPECT_LT(r.chain.mean_ms, 0);
}

TEST_F(ChainRunnerTest, DuplicatesAreCounted) {
  Start(Relay::kTwice);
  ChainResult r = Run();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.duplicates, 23) << "warm-up included";
  EXPECT_EQ(r.chain.count, 20) << "measured from the first arrival";
}

TEST_F(ChainRunnerTest, AStartRunThatNeverComesIsMissing) {
  Start(Relay::kSkipOne);
  ChainResult r = Run();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.missing, 1);
  EXPECT_EQ(r.created, 20);
  EXPECT_EQ(r.chain.count, 20) << "the measured ones all arrived";
}

TEST_F(ChainRunnerTest, FailedCallsWrongPromptsAndStrangersAreCounted) {
  Start(Relay::kWrongPrompt);
  messages_->FailThirdPrompts();
  messages_->DeliverExtra();
  ChainResult r = Run(1);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.errors, 2) << "prompt 3 of the warm-up and of the measured phase";
  EXPECT_EQ(r.created, 19);
  EXPECT_EQ(r.mismatched, 21);
  EXPECT_EQ(r.unmatched, 1);
}

}  // namespace
}  // namespace qai::chainbench
