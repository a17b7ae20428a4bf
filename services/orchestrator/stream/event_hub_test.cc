#include "services/orchestrator/stream/event_hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/pg_listener.h"
#include "tests/support/pg_server.h"

namespace qai::orchestrator {
namespace {

std::string Started(int attempt) { return "started " + std::to_string(attempt); }

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// Latest: what on_new passed last, and how often it ran. Tests declare these before the hub,
// so they outlive the hub's threads.
struct Latest {
  std::atomic<int64_t> last{0};
  std::atomic<int> calls{0};
  std::function<void(int64_t)> Callback() {
    return [this](int64_t sequence) {
      last.store(sequence);
      ++calls;
    };
  }
};

class EventHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::PgServer::Shared().CreateDatabase();
    auto pool = common::DbPool::Create({.url = url_, .size = 8});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    store_ = std::make_unique<RunStore>(pool_.get());
  }

  // A running run (events 1 "queued" and 2 "started 1") and its lease.
  RunStore::Claimed RunningRun() {
    auto run = store_->Start({.id = common::NewUuid(),
                              .project_id = common::NewUuid(),
                              .message_id = common::NewUuid(),
                              .prompt = "p",
                              .queued_event = "queued"});
    EXPECT_TRUE(run.ok()) << run.status();
    auto claimed = store_->Claim("w", absl::Seconds(60), Started);
    EXPECT_TRUE(claimed.ok() && claimed->has_value());
    EXPECT_EQ((*claimed)->run.id, run->id);
    return **claimed;
  }

  // Append: events "e<first>".."e<first+n-1>", announced to `hub` as NOTIFY would.
  int64_t Append(EventHub* hub, const Lease& lease, int first, int n) {
    std::vector<std::string> events;
    for (int i = 0; i < n; ++i) events.push_back(absl::StrCat("e", first + i));
    auto last = store_->Append(lease, events);
    EXPECT_TRUE(last.ok()) << last.status();
    if (hub != nullptr) hub->OnNotify(absl::StrCat(lease.run_id, ":", *last));
    return *last;
  }

  std::vector<std::string> TableTexts(const std::string& run_id) {
    auto events = store_->Events(run_id, 0, 100000);
    EXPECT_TRUE(events.ok()) << events.status();
    std::vector<std::string> out;
    for (const StoredEvent& e : *events) out.push_back(e.event);
    return out;
  }

  std::string url_;
  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<RunStore> store_;
};

// A watcher as WatchRun will be: woken by on_new, it reads from its own position.
struct Watcher {
  std::atomic<int64_t> announced{0};
  std::atomic<int64_t> after{0};  // written by its reader thread only
  std::vector<std::string> seen;
  bool in_order = true;
  EventHub::Subscription subscription = 0;
};

// Wakeup: how on_new wakes the watchers' reader threads.
struct Wakeup {
  std::mutex mu;
  std::condition_variable woken;
  void Notify() {
    std::lock_guard lock(mu);
    woken.notify_all();
  }
  void WaitBriefly() {
    std::unique_lock lock(mu);
    woken.wait_for(lock, std::chrono::milliseconds(20));
  }
};

// Subscribed: a watcher of the run that on_new tells of its news and wakes.
std::unique_ptr<Watcher> Subscribed(EventHub& hub, const std::string& run_id, Wakeup& wakeup) {
  auto watcher = std::make_unique<Watcher>();
  Watcher* w = watcher.get();
  w->subscription = hub.Subscribe(run_id, [w, &wakeup](int64_t last) {
    w->announced.store(last);
    wakeup.Notify();
  });
  return watcher;
}

