#include "tools/orchbench/idle_watchers.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "tools/orchbench/calls.h"

namespace qai::orchbench {

namespace opb = ::qai::orchestrator::v1;

// Watcher: one stream. gRPC calls its methods on its own threads; the counters are atomics so
// the waiting thread may read them at any time.
class IdleWatchers::Watcher final : public grpc::ClientReadReactor<opb::RunEvent> {
 public:
  Watcher(IdleWatchers* owner, std::string run_id) : owner_(owner), run_id_(std::move(run_id)) {}

  void Start(opb::AgentOrchestrator::Stub& stub, const std::string& token) {
    AsReader(ctx_, token, absl::InfiniteDuration());
    req_.set_run_id(run_id_);
    stub.async()->WatchRun(&ctx_, &req_, this);
    StartRead(&event_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    last_sequence_.store(event_.sequence(), std::memory_order_relaxed);
    events_.fetch_add(1, std::memory_order_relaxed);
    if (event_.has_succeeded() || event_.has_failed() || event_.has_cancelled()) terminal_ = true;
    StartRead(&event_);
  }

  void OnDone(const grpc::Status& status) override {
    done_ = true;
    owner_->Ended(this, status);
  }

  void Cancel() { ctx_.TryCancel(); }

  const std::string& run_id() const { return run_id_; }
  int64_t last_sequence() const { return last_sequence_.load(std::memory_order_relaxed); }
  int64_t events() const { return events_.load(std::memory_order_relaxed); }
  bool terminal() const { return terminal_; }
  bool done() const { return done_; }

 private:
  IdleWatchers* const owner_;
  const std::string run_id_;
  grpc::ClientContext ctx_;
  opb::WatchRunRequest req_;
  opb::RunEvent event_;
  std::atomic<int64_t> last_sequence_{0};
  std::atomic<int64_t> events_{0};
  std::atomic<bool> terminal_{false};
  std::atomic<bool> done_{false};
};

IdleWatchers::IdleWatchers(std::vector<std::shared_ptr<grpc::Channel>> channels, std::string token)
    : channels_(std::move(channels)), token_(std::move(token)) {
  for (const auto& channel : channels_) stubs_.push_back(opb::AgentOrchestrator::NewStub(channel));
}

IdleWatchers::~IdleWatchers() {
  {
    absl::MutexLock lock(&mu_);
    for (auto& w : watchers_) {
      if (!w->done()) w->Cancel();
    }
  }
  // The reactors must outlive their calls.
  (void)WaitUntilEnded(absl::InfiniteDuration());
}

void IdleWatchers::Open(const std::vector<std::string>& run_ids, int count) {
  if (run_ids.empty()) return;
  for (int i = 0; i < count; ++i) {
    Watcher* w = nullptr;
    size_t index = 0;
    {
      absl::MutexLock lock(&mu_);
      index = watchers_.size();
      watchers_.push_back(std::make_unique<Watcher>(this, run_ids[index % run_ids.size()]));
      w = watchers_.back().get();
    }
    w->Start(*stubs_[index % stubs_.size()], token_);
  }
}

void IdleWatchers::Ended(Watcher* watcher, const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    ++ended_;
    if (status.ok()) {
      ++ended_ok_;
    } else if (first_error_.empty()) {
      first_error_ = absl::StrCat("code ", static_cast<int>(status.error_code()), ": ",
                                  status.error_message());
    }
  }
  ended_cv_.SignalAll();
}

bool IdleWatchers::WaitUntilCaughtUp(const std::map<std::string, int64_t>& last_sequences,
                                     absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  for (;;) {
    bool all = true;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& w : watchers_) {
        auto it = last_sequences.find(w->run_id());
        if (!w->done() && it != last_sequences.end() && w->last_sequence() < it->second) {
          all = false;
          break;
        }
      }
    }
    if (all) return true;
    if (absl::Now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool IdleWatchers::WaitUntilEnded(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  // An infinite timeout makes an infinite deadline, which WaitWithDeadline never reaches.
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  while (ended_ != static_cast<int>(watchers_.size()) && !timed_out)
    timed_out = ended_cv_.WaitWithDeadline(&mu_, deadline);
  return ended_ == static_cast<int>(watchers_.size());
}

IdleWatchers::Counts IdleWatchers::counts() const {
  absl::MutexLock lock(&mu_);
  Counts c{.opened = static_cast<int>(watchers_.size()),
           .ended = ended_,
           .ended_ok = ended_ok_,
           .first_error = first_error_};
  for (const auto& w : watchers_) {
    c.saw_terminal += w->terminal() ? 1 : 0;
    c.events += w->events();
  }
  return c;
}

}  // namespace qai::orchbench
