#include "services/orchestrator/stream/event_hub.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/strings.h"

namespace qai::orchestrator {
namespace {

// Refreshes waiting for a reader thread; beyond this, runs wait in pending_ (one entry each).
constexpr size_t kMaxQueuedRefreshes = 1024;
// Events read from the table per query while filling a cache.
constexpr int kPageSize = 256;

// ParsePayload: "<run id>:<last sequence>" as (lower-case run id, sequence), or nullopt.
std::optional<std::pair<std::string, int64_t>> ParsePayload(std::string_view payload) {
  const size_t colon = payload.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view run = payload.substr(0, colon);
  const std::string_view digits = payload.substr(colon + 1);
  // Digits only (SimpleAtoi alone would take signs and spaces); 18 of them fit in int64_t.
  if (!common::IsUuid(run) || digits.empty() || digits.size() > 18) return std::nullopt;
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  int64_t sequence = 0;
  if (!absl::SimpleAtoi(common::ToAbsl(digits), &sequence) || sequence <= 0) return std::nullopt;
  return std::make_pair(absl::AsciiStrToLower(common::ToAbsl(run)), sequence);
}

// RunKey: run ids as PostgreSQL prints them, so "ABC..." from a caller meets "abc..." from NOTIFY.
std::string RunKey(const std::string& run_id) { return absl::AsciiStrToLower(run_id); }

// AppendToCache: fresh events after the cache's, keeping the newest `capacity`. Events that do
// not follow on from the cache replace it.
void AppendToCache(std::deque<StoredEvent>& cache, std::vector<StoredEvent> fresh,
                   size_t capacity) {
  if (fresh.empty()) return;
  if (!cache.empty() && fresh.front().sequence != cache.back().sequence + 1) cache.clear();
  for (StoredEvent& e : fresh) cache.push_back(std::move(e));
  while (cache.size() > capacity) cache.pop_front();
}

}  // namespace

// Subscriber: one Subscribe(). `mu` is held while on_new runs, so Unsubscribe (which clears
// `active` under it) returns only when no call is in progress and none can start.
struct EventHub::Subscriber {
  explicit Subscriber(std::function<void(int64_t)> fn) : on_new(std::move(fn)) {}
  const std::function<void(int64_t)> on_new;
  absl::Mutex mu;
  bool active ABSL_GUARDED_BY(mu) = true;
};

namespace {

// The subscriber whose on_new this thread is running, so that its own Unsubscribe does not
// wait for itself.
thread_local const void* calling_subscriber = nullptr;

}  // namespace

// Run: a watched run. Guarded by EventHub::mu_; only its (single) refresh changes the cache.
struct EventHub::Run {
  explicit Run(std::string run_id) : id(std::move(run_id)) {}
  const std::string id;
  std::map<Subscription, std::shared_ptr<Subscriber>> subscribers;
  std::deque<StoredEvent> cache;  // the newest events, consecutive sequences, oldest first
  int64_t known = 0;              // the highest last sequence heard of (notified or read)
  int64_t announced = 0;          // what subscribers were last told
  bool scheduled = false;         // a refresh is queued, running, or in pending_
  bool dirty = false;             // news arrived during the refresh: it goes round again
  bool reannounce = false;        // after a reconnect: re-read, and announce even if nothing grew
  bool dropped = false;           // its last subscriber left: a refresh in flight just ends
};

EventHub::EventHub(RunStore* store, Options options)
    : store_(store),
      options_(options),
      readers_("event-hub", std::max(1, options.read_threads), kMaxQueuedRefreshes) {}

EventHub::~EventHub() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    pending_.clear();
  }
  // Queued refreshes see stopping_ and end at once; running ones finish their callbacks.
  readers_.Shutdown();
}

EventHub::Subscription EventHub::Subscribe(const std::string& run_id,
                                           std::function<void(int64_t)> on_new) {
  const std::string key = RunKey(run_id);
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Run>& run = runs_[key];
  if (run == nullptr) run = std::make_shared<Run>(key);
  const Subscription id = next_subscription_++;
  run->subscribers.emplace(id, std::make_shared<Subscriber>(std::move(on_new)));
  subscription_runs_.emplace(id, key);
  return id;
}