// ReadNews: what the watcher has not seen yet, 7 events a Read; whether it read any. Every
// watcher first replays what is stored (after = 0), then follows.
bool ReadNews(EventHub& hub, const std::string& run_id, Watcher& w, std::atomic<int>& errors) {
  bool progressed = false;
  while (w.seen.empty() || w.after < w.announced.load()) {
    auto batch = hub.Read(run_id, w.after.load(), 7);
    if (!batch.ok()) {
      ++errors;
      break;
    }
    if (batch->empty()) break;
    for (const StoredEvent& e : *batch) {
      if (e.sequence != w.after.load() + 1) w.in_order = false;
      w.after.store(e.sequence);
      w.seen.push_back(e.event);
    }
    progressed = true;
  }
  return progressed;
}

// WatcherReaders: `threads` reader threads, thread t reading for watchers t, t + threads, ...
// until Stop(), and waiting for a wakeup when none of them had news.
class WatcherReaders {
 public:
  WatcherReaders(EventHub& hub, std::string run_id, std::vector<std::unique_ptr<Watcher>>& watchers,
                 Wakeup& wakeup, int threads)
      : hub_(hub), run_id_(std::move(run_id)), watchers_(watchers), wakeup_(wakeup) {
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, t, threads] { Loop(t, threads); });
  }
  ~WatcherReaders() { Stop(); }

  void Stop() {
    done_ = true;
    wakeup_.Notify();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int read_errors() const { return read_errors_.load(); }

 private:
  void Loop(int t, int threads) {
    while (!done_.load()) {
      bool progressed = false;
      for (size_t i = static_cast<size_t>(t); i < watchers_.size();
           i += static_cast<size_t>(threads)) {
        if (ReadNews(hub_, run_id_, *watchers_[i], read_errors_)) progressed = true;
      }
      if (!progressed) wakeup_.WaitBriefly();
    }
  }

  EventHub& hub_;
  const std::string run_id_;
  std::vector<std::unique_ptr<Watcher>>& watchers_;
  Wakeup& wakeup_;
  std::atomic<bool> done_{false};
  std::atomic<int> read_errors_{0};
  std::vector<std::thread> threads_;
};

bool AllCaughtUp(const std::vector<std::unique_ptr<Watcher>>& watchers, int64_t last) {
  for (const auto& w : watchers) {
    if (w->announced.load() != last || w->after.load() != last) return false;
  }
  return true;
}

TEST_F(EventHubTest, TwoHundredWatchersOfOneRunSeeEveryEventInOrder) {
  constexpr int kWatchers = 200, kThreads = 4;
  std::vector<std::unique_ptr<Watcher>> watchers;
  Wakeup wakeup;
  EventHub hub(store_.get(), {.cached_events_per_run = 64, .read_threads = 2});
  RunStore::Claimed c = RunningRun();
  for (int i = 0; i < kWatchers; ++i) watchers.push_back(Subscribed(hub, c.lease.run_id, wakeup));
  EXPECT_EQ(hub.WatchedRunsForTest(), 1u);
  EXPECT_EQ(hub.subscriptions(), static_cast<size_t>(kWatchers));

  WatcherReaders readers(hub, c.lease.run_id, watchers, wakeup, kThreads);
  // 40 appends of 1 to 3 events, with a pause every 10.
  int64_t last = 0;
  for (int batch = 0, next = 1; batch < 40; ++batch) {
    const int n = 1 + batch % 3;
    last = Append(&hub, c.lease, next, n);
    next += n;
    if (batch % 10 == 0) absl::SleepFor(absl::Milliseconds(20));
  }
  const bool caught_up = WaitUntil([&] { return AllCaughtUp(watchers, last); });
  readers.Stop();
  ASSERT_TRUE(caught_up);
  EXPECT_EQ(readers.read_errors(), 0);
  const std::vector<std::string> all = TableTexts(c.lease.run_id);
  ASSERT_EQ(static_cast<int64_t>(all.size()), last);
  for (int i = 0; i < kWatchers; ++i) {
    EXPECT_TRUE(watchers[i]->in_order) << "watcher " << i;
    EXPECT_EQ(watchers[i]->seen, all) << "watcher " << i;
  }
  for (const auto& w : watchers) hub.Unsubscribe(w->subscription);
  EXPECT_EQ(hub.WatchedRunsForTest(), 0u);
  EXPECT_EQ(hub.subscriptions(), 0u);
}

