// EventStream and IdleWatchers against a stand-in AgentOrchestrator whose WatchRun replays a
// few events, then idles until the test ends the streams.

#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "tools/orchbench/calls.h"
#include "tools/orchbench/event_stream.h"
#include "tools/orchbench/idle_watchers.h"
#include "tools/orchbench/stamp.h"

namespace qai::orchbench {
namespace {

namespace opb = ::qai::orchestrator::v1;

constexpr int kReplay = 5;
constexpr char kToken[] = "test-token";

class FakeOrchestrator final : public opb::AgentOrchestrator::CallbackService {
 public:
  class Stream final : public grpc::ServerWriteReactor<opb::RunEvent> {
   public:
    Stream(FakeOrchestrator* owner, std::string run_id)
        : owner_(owner), run_id_(std::move(run_id)) {}
    void Next() {
      std::lock_guard lock(mu_);
      WriteLocked();
    }
    void End() {
      std::lock_guard lock(mu_);
      released_ = true;
      WriteLocked();
    }
    void OnWriteDone(bool ok) override {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok || finished_) return;
      if (event_.has_cancelled()) {
        finished_ = true;
        Finish(grpc::Status::OK);
        return;
      }
      WriteLocked();
    }
    void OnCancel() override {
      std::lock_guard lock(mu_);
      if (finished_) return;
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the watcher went away"));
    }
    void OnDone() override {
      owner_->Forget(this);
      delete this;
    }

   private:
    void WriteLocked() {
      if (writing_ || finished_) return;
      if (sent_ < kReplay) {
        event_.Clear();
        event_.set_run_id(run_id_);
        event_.set_sequence(++sent_);
        // The third event is stamped, as the probe run's are.
        if (sent_ == 3) event_.mutable_model_output()->set_text(StampText(3, 42));
        if (sent_ != 3) event_.mutable_iteration_started()->set_iteration(1);
      } else if (released_) {
        event_.Clear();
        event_.set_sequence(++sent_);
        event_.mutable_cancelled();
      } else {
        return;
      }
      writing_ = true;
      StartWrite(&event_);
    }
    FakeOrchestrator* const owner_;
    const std::string run_id_;
    std::mutex mu_;
    opb::RunEvent event_;
    int sent_ = 0;
    bool writing_ = false, released_ = false, finished_ = false;
  };

  grpc::ServerWriteReactor<opb::RunEvent>* WatchRun(grpc::CallbackServerContext* ctx,
                                                    const opb::WatchRunRequest* req) override {
    auto* stream = new Stream(this, req->run_id());
    {
      std::lock_guard lock(mu_);
      auto auth = ctx->client_metadata().find("authorization");
      if (auth == ctx->client_metadata().end() || auth->second != absl::StrCat("Bearer ", kToken))
        ++without_token_;
      streams_.insert(stream);
      ++opened_;
    }
    stream->Next();
    return stream;
  }

  // EndAll: every open stream sends its terminal event and ends.
  void EndAll() {
    std::lock_guard lock(mu_);
    for (Stream* s : streams_) s->End();
  }
  void Forget(Stream* s) {
    std::lock_guard lock(mu_);
    streams_.erase(s);
  }
  int open() {
    std::lock_guard lock(mu_);
    return static_cast<int>(streams_.size());
  }
  int opened() {
    std::lock_guard lock(mu_);
    return opened_;
  }
  int without_token() {
    std::lock_guard lock(mu_);
    return without_token_;
  }

 private:
  std::mutex mu_;
  std::set<Stream*> streams_;
  int opened_ = 0;
  int without_token_ = 0;
};

class WatchClientsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }
  std::string Target() const { return "127.0.0.1:" + std::to_string(port_); }

  FakeOrchestrator service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(WatchClientsTest, IdleWatchersCatchUpIdleAndEnd) {
  IdleWatchers watchers(MakeChannels(Target(), 3), kToken);
  watchers.Open({"run-a", "run-b"}, 30);
  ASSERT_TRUE(
      watchers.WaitUntilCaughtUp({{"run-a", kReplay}, {"run-b", kReplay}}, absl::Seconds(20)));
  IdleWatchers::Counts idle = watchers.counts();
  EXPECT_EQ(idle.opened, 30);
  EXPECT_EQ(idle.ended, 0);
  EXPECT_EQ(idle.events, 30 * kReplay);
  EXPECT_EQ(service_.open(), 30);
  EXPECT_EQ(service_.without_token(), 0);

  service_.EndAll();
  ASSERT_TRUE(watchers.WaitUntilEnded(absl::Seconds(20)));
  IdleWatchers::Counts ended = watchers.counts();
  EXPECT_EQ(ended.ended_ok, 30) << ended.first_error;
  EXPECT_EQ(ended.saw_terminal, 30);
  EXPECT_EQ(ended.events, 30 * (kReplay + 1));
}

TEST_F(WatchClientsTest, IdleWatchersCancelTheirStreamsWhenDestroyed) {
  {
    IdleWatchers watchers(MakeChannels(Target(), 2), kToken);
    watchers.Open({"run-a"}, 10);
    ASSERT_TRUE(watchers.WaitUntilCaughtUp({{"run-a", kReplay}}, absl::Seconds(20)));
  }
  for (int i = 0; i < 200 && service_.open() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(service_.open(), 0);
  EXPECT_EQ(service_.opened(), 10);
}

TEST_F(WatchClientsTest, EventStreamNotesEveryEventAndItsArrival) {
  auto channel = grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials());
  EventStream stream(channel, kToken, "run-a", 0);
  ASSERT_TRUE(
      stream.WaitUntil([](const auto& got) { return got.size() == kReplay; }, absl::Seconds(20)));
  service_.EndAll();
  ASSERT_TRUE(stream.WaitUntil([](const auto& got) { return !got.empty() && got.back().terminal; },
                               absl::Seconds(20)));
  std::vector<EventStream::Received> got = stream.received();
  ASSERT_EQ(got.size(), static_cast<size_t>(kReplay + 1));
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, static_cast<int64_t>(i + 1));
    if (i > 0) {
      EXPECT_GE(got[i].arrival_ns, got[i - 1].arrival_ns);
    }
  }
  std::optional<Stamp> stamp = ParseStamp(got[2].text);
  ASSERT_TRUE(stamp.has_value());
  EXPECT_EQ(stamp->index, 3);
  EXPECT_EQ(stamp->sent_ns, 42);
  EXPECT_TRUE(got.back().terminal);
  for (int i = 0; i < 200 && !stream.status(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(stream.status().has_value());
  EXPECT_TRUE(stream.status()->ok());
}

}  // namespace
}  // namespace qai::orchbench