void EventHub::Unsubscribe(Subscription subscription) {
  std::shared_ptr<Subscriber> subscriber;
  {
    absl::MutexLock lock(&mu_);
    auto it = subscription_runs_.find(subscription);
    if (it == subscription_runs_.end()) return;
    auto run_it = runs_.find(it->second);
    subscription_runs_.erase(it);
    if (run_it == runs_.end()) return;  // cannot happen: a run lives while it has subscriptions
    Run& run = *run_it->second;
    if (auto sub = run.subscribers.find(subscription); sub != run.subscribers.end()) {
      subscriber = std::move(sub->second);
      run.subscribers.erase(sub);
    }
    if (run.subscribers.empty()) {
      run.dropped = true;
      runs_.erase(run_it);
    }
  }
  if (subscriber == nullptr) return;
  if (calling_subscriber == subscriber.get()) {
    subscriber->mu.AssertHeld();  // inside its own on_new: this thread already holds its mu
    subscriber->active = false;
    return;
  }
  absl::MutexLock lock(&subscriber->mu);
  subscriber->active = false;
}

absl::StatusOr<std::vector<StoredEvent>> EventHub::Read(const std::string& run_id, int64_t after,
                                                        int limit) {
  if (limit <= 0) return std::vector<StoredEvent>();
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(RunKey(run_id));
    if (it != runs_.end() && !it->second->cache.empty()) {
      const Run& run = *it->second;
      const int64_t front = run.cache.front().sequence;
      const int64_t back = run.cache.back().sequence;
      if (after >= front - 1 && after < back) {
        std::vector<StoredEvent> out;
        const size_t first = static_cast<size_t>(after + 1 - front);
        const size_t n = std::min(run.cache.size() - first, static_cast<size_t>(limit));
        out.reserve(n);
        for (size_t i = first; i < first + n; ++i) out.push_back(run.cache[i]);
        return out;
      }
      // Up to date with everything heard of: the table has nothing newer that was announced
      // (anything newer will be, and its subscribers woken).
      if (after >= back && run.known <= back) return std::vector<StoredEvent>();
    }
  }
  return store_->Events(run_id, after, limit);
}

void EventHub::OnNotify(std::string_view payload) {
  std::optional<std::pair<std::string, int64_t>> parsed = ParsePayload(payload);
  if (!parsed) {
    common::Log(common::LogLevel::kDebug, "event hub: ignored a malformed notification");
    return;
  }
  absl::MutexLock lock(&mu_);
  auto it = runs_.find(parsed->first);
  if (it == runs_.end()) return;  // nobody watches this run here
  Run& run = *it->second;
  if (parsed->second <= run.known) return;  // already read, or being read
  run.known = parsed->second;
  Schedule(it->second);
}

void EventHub::OnReconnect() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, run] : runs_) {
    run->reannounce = true;
    Schedule(run);
  }
}

size_t EventHub::WatchedRunsForTest() const {
  absl::MutexLock lock(&mu_);
  return runs_.size();
}

size_t EventHub::subscriptions() const {
  absl::MutexLock lock(&mu_);
  return subscription_runs_.size();
}

void EventHub::Schedule(const std::shared_ptr<Run>& run) {
  if (run->scheduled) {
    run->dirty = true;
    return;
  }
  if (stopping_) return;
  run->scheduled = true;
  if (!readers_.TrySubmit([this, run] { Refresh(run); })) {
    // The queue is full, so refreshes are queued, and each submits pending_ when it ends.
    pending_.push_back(run);
  }
}

void EventHub::Refresh(const std::shared_ptr<Run>& run) {
  while (std::optional<Round> round = StartRound(*run)) {
    std::vector<StoredEvent> fresh;
    if (absl::Status status = ReadNewEvents(run->id, *round, fresh); !status.ok()) {
      // Subscribers are still told what the notification said; their Reads go to the table.
      common::Log(common::LogLevel::kWarn, "event hub: reading new events failed",
                  {{"run_id", run->id}, {"error", status.ToString()}});
    }
    std::optional<Announcement> announcement = Publish(*run, *round, std::move(fresh));
    if (!announcement) break;
    // Outside mu_, so on_new may Read, Subscribe or Unsubscribe.
    Tell(announcement->subscribers, announcement->last_sequence);
    if (!EndRound(*run)) break;
  }
  SubmitPending();
}