TEST_F(EventHubTest, AWatcherThatNeverReadsHoldsNothingUp) {
  Latest idle;  // woken, but never reads
  Latest active;
  EventHub hub(store_.get(), {.cached_events_per_run = 8, .read_threads = 1});
  RunStore::Claimed c = RunningRun();
  hub.Subscribe(c.lease.run_id, idle.Callback());
  hub.Subscribe(c.lease.run_id, active.Callback());

  int64_t after = 0;
  std::vector<std::string> seen;
  for (int round = 0; round < 30; ++round) {
    const int64_t last = Append(&hub, c.lease, round * 2 + 1, 2);
    ASSERT_TRUE(WaitUntil([&] { return active.last.load() == last; })) << "round " << round;
    auto batch = hub.Read(c.lease.run_id, after, 100);
    ASSERT_TRUE(batch.ok()) << batch.status();
    for (const StoredEvent& e : *batch) {
      EXPECT_EQ(e.sequence, after + 1);
      after = e.sequence;
      seen.push_back(e.event);
    }
    ASSERT_EQ(after, last);
  }
  EXPECT_EQ(seen, TableTexts(c.lease.run_id));
  EXPECT_EQ(idle.last.load(), after) << "the idle watcher was told too";
  // Far behind, the idle one reads it all later (from the table: the cache holds only 8).
  auto all = hub.Read(c.lease.run_id, 0, 1000);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(static_cast<int64_t>(all->size()), after);
}

TEST_F(EventHubTest, ReadsNewEventsFromTheCacheAndOlderOnesFromTheTable) {
  Latest latest;
  EventHub hub(store_.get(), {.cached_events_per_run = 5, .read_threads = 1});
  RunStore::Claimed c = RunningRun();
  hub.Subscribe(c.lease.run_id, latest.Callback());
  const int64_t last = Append(&hub, c.lease, 1, 12);  // sequences 3..14
  ASSERT_EQ(last, 14);
  ASSERT_TRUE(WaitUntil([&] { return latest.last.load() == 14; }));

  // A cache miss reads the table.
  auto all = hub.Read(c.lease.run_id, 0, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 14u);
  auto page = hub.Read(c.lease.run_id, 2, 3);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].event, "e1");
  EXPECT_EQ((*page)[2].sequence, 5);

  // With the rows gone from the table, only the cache (10..14) can answer.
  ASSERT_TRUE(pool_
                  ->Run([&](common::DbConnection& conn) {
                    conn.session()
                        << "DELETE FROM orchestrator.run_events WHERE run_id = CAST(:id AS uuid)",
                        soci::use(c.lease.run_id);
                    return absl::OkStatus();
                  })
                  .ok());
  auto cached = hub.Read(c.lease.run_id, 9, 100);
  ASSERT_TRUE(cached.ok());
  ASSERT_EQ(cached->size(), 5u);
  EXPECT_EQ(cached->front().sequence, 10);
  EXPECT_EQ(cached->front().event, "e8");
  EXPECT_EQ(cached->back().event, "e12");
  auto limited = hub.Read(c.lease.run_id, 11, 2);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[1].sequence, 13);
  auto up_to_date = hub.Read(c.lease.run_id, 14, 100);
  ASSERT_TRUE(up_to_date.ok());
  EXPECT_TRUE(up_to_date->empty());
  auto older = hub.Read(c.lease.run_id, 8, 100);
  ASSERT_TRUE(older.ok());
  EXPECT_TRUE(older->empty()) << "sequence 9 is not cached, so the (emptied) table answered";
  EXPECT_TRUE(
      hub.Read(c.lease.run_id, 9, 0).value_or(std::vector<StoredEvent>{StoredEvent{}}).empty());
}

TEST_F(EventHubTest, ReadsOfUnwatchedRunsGoToTheTable) {
  EventHub hub(store_.get(), {});
  RunStore::Claimed c = RunningRun();
  Append(nullptr, c.lease, 1, 3);
  auto events = hub.Read(c.lease.run_id, 1, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 4u);
  EXPECT_EQ(events->front().event, "started 1");
  EXPECT_EQ(hub.WatchedRunsForTest(), 0u);
}

TEST_F(EventHubTest, MalformedNotificationsAreIgnored) {
  Latest latest;
  EventHub hub(store_.get(), {});
  RunStore::Claimed c = RunningRun();
  hub.Subscribe(c.lease.run_id, latest.Callback());
  const std::string id = c.lease.run_id;
  for (const std::string& bad :
       {std::string(), std::string(":"), id, id + ":", id + ":abc", id + ":-3", id + ":0",
        id + ": 5", id + ":5 ", id + ":+5", id + ":0x10", id + ":99999999999999999999999",
        id + ":5:6", std::string("not-a-uuid:5"), std::string(":5"), id.substr(1) + ":5",
        std::string("\xff\xfe\0:1", 5), std::string(100000, ':'), std::string(100000, '7')}) {
    hub.OnNotify(bad);
  }
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(latest.calls.load(), 0);
  EXPECT_EQ(hub.WatchedRunsForTest(), 1u);
  hub.OnNotify(common::NewUuid() + ":3");  // a run nobody here watches
  EXPECT_EQ(hub.WatchedRunsForTest(), 1u);
  // Upper case ids are the same run.
  std::string upper = id;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  hub.OnNotify(upper + ":2");
  ASSERT_TRUE(WaitUntil([&] { return latest.calls.load() == 1; }));
  EXPECT_EQ(latest.last.load(), 2);
  hub.OnNotify(id + ":1");  // older than announced: nothing to say
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(latest.calls.load(), 1);
}

TEST_F(EventHubTest, OnReconnectCatchesUpWithWhatWasMissedAndReannounces) {
  Latest latest;
  EventHub hub(store_.get(), {.cached_events_per_run = 4});
  RunStore::Claimed c = RunningRun();
  hub.Subscribe(c.lease.run_id, latest.Callback());
  const int64_t seen = Append(&hub, c.lease, 1, 1);
  ASSERT_TRUE(WaitUntil([&] { return latest.last.load() == seen; }));
  ASSERT_EQ(latest.calls.load(), 1);
  // These notifications are lost (the listener was down).
  const int64_t missed = Append(nullptr, c.lease, 2, 10);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(latest.calls.load(), 1);

  hub.OnReconnect();
  ASSERT_TRUE(WaitUntil([&] { return latest.calls.load() == 2; }));
  EXPECT_EQ(latest.last.load(), missed);
  auto cached = hub.Read(c.lease.run_id, missed - 2, 10);
  ASSERT_TRUE(cached.ok());
  ASSERT_EQ(cached->size(), 2u);
  EXPECT_EQ(cached->back().event, "e11");

  // Nothing new: subscribers are told once all the same.
  hub.OnReconnect();
  ASSERT_TRUE(WaitUntil([&] { return latest.calls.load() == 3; }));
  EXPECT_EQ(latest.last.load(), missed);
}

TEST_F(EventHubTest, UnsubscribeStopsCallbacksAndDropsTheRunWithItsLast) {
  Latest a, b;
  EventHub hub(store_.get(), {});
  RunStore::Claimed c = RunningRun();
  EventHub::Subscription sa = hub.Subscribe(c.lease.run_id, a.Callback());
  EventHub::Subscription sb = hub.Subscribe(c.lease.run_id, b.Callback());
  hub.Unsubscribe(sa);
  hub.Unsubscribe(sa);      // twice: ignored
  hub.Unsubscribe(999999);  // unknown: ignored
  EXPECT_EQ(hub.subscriptions(), 1u);
  int64_t last = Append(&hub, c.lease, 1, 1);
  ASSERT_TRUE(WaitUntil([&] { return b.last.load() == last; }));
  EXPECT_EQ(a.calls.load(), 0);
  hub.Unsubscribe(sb);
  EXPECT_EQ(hub.WatchedRunsForTest(), 0u);
  EXPECT_EQ(hub.subscriptions(), 0u);
  Append(&hub, c.lease, 2, 1);
  hub.OnReconnect();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(b.calls.load(), 1);
}