std::optional<EventHub::Round> EventHub::StartRound(Run& run) {
  absl::MutexLock lock(&mu_);
  if (run.dropped || stopping_) {
    run.scheduled = false;
    return std::nullopt;
  }
  run.dirty = false;
  return Round{.have = run.cache.empty() ? run.announced : run.cache.back().sequence,
               .known = run.known,
               .reannounce = std::exchange(run.reannounce, false)};
}

absl::Status EventHub::ReadNewEvents(const std::string& run_id, Round& round,
                                     std::vector<StoredEvent>& fresh) {
  // Outside the lock: the table. Notifications may have been lost before a reconnect, so
  // the run's row says how far it got.
  if (round.reannounce) {
    absl::StatusOr<RunRecord> record = store_->Get(run_id);
    if (record.ok()) {
      round.known = std::max(round.known, record->last_sequence);
    } else if (record.status().code() != absl::StatusCode::kNotFound) {
      return record.status();
    }
  }
  const size_t capacity = options_.cached_events_per_run;
  if (capacity == 0 || !(round.known > round.have || round.reannounce)) return absl::OkStatus();
  // Only the newest `capacity` are kept, so older ones are not read at all.
  const int64_t after = std::max<int64_t>(round.have, round.known - static_cast<int64_t>(capacity));
  return ReadNewest(run_id, after, capacity, fresh);
}

absl::Status EventHub::ReadNewest(const std::string& run_id, int64_t after, size_t capacity,
                                  std::vector<StoredEvent>& fresh) {
  for (;;) {
    absl::StatusOr<std::vector<StoredEvent>> page = store_->Events(run_id, after, kPageSize);
    if (!page.ok()) return page.status();
    const bool full = static_cast<int>(page->size()) == kPageSize;
    for (StoredEvent& e : *page) fresh.push_back(std::move(e));
    if (fresh.size() > capacity)
      fresh.erase(fresh.begin(), fresh.end() - static_cast<ptrdiff_t>(capacity));
    if (!full) return absl::OkStatus();
    after = fresh.back().sequence;
  }
}

std::optional<EventHub::Announcement> EventHub::Publish(Run& run, const Round& round,
                                                        std::vector<StoredEvent> fresh) {
  absl::MutexLock lock(&mu_);
  if (run.dropped || stopping_) {
    run.scheduled = false;
    return std::nullopt;
  }
  AppendToCache(run.cache, std::move(fresh), options_.cached_events_per_run);
  const int64_t last =
      std::max(round.known, run.cache.empty() ? int64_t{0} : run.cache.back().sequence);
  run.known = std::max(run.known, last);
  Announcement announcement;
  if (last > run.announced || round.reannounce) {
    run.announced = std::max(run.announced, last);
    announcement.last_sequence = run.announced;
    announcement.subscribers.reserve(run.subscribers.size());
    for (const auto& [id, subscriber] : run.subscribers)
      announcement.subscribers.push_back(subscriber);
  }
  return announcement;
}

void EventHub::Tell(const std::vector<std::shared_ptr<Subscriber>>& subscribers,
                    int64_t last_sequence) {
  for (const std::shared_ptr<Subscriber>& subscriber : subscribers) {
    absl::MutexLock lock(&subscriber->mu);
    if (!subscriber->active || !subscriber->on_new) continue;
    calling_subscriber = subscriber.get();
    subscriber->on_new(last_sequence);
    calling_subscriber = nullptr;
  }
}

bool EventHub::EndRound(Run& run) {
  // Only now may another refresh of this run start, so announcements never go backwards.
  absl::MutexLock lock(&mu_);
  if (!run.dirty || run.dropped || stopping_) {
    run.scheduled = false;
    return false;
  }
  return true;
}

void EventHub::SubmitPending() {
  absl::MutexLock lock(&mu_);
  while (!pending_.empty() && !stopping_) {
    std::shared_ptr<Run> next = pending_.front();
    if (!readers_.TrySubmit([this, next] { Refresh(next); })) break;
    pending_.pop_front();
  }
}

}  // namespace qai::orchestrator