TEST_F(EventHubTest, UnsubscribeWaitsForACallInProgressAndWorksFromInsideOne) {
  std::atomic<bool> inside{false}, returned{false};
  std::atomic<int> calls{0};
  std::atomic<int> self_calls{0};
  EventHub::Subscription self = 0;
  EventHub hub(store_.get(), {.read_threads = 2});
  RunStore::Claimed c = RunningRun();
  EventHub::Subscription slow = hub.Subscribe(c.lease.run_id, [&](int64_t) {
    ++calls;
    inside = true;
    absl::SleepFor(absl::Milliseconds(300));
    returned = true;
    inside = false;
  });
  self = hub.Subscribe(c.lease.run_id, [&](int64_t) {
    ++self_calls;
    hub.Unsubscribe(self);  // must not wait for itself
  });
  Append(&hub, c.lease, 1, 1);
  ASSERT_TRUE(WaitUntil([&] { return inside.load(); }));
  hub.Unsubscribe(slow);
  EXPECT_TRUE(returned.load()) << "Unsubscribe returned while on_new was still running";
  EXPECT_FALSE(inside.load());
  ASSERT_TRUE(WaitUntil([&] { return self_calls.load() == 1 && hub.subscriptions() == 0; }));
  Append(&hub, c.lease, 2, 1);
  hub.OnReconnect();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(self_calls.load(), 1);
}

TEST_F(EventHubTest, NotificationsBeyondTheReadQueueStillWakeEveryRun) {
  // One reader thread and more watched runs than the queue holds (1024): OnNotify never waits,
  // and runs that did not fit are refreshed later. These runs have no rows: reads find nothing,
  // and the notified sequence is announced as it is.
  std::vector<std::string> runs;
  std::vector<std::unique_ptr<Latest>> latest;
  EventHub hub(store_.get(), {.read_threads = 1});
  constexpr int kRuns = 1500;
  for (int i = 0; i < kRuns; ++i) {
    runs.push_back(common::NewUuid());
    latest.push_back(std::make_unique<Latest>());
    hub.Subscribe(runs.back(), latest.back()->Callback());
  }
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) hub.OnNotify(absl::StrCat(runs[i], ":", i + 1));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  EXPECT_TRUE(WaitUntil(
      [&] {
        for (int i = 0; i < kRuns; ++i) {
          if (latest[i]->last.load() != i + 1) return false;
        }
        return true;
      },
      absl::Seconds(60)));
}

TEST_F(EventHubTest, EndToEndAnAppendWakesASubscriberThroughThePgListener) {
  Latest latest;
  EventHub hub(store_.get(), {});
  common::PgListener listener(
      {.url = url_, .channels = {kEventsChannel}},
      [&](std::string_view, std::string_view payload) { hub.OnNotify(payload); },
      [&] { hub.OnReconnect(); });
  ASSERT_TRUE(listener.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return listener.connected(); }));
  RunStore::Claimed c = RunningRun();
  hub.Subscribe(c.lease.run_id, latest.Callback());
  const auto start = std::chrono::steady_clock::now();
  const int64_t last = Append(nullptr, c.lease, 1, 2);  // only NOTIFY tells the hub
  ASSERT_TRUE(WaitUntil([&] { return latest.last.load() == last; }, absl::Seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  auto events = hub.Read(c.lease.run_id, 2, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].event, "e1");
  EXPECT_EQ((*events)[1].event, "e2");
  listener.Stop();
}

}  // namespace
}  // namespace qai::orchestrator
