#include "common/outbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/pg_pipeline.h"
#include "common/service_main.h"
#include "common/status_macros.h"
#include "tests/support/pg_server.h"
#include "tests/support/scrape.h"

namespace qai::common {
namespace {

using qai::testing::PgServer;

constexpr char kTable[] = "projects.outbox";

std::unique_ptr<DbPool> NewPool(int size = 4) {
  absl::StatusOr<std::unique_ptr<DbPool>> pool =
      DbPool::Create({.url = PgServer::Shared().CreateDatabase(), .size = size});
  if (!pool.ok()) throw std::runtime_error(pool.status().ToString());
  return std::move(*pool);
}

std::string Enqueue(DbPool& pool, const std::string& topic, const std::string& payload) {
  std::string id;
  absl::Status s = pool.Transaction([&](DbConnection& conn) -> absl::Status {
    absl::StatusOr<std::string> enqueued =
        EnqueueOutbox(conn, kTable, {.topic = topic, .payload = payload});
    if (!enqueued.ok()) return enqueued.status();
    id = *enqueued;
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return id;
}

struct RowState {
  bool exists = false;
  int attempts = 0;
  bool delivered = false;
  bool due_now = false;
  double seconds_until_next = 0;
  std::string last_error;
};

RowState State(DbPool& pool, const std::string& id) {
  RowState state;
  absl::Status s = pool.Run([&](DbConnection& conn) {
    int n = 0;
    conn.session() << "SELECT count(*)::int FROM projects.outbox WHERE id = CAST(:id AS uuid)",
        soci::use(id), soci::into(n);
    state.exists = n == 1;
    if (!state.exists) return absl::OkStatus();
    int delivered = 0, due = 0;
    conn.session()
        << "SELECT attempts, (deliver_time IS NOT NULL)::int, (next_attempt_time <= now())::int,"
           " CASE WHEN next_attempt_time = 'infinity' THEN 'Infinity'::float8"
           " ELSE EXTRACT(EPOCH FROM next_attempt_time - now())::float8 END, last_error"
           " FROM projects.outbox WHERE id = CAST(:id AS uuid)",
        soci::use(id), soci::into(state.attempts), soci::into(delivered), soci::into(due),
        soci::into(state.seconds_until_next), soci::into(state.last_error);
    state.delivered = delivered == 1;
    state.due_now = due == 1;
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return state;
}

void MakeDueNow(DbPool& pool) {
  ASSERT_TRUE(pool.Run([](DbConnection& conn) {
                    conn.session() << "UPDATE projects.outbox SET next_attempt_time = now()";
                    return absl::OkStatus();
                  })
                  .ok());
}

std::string BinaryPayload() {
  std::string payload;
  for (int round = 0; round < 2; ++round) {
    for (int b = 0; b < 256; ++b)
      payload.push_back(static_cast<char>(b));  // includes 0x00 and 0xff
  }
  payload += std::string("\x00\x00\xff\xff", 4);
  return payload;  // 516 bytes: PostgreSQL's base64 output wraps at 76 characters
}

// A deliverer that records what it saw.
struct Recorder {
  std::mutex mu;
  std::vector<OutboxRow> rows;
  std::vector<std::string> request_ids_during_delivery;
  absl::Status result = absl::OkStatus();

  OutboxRelay::Deliverer Deliverer() {
    return [this](const OutboxRow& row) {
      std::lock_guard lock(mu);
      rows.push_back(row);
      request_ids_during_delivery.push_back(CurrentRequestId());
      return result;
    };
  }
  size_t count() {
    std::lock_guard lock(mu);
    return rows.size();
  }
};

TEST(OutboxTest, EnqueueInCommittedTransactionIsVisible) {
  auto pool = NewPool();
  std::string id = Enqueue(*pool, "runs.notify", "hello");
  ASSERT_TRUE(IsUuid(id)) << id;
  RowState state = State(*pool, id);
  EXPECT_TRUE(state.exists);
  EXPECT_EQ(state.attempts, 0);
  EXPECT_FALSE(state.delivered);
  EXPECT_TRUE(state.due_now);
}

TEST(OutboxTest, EnqueueIsAtomicWithTheChange) {
  auto pool = NewPool();
  std::string outbox_id;
  const std::string project_id = NewUuid();
  absl::Status s = pool->Transaction([&](DbConnection& conn) -> absl::Status {
    conn.session() << "INSERT INTO projects.projects (id, name, owner) VALUES (CAST(:id AS uuid), "
                      "'p', 'alice')",
        soci::use(project_id);
    absl::StatusOr<std::string> id = EnqueueOutbox(conn, kTable, {.topic = "t", .payload = "p"});
    if (!id.ok()) return id.status();
    outbox_id = *id;
    return absl::AbortedError("changed my mind");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  ASSERT_FALSE(outbox_id.empty());
  EXPECT_FALSE(State(*pool, outbox_id).exists);
  int projects = -1;
  ASSERT_TRUE(pool->Run([&](DbConnection& conn) {
                    conn.session() << "SELECT count(*)::int FROM projects.projects",
                        soci::into(projects);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(projects, 0);

  // A SQL failure later in the same transaction also takes the message with it.
  s = pool->Transaction([&](DbConnection& conn) -> absl::Status {
    absl::StatusOr<std::string> id = EnqueueOutbox(conn, kTable, {.topic = "t", .payload = "p"});
    if (!id.ok()) return id.status();
    outbox_id = *id;
    conn.session() << "INSERT INTO projects.no_such_table VALUES (1)";
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_FALSE(State(*pool, outbox_id).exists);
}

// A row written by a pipelined statement (OutboxInsertSelect) is the row EnqueueOutbox writes:
// written only with the row it depends on, and relayed with its id, payload and trace.
TEST(OutboxTest, APipelinedStatementWritesTheSameRow) {
  const std::string url = PgServer::Shared().CreateDatabase();
  auto pipeline =
      PgPipeline::Start({.url = url, .connections = 1},
                        {{"announce", absl::StrCat("WITH p AS (SELECT 1 WHERE CAST($1 AS bool)) ",
                                                   OutboxInsertSelect(kTable, 2, "FROM p"))}});
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const std::string payload = BinaryPayload();
  auto announce = [&](bool write) {
    std::vector<PgValue> values = {write ? "true" : "false"};
    std::vector<PgValue> row =
        OutboxValues({.topic = "runs.notify", .payload = payload, .ordering_key = "k"}, "trace-7");
    values.insert(values.end(), row.begin(), row.end());
    std::promise<absl::StatusOr<PgRows>> done;
    (*pipeline)->Execute("announce", std::move(values),
                         [&](absl::StatusOr<PgRows> r) { done.set_value(std::move(r)); });
    absl::StatusOr<PgRows> r = done.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status();
  };
  announce(false);
  announce(true);
  (*pipeline)->Stop();

  auto relayed = DbPool::Create({.url = url, .size = 1});
  ASSERT_TRUE(relayed.ok()) << relayed.status();
  Recorder recorder;
  OutboxRelay relay(relayed->get(), {.table = kTable}, {{"runs.notify", recorder.Deliverer()}});
  ASSERT_EQ(*relay.RelayOnce(), 1) << "one row: none without the row it depends on";
  ASSERT_EQ(recorder.rows.size(), 1u);
  EXPECT_EQ(recorder.rows[0].payload, payload);
  EXPECT_EQ(recorder.rows[0].trace_request_id, "trace-7");
  EXPECT_EQ(recorder.rows[0].id.size(), 36u);
}

// DeliverNow: a writer delivers its key's rows itself, in order, and nothing else; a key
// another pass holds is left to that pass.
TEST(OutboxTest, DeliverNowDeliversOneKeysRowsOnly) {
  auto pool = NewPool();
  auto enqueue = [&](const std::string& payload, const std::string& key) {
    ASSERT_TRUE(pool->Transaction([&](DbConnection& conn) {
                      return EnqueueOutbox(conn, kTable,
                                           {.topic = "t", .payload = payload, .ordering_key = key})
                          .status();
                    })
                    .ok());
  };
  enqueue("a1", "a");
  enqueue("b1", "b");
  enqueue("none", "");
  enqueue("a2", "a");
  Recorder recorder;
  OutboxRelay relay(pool.get(), {.table = kTable}, {{"t", recorder.Deliverer()}});
  absl::StatusOr<int> delivered = relay.DeliverNow("a");
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 2);
  ASSERT_EQ(recorder.count(), 2u);
  EXPECT_EQ(recorder.rows[0].payload, "a1");
  EXPECT_EQ(recorder.rows[1].payload, "a2");

  // While another pass holds key "b" (its transaction-scoped lock), DeliverNow leaves it.
  std::promise<void> locked, release;
  std::thread other([&] {
    (void)pool->Transaction([&](DbConnection& conn) {
      std::string got;
      conn.session() << "SELECT CAST(pg_try_advisory_xact_lock(hashtextextended('" << kTable
                     << ":b', 0)) AS text)",
          soci::into(got);
      locked.set_value();
      release.get_future().wait();
      return absl::OkStatus();
    });
  });
  locked.get_future().wait();
  EXPECT_EQ(*relay.DeliverNow("b"), 0);
  release.set_value();
  other.join();
  EXPECT_EQ(*relay.DeliverNow("b"), 1);
  EXPECT_EQ(*relay.RelayOnce(), 1) << "the row of no key was the relay's";
}

TEST(OutboxTest, BadTableNameRefused) {
  auto pool = NewPool();
  absl::Status s = pool->Transaction([](DbConnection& conn) -> absl::Status {
    return EnqueueOutbox(conn, "projects.outbox; DROP TABLE projects.projects",
                         {.topic = "t", .payload = "p"})
        .status();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  OutboxRelay relay(pool.get(), {.table = "Projects.Outbox--"}, {});
  EXPECT_EQ(relay.RelayOnce().status().code(), absl::StatusCode::kInternal);
}

TEST(OutboxTest, RelayDeliversRowWithIdPayloadAndTrace) {
  auto pool = NewPool();
  const std::string payload = BinaryPayload();
  std::string id;
  {
    RequestScope scope("trace-req-42");
    id = Enqueue(*pool, "runs.notify", payload);
  }
  const std::string untraced_id = Enqueue(*pool, "runs.notify", "");

  Recorder recorder;
  OutboxRelay relay(pool.get(), {.table = kTable}, {{"runs.notify", recorder.Deliverer()}});
  absl::StatusOr<int> delivered = relay.RelayOnce();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 2);
  ASSERT_EQ(recorder.rows.size(), 2u);
  const OutboxRow* row = recorder.rows[0].id == id ? &recorder.rows[0] : &recorder.rows[1];
  const size_t index = row == &recorder.rows[0] ? 0 : 1;
  EXPECT_EQ(row->id, id);
  EXPECT_EQ(row->topic, "runs.notify");
  EXPECT_EQ(row->payload.size(), payload.size());
  EXPECT_EQ(row->payload, payload);
  EXPECT_EQ(row->trace_request_id, "trace-req-42");
  EXPECT_EQ(row->attempts, 0);
  EXPECT_EQ(recorder.request_ids_during_delivery[index], "trace-req-42");
  const OutboxRow& other = recorder.rows[1 - index];
  EXPECT_EQ(other.id, untraced_id);
  EXPECT_EQ(other.payload, "");
  EXPECT_EQ(other.trace_request_id, "");

  RowState state = State(*pool, id);
  EXPECT_TRUE(state.delivered);
  EXPECT_EQ(state.attempts, 1);
  EXPECT_EQ(state.last_error, "");

  // Delivered rows are never delivered again, not even when due.
  MakeDueNow(*pool);
  delivered = relay.RelayOnce();
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered, 0);
  EXPECT_EQ(recorder.rows.size(), 2u);
}

TEST(OutboxTest, PayloadSizesRoundTrip) {
  auto pool = NewPool();
  std::map<std::string, std::string> sent;
  for (size_t size : {1u, 2u, 3u, 56u, 57u, 58u, 100u, 1000u, 70000u}) {
    std::string payload(size, '\0');
    for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>((i * 131 + size) & 0xff);
    sent[Enqueue(*pool, "t", payload)] = payload;
  }
  Recorder recorder;
  OutboxRelay relay(pool.get(), {.table = kTable, .batch_size = 100},
                    {{"t", recorder.Deliverer()}});
  ASSERT_TRUE(relay.RelayOnce().ok());
  ASSERT_EQ(recorder.rows.size(), sent.size());
  for (const OutboxRow& row : recorder.rows) {
    EXPECT_EQ(row.payload, sent[row.id]) << "payload of " << sent[row.id].size() << " bytes";
  }
}

TEST(OutboxTest, FailedDeliveryIsRetriedLaterWithBackoff) {
  auto pool = NewPool();
  const std::string id = Enqueue(*pool, "runs.notify", "payload");
  Recorder recorder;
  recorder.result = absl::UnavailableError("receiver down");
  OutboxRelay relay(
      pool.get(),
      {.table = kTable, .base_backoff = absl::Seconds(10), .max_backoff = absl::Seconds(60)},
      {{"runs.notify", recorder.Deliverer()}});
  absl::StatusOr<int> delivered = relay.RelayOnce();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 0);
  EXPECT_EQ(recorder.count(), 1u);

  RowState state = State(*pool, id);
  EXPECT_FALSE(state.delivered);
  EXPECT_EQ(state.attempts, 1);
  EXPECT_EQ(state.last_error, "receiver down");
  EXPECT_FALSE(state.due_now);
  // First retry: base * 2^0 with equal jitter, so between 5 s and 10 s from now.
  EXPECT_GT(state.seconds_until_next, 4.0);
  EXPECT_LE(state.seconds_until_next, 10.5);

  // Not due yet: an immediate second pass leaves it alone.
  delivered = relay.RelayOnce();
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered, 0);
  EXPECT_EQ(recorder.count(), 1u);
  EXPECT_EQ(State(*pool, id).attempts, 1);

  // Second failure: the delay doubles (between 10 s and 20 s).
  MakeDueNow(*pool);
  ASSERT_TRUE(relay.RelayOnce().ok());
  state = State(*pool, id);
  EXPECT_EQ(state.attempts, 2);
  EXPECT_GT(state.seconds_until_next, 9.0);
  EXPECT_LE(state.seconds_until_next, 20.5);

  // Once due and the receiver is back, it is delivered with the attempt count so far.
  MakeDueNow(*pool);
  recorder.result = absl::OkStatus();
  delivered = relay.RelayOnce();
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered, 1);
  ASSERT_EQ(recorder.count(), 3u);
  EXPECT_EQ(recorder.rows[2].id, id);
  EXPECT_EQ(recorder.rows[2].attempts, 2);
  state = State(*pool, id);
  EXPECT_TRUE(state.delivered);
  EXPECT_EQ(state.attempts, 3);
  EXPECT_EQ(state.last_error, "");
}

TEST(OutboxTest, UnknownTopicIsRetriedNotDropped) {
  auto pool = NewPool();
  const std::string id = Enqueue(*pool, "nobody.listens", "p");
  Recorder recorder;
  OutboxRelay relay(pool.get(), {.table = kTable}, {{"runs.notify", recorder.Deliverer()}});
  absl::StatusOr<int> delivered = relay.RelayOnce();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 0);
  EXPECT_EQ(recorder.count(), 0u);
  RowState state = State(*pool, id);
  ASSERT_TRUE(state.exists);
  EXPECT_FALSE(state.delivered);
  EXPECT_EQ(state.attempts, 1);
  EXPECT_NE(state.last_error.find("nobody.listens"), std::string::npos) << state.last_error;
  EXPECT_FALSE(state.due_now);

  // A relay that does know the topic (say, after a deploy) delivers it.
  MakeDueNow(*pool);
  OutboxRelay knowing(pool.get(), {.table = kTable}, {{"nobody.listens", recorder.Deliverer()}});
  delivered = knowing.RelayOnce();
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered, 1);
  EXPECT_TRUE(State(*pool, id).delivered);
}

TEST(OutboxTest, OneFailingRowDoesNotBlockOthers) {
  auto pool = NewPool();
  const std::string bad = Enqueue(*pool, "bad", "p");
  const std::string good = Enqueue(*pool, "good", "p");
  OutboxRelay relay(pool.get(), {.table = kTable},
                    {{"bad", [](const OutboxRow&) { return absl::InternalError("boom"); }},
                     {"good", [](const OutboxRow&) { return absl::OkStatus(); }}});
  absl::StatusOr<int> delivered = relay.RelayOnce();
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered, 1);
  EXPECT_TRUE(State(*pool, good).delivered);
  EXPECT_FALSE(State(*pool, bad).delivered);
  EXPECT_EQ(State(*pool, bad).last_error, "boom");
}

TEST(OutboxTest, BatchSizeLimitsOnePass) {
  auto pool = NewPool();
  for (int i = 0; i < 5; ++i) Enqueue(*pool, "t", "p");
  Recorder recorder;
  OutboxRelay relay(pool.get(), {.table = kTable, .batch_size = 2}, {{"t", recorder.Deliverer()}});
  EXPECT_EQ(relay.RelayOnce().value(), 2);
  EXPECT_EQ(relay.RelayOnce().value(), 2);
  EXPECT_EQ(relay.RelayOnce().value(), 1);
  EXPECT_EQ(relay.RelayOnce().value(), 0);
}

TEST(OutboxBackoffTest, GrowsExponentiallyWithinJitterAndIsCapped) {
  absl::BitGen rng;
  const absl::Duration base = absl::Milliseconds(100);
  const absl::Duration max = absl::Seconds(10);
  for (int attempts = 0; attempts <= 40; ++attempts) {
    const absl::Duration uncapped = base * std::ldexp(1.0, std::min(attempts, 30));
    const absl::Duration full = std::min(uncapped, max);
    absl::Duration lowest = absl::InfiniteDuration();
    absl::Duration highest = absl::ZeroDuration();
    for (int i = 0; i < 2000; ++i) {
      absl::Duration d = BackoffDelay(attempts, base, max, rng);
      ASSERT_GE(d, full / 2) << "attempts " << attempts;
      ASSERT_LE(d, full) << "attempts " << attempts;
      lowest = std::min(lowest, d);
      highest = std::max(highest, d);
    }
    // Jitter actually spreads over the range.
    EXPECT_LT(lowest, full * 0.55) << "attempts " << attempts;
    EXPECT_GT(highest, full * 0.95) << "attempts " << attempts;
  }
  // Exact growth of the upper bound: 100ms, 200ms, 400ms, ... and the cap.
  EXPECT_LE(BackoffDelay(0, base, max, rng), absl::Milliseconds(100));
  EXPECT_GE(BackoffDelay(3, base, max, rng), absl::Milliseconds(400));
  EXPECT_LE(BackoffDelay(3, base, max, rng), absl::Milliseconds(800));
  EXPECT_GE(BackoffDelay(1000, base, max, rng), absl::Seconds(5));
  EXPECT_LE(BackoffDelay(1000, base, max, rng), absl::Seconds(10));
  EXPECT_LE(BackoffDelay(std::numeric_limits<int>::max(), base, max, rng), absl::Seconds(10));
}

// KeyedRows: rows written in order, every third with one of `keys` ordering keys.
struct KeyedRows {
  explicit KeyedRows(int keys) : keys(keys) {}
  // Write: rows first..first+count-1 (their payloads are their numbers), in one transaction.
  absl::Status Write(DbPool& pool, int first, int count) {
    return pool.Transaction([&](DbConnection& conn) -> absl::Status {
      for (int i = first; i < first + count; ++i) {
        const std::string key = i % 3 == 0 ? "key-" + std::to_string(i % keys) : "";
        absl::StatusOr<std::string> id = EnqueueOutbox(
            conn, kTable, {.topic = "t", .payload = std::to_string(i), .ordering_key = key});
        if (!id.ok()) return id.status();
        std::lock_guard lock(mu);
        ids.push_back(*id);
        key_of[*id] = key;
      }
      return absl::OkStatus();
    });
  }
  // ByKey: `order`'s ids of each ordering key, in their order there.
  std::map<std::string, std::vector<std::string>> ByKey(const std::vector<std::string>& order) {
    std::map<std::string, std::vector<std::string>> by_key;
    for (const std::string& id : order) {
      if (!key_of[id].empty()) by_key[key_of[id]].push_back(id);
    }
    return by_key;
  }

  const int keys;
  std::mutex mu;
  std::vector<std::string> ids;  // in the order written
  std::map<std::string, std::string> key_of;
};

// CountingDeliverer: counts each row's deliveries and their order, and takes a little time so
// that relays overlap.
struct CountingDeliverer {
  OutboxRelay::Deliverer Deliverer() {
    return [this](const OutboxRow& row) {
      {
        std::lock_guard lock(mu);
        ++deliveries[row.id];
        delivery_order.push_back(row.id);
      }
      total.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // keep the relays overlapping
      return absl::OkStatus();
    };
  }

  std::mutex mu;
  std::map<std::string, int> deliveries;
  std::vector<std::string> delivery_order;
  std::atomic<int> total{0};
};

// Leftovers: how many rows are undelivered, and how many took other than one attempt.
struct Leftovers {
  int undelivered = -1;
  int retried = -1;
};
absl::StatusOr<Leftovers> CountLeftovers(DbPool& pool) {
  Leftovers left;
  QAI_RETURN_IF_ERROR(pool.Run([&](DbConnection& conn) {
    conn.session() << "SELECT count(*) FILTER (WHERE deliver_time IS NULL)::int,"
                      " count(*) FILTER (WHERE attempts <> 1)::int FROM projects.outbox",
        soci::into(left.undelivered), soci::into(left.retried);
    return absl::OkStatus();
  }));
  return left;
}

// Two started relays on one table, rows written before and while they run: every row is
// delivered exactly once, and rows of one key in the order they were written.
TEST(OutboxTest, ConcurrentRelaysDeliverEachRowExactlyOnce) {
  constexpr int kRows = 1000;
  constexpr int kWrittenBefore = 400;
  auto pool = NewPool(/*size=*/6);
  KeyedRows rows(/*keys=*/10);
  ASSERT_TRUE(rows.Write(*pool, 0, kWrittenBefore).ok());

  CountingDeliverer counter;
  const OutboxRelay::Options options = {
      .table = kTable, .batch_size = 16, .poll_interval = absl::Milliseconds(20)};
  OutboxRelay first(pool.get(), options, {{"t", counter.Deliverer()}});
  OutboxRelay second(pool.get(), options, {{"t", counter.Deliverer()}});
  first.Start();
  second.Start();
  std::thread writer([&] {
    for (int i = kWrittenBefore; i < kRows; i += 20) {
      EXPECT_TRUE(rows.Write(*pool, i, 20).ok());
      first.Wake();
      second.Wake();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  writer.join();
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (counter.total.load() < kRows && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(10));
  // Long enough for a second delivery of some row to show up.
  absl::SleepFor(absl::Milliseconds(300));
  first.Stop();
  second.Stop();

  ASSERT_EQ(rows.ids.size(), static_cast<size_t>(kRows));
  EXPECT_EQ(counter.total.load(), kRows);
  EXPECT_EQ(counter.deliveries.size(), static_cast<size_t>(kRows));
  for (const std::string& id : rows.ids) EXPECT_EQ(counter.deliveries[id], 1) << id;
  EXPECT_EQ(rows.ByKey(counter.delivery_order), rows.ByKey(rows.ids));
  // Every row is marked delivered after its one attempt; nothing is left for anyone.
  absl::StatusOr<Leftovers> left = CountLeftovers(*pool);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(left->undelivered, 0);
  EXPECT_EQ(left->retried, 0);
  EXPECT_EQ(first.RelayOnce().value(), 0);
  EXPECT_EQ(second.RelayOnce().value(), 0);
}

TEST(OutboxTest, StartWakeStopDeliversWithoutWaitingForPoll) {
  auto pool = NewPool();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> delivered;
  OutboxRelay relay(pool.get(), {.table = kTable, .poll_interval = absl::Seconds(10)},
                    {{"t", [&](const OutboxRow& row) {
                        {
                          std::lock_guard lock(mu);
                          delivered.push_back(row.id);
                        }
                        cv.notify_all();
                        return absl::OkStatus();
                      }}});
  relay.Start();
  // Let the first (empty) pass finish so the relay is asleep in its 10 s poll.
  absl::SleepFor(absl::Milliseconds(300));
  const std::string id = Enqueue(*pool, "t", "wake me");
  const absl::Time woken = absl::Now();
  relay.Wake();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(2), [&] { return !delivered.empty(); }))
        << "not delivered within 2 s of Wake()";
    EXPECT_EQ(delivered[0], id);
  }
  EXPECT_LT(absl::Now() - woken, absl::Seconds(2));

  const absl::Time stopping = absl::Now();
  relay.Stop();
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(2)) << "Stop must not wait out the poll interval";
  relay.Stop();  // idempotent

  // Wait for the delivery to be committed, then check it is recorded.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!State(*pool, id).delivered && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(State(*pool, id).delivered);
}

TEST(OutboxTest, StartedRelayPollsWithoutWake) {
  auto pool = NewPool();
  std::atomic<int> delivered{0};
  OutboxRelay relay(pool.get(), {.table = kTable, .poll_interval = absl::Milliseconds(50)},
                    {{"t", [&](const OutboxRow&) {
                        delivered.fetch_add(1);
                        return absl::OkStatus();
                      }}});
  relay.Start();
  absl::SleepFor(absl::Milliseconds(100));
  Enqueue(*pool, "t", "x");
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (delivered.load() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  relay.Stop();
  EXPECT_EQ(delivered.load(), 1);
}

}  // namespace
}  // namespace qai::common

namespace qai::common {
namespace {

std::string EnqueueKeyed(DbPool& pool, const std::string& topic, const std::string& key) {
  std::string id;
  EXPECT_TRUE(pool.Transaction([&](DbConnection& conn) -> absl::Status {
                    absl::StatusOr<std::string> enqueued = EnqueueOutbox(
                        conn, kTable, {.topic = topic, .payload = "p", .ordering_key = key});
                    if (!enqueued.ok()) return enqueued.status();
                    id = *enqueued;
                    return absl::OkStatus();
                  })
                  .ok());
  return id;
}

void MakeDue(DbPool& pool, const std::string& id) {
  ASSERT_TRUE(pool.Run([&](DbConnection& conn) {
                    conn.session() << "UPDATE projects.outbox SET next_attempt_time = now() WHERE "
                                      "id = CAST(:id AS uuid)",
                        soci::use(id);
                    return absl::OkStatus();
                  })
                  .ok());
}

// Rows of one key go out in the order written, each only after the one before it: a failed
// first row holds back the second, while rows without a key are not held.
TEST(OutboxOrderTest, RowsOfOneKeyAreDeliveredInOrder) {
  auto pool = NewPool();
  const std::string first = EnqueueKeyed(*pool, "a", "project-1");
  const std::string second = EnqueueKeyed(*pool, "b", "project-1");
  const std::string unkeyed = EnqueueKeyed(*pool, "c", "");
  std::mutex mu;
  std::vector<std::string> order;
  bool fail_a = true;
  auto record = [&](const char* topic, bool* fail) {
    return [&, topic, fail](const OutboxRow&) -> absl::Status {
      std::lock_guard lock(mu);
      if (fail != nullptr && *fail) {
        *fail = false;
        return absl::UnavailableError("receiver down");
      }
      order.push_back(topic);
      return absl::OkStatus();
    };
  };
  OutboxRelay relay(
      pool.get(), {.table = kTable},
      {{"a", record("a", &fail_a)}, {"b", record("b", nullptr)}, {"c", record("c", nullptr)}});
  ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_EQ(order, std::vector<std::string>{"c"});
  EXPECT_FALSE(State(*pool, second).delivered);
  MakeDue(*pool, first);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_EQ(order, (std::vector<std::string>{"c", "a", "b"}));
  EXPECT_TRUE(State(*pool, second).delivered);
  EXPECT_TRUE(State(*pool, unkeyed).delivered);
}

// A burst of one key's rows goes out in one pass, in order; a second key's burst beside it.
TEST(OutboxOrderTest, AKeysBurstGoesOutInOnePassInOrder) {
  auto pool = NewPool();
  for (int i = 0; i < 20; ++i) {
    EnqueueKeyed(*pool, "t", "project-1");
    EnqueueKeyed(*pool, "t", "project-2");
  }
  std::mutex mu;
  std::vector<std::string> ids_in_order;
  OutboxRelay relay(pool.get(), {.table = kTable},
                    {{"t", [&](const OutboxRow& row) -> absl::Status {
                        std::lock_guard lock(mu);
                        ids_in_order.push_back(row.id);
                        return absl::OkStatus();
                      }}});
  absl::StatusOr<int> delivered = relay.RelayOnce();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 40);
  // Each key's rows arrived in the order they were written.
  std::map<std::string, int64_t> last_seq;
  for (const std::string& id : ids_in_order) {
    int64_t seq = 0;
    std::string key;
    ASSERT_TRUE(pool->Run([&](common::DbConnection& c) {
                      c.session() << "SELECT seq, ordering_key FROM " << kTable
                                  << " WHERE id = CAST(:id AS uuid)",
                          soci::into(seq), soci::into(key), soci::use(id);
                      return absl::OkStatus();
                    })
                    .ok());
    EXPECT_GT(seq, last_seq[key]) << key;
    last_seq[key] = seq;
  }
}

// A failed row holds back only the rows of its own key behind it.
TEST(OutboxOrderTest, AFailureStopsItsKeyOnly) {
  auto pool = NewPool();
  const std::string first = EnqueueKeyed(*pool, "fails", "project-1");
  const std::string second = EnqueueKeyed(*pool, "ok", "project-1");
  const std::string other = EnqueueKeyed(*pool, "ok", "project-2");
  std::atomic<int> ok_calls{0};
  OutboxRelay relay(pool.get(), {.table = kTable},
                    {{"fails", [](const OutboxRow&) { return absl::UnavailableError("down"); }},
                     {"ok", [&](const OutboxRow&) {
                        ++ok_calls;
                        return absl::OkStatus();
                      }}});
  ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_EQ(ok_calls, 1) << "project-2's row went; project-1's second waits for its first";
  EXPECT_TRUE(State(*pool, other).delivered);
  EXPECT_FALSE(State(*pool, second).delivered);
  ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_FALSE(State(*pool, second).delivered) << "still behind the first, which backs off";
}

// A topic with a batch deliverer goes in one call per pass, whatever its keys; a key that also
// holds another topic goes row by row, in order, as before.
TEST(OutboxBatchTest, ATopicsRowsGoTogetherInOneCall) {
  auto pool = NewPool();
  std::vector<std::string> news;
  for (int i = 0; i < 5; ++i) {
    news.push_back(EnqueueKeyed(*pool, "news", "latest:" + std::to_string(i % 3)));
  }
  const std::string mixed_news = EnqueueKeyed(*pool, "news", "project-9");
  const std::string mixed_other = EnqueueKeyed(*pool, "other", "project-9");
  std::mutex mu;
  std::vector<size_t> call_sizes;
  int single_news = 0, others = 0;
  OutboxRelay relay(pool.get(), {.table = kTable},
                    {{"news",
                      [&](const OutboxRow&) {
                        std::lock_guard lock(mu);
                        ++single_news;
                        return absl::OkStatus();
                      }},
                     {"other",
                      [&](const OutboxRow&) {
                        std::lock_guard lock(mu);
                        ++others;
                        return absl::OkStatus();
                      }}},
                    {{"news", [&](const std::vector<OutboxRow>& rows) {
                        std::lock_guard lock(mu);
                        call_sizes.push_back(rows.size());
                        return absl::OkStatus();
                      }}});
  absl::StatusOr<int> delivered = relay.RelayOnce();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 7);
  EXPECT_EQ(call_sizes, std::vector<size_t>{5}) << "five rows of three keys, one call";
  EXPECT_EQ(single_news, 1) << "the news of a key that also holds another topic";
  EXPECT_EQ(others, 1);
  for (const std::string& id : news) EXPECT_TRUE(State(*pool, id).delivered);
  EXPECT_TRUE(State(*pool, mixed_other).delivered);
}

// A batch call that fails for a while leaves every row of it for later; one the receiver
// refuses (or does not know) is tried row by row, so one bad row parks alone.
TEST(OutboxBatchTest, ARefusedBatchGoesRowByRowAndAFailedOneWaits) {
  auto pool = NewPool();
  const std::string good = EnqueueKeyed(*pool, "news", "latest:1");
  const std::string bad = EnqueueKeyed(*pool, "news", "latest:2");
  const std::string behind_bad = EnqueueKeyed(*pool, "news", "latest:2");
  absl::Status batch_answer = absl::UnavailableError("receiver down");
  std::atomic<int> batch_calls{0};
  OutboxRelay relay(pool.get(), {.table = kTable},
                    {{"news",
                      [&](const OutboxRow& row) {
                        return row.id == bad ? absl::InvalidArgumentError("not this one")
                                             : absl::OkStatus();
                      }}},
                    {{"news", [&](const std::vector<OutboxRow>&) {
                        ++batch_calls;
                        return batch_answer;
                      }}});
  ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_EQ(batch_calls, 1);
  EXPECT_FALSE(State(*pool, good).delivered);
  EXPECT_EQ(State(*pool, good).attempts, 1) << "retried later, with backoff";
  for (const std::string& id : {good, bad, behind_bad}) MakeDue(*pool, id);
  batch_answer = absl::InvalidArgumentError("one row is bad");
  ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_TRUE(State(*pool, good).delivered);
  EXPECT_GT(State(*pool, bad).seconds_until_next, 1e9) << "parked alone";
  EXPECT_FALSE(State(*pool, behind_bad).delivered)
      << "the next row of its key was not sent in that pass";
  ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_TRUE(State(*pool, behind_bad).delivered) << "and goes once its key is free";
}

// A failure retrying cannot fix parks the row (never sent again) and releases its key.
TEST(OutboxOrderTest, PermanentFailureParksTheRow) {
  auto pool = NewPool();
  const std::string bad = EnqueueKeyed(*pool, "bad", "project-2");
  const std::string next = EnqueueKeyed(*pool, "good", "project-2");
  int bad_calls = 0;
  OutboxRelay relay(pool.get(), {.table = kTable},
                    {{"bad",
                      [&](const OutboxRow&) -> absl::Status {
                        ++bad_calls;
                        return absl::InvalidArgumentError("receiver refuses this request");
                      }},
                     {"good", [](const OutboxRow&) { return absl::OkStatus(); }}});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_EQ(bad_calls, 1);
  RowState parked = State(*pool, bad);
  EXPECT_FALSE(parked.delivered);
  EXPECT_EQ(parked.attempts, 1);
  EXPECT_EQ(parked.last_error, "receiver refuses this request");
  EXPECT_GT(parked.seconds_until_next, 1e9);  // 'infinity'
  EXPECT_TRUE(State(*pool, next).delivered);
}

// A parked row's handler runs in the transaction that parks it, with the refusal: once per
// row, and when it fails the row is not parked either (both or neither), and is tried again.
TEST(OutboxOrderTest, AParkedRowsHandlerRunsWithThePark) {
  auto pool = NewPool();
  const std::string bad = EnqueueKeyed(*pool, "bad", "project-3");
  std::vector<std::string> told;
  bool handler_fails = true;
  OutboxRelay::Options options{.table = kTable};
  options.on_parked["bad"] = [&](DbConnection& conn, const OutboxRow& row,
                                 const absl::Status& why) -> absl::Status {
    if (handler_fails) return absl::UnavailableError("cannot tell now");
    int n = 0;
    conn.session() << "SELECT count(*)::int FROM projects.outbox WHERE id = CAST(:id AS uuid)"
                      " AND next_attempt_time = 'infinity'",
        soci::use(row.id), soci::into(n);
    told.push_back(absl::StrCat(row.id, " ", why.message(), " parked=", n));
    return absl::OkStatus();
  };
  OutboxRelay relay(
      pool.get(), options,
      {{"bad", [](const OutboxRow&) { return absl::NotFoundError("no such thing"); }}});
  EXPECT_FALSE(relay.RelayOnce().ok());
  EXPECT_FALSE(State(*pool, bad).delivered);
  EXPECT_EQ(State(*pool, bad).attempts, 0) << "the park was rolled back with the handler";
  handler_fails = false;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_EQ(told, std::vector<std::string>{absl::StrCat(bad, " no such thing parked=1")});
  EXPECT_GT(State(*pool, bad).seconds_until_next, 1e9);
}

// A receiver over a quota (the orchestrator refusing a StartRun past a cap on active runs)
// answers RESOURCE_EXHAUSTED: the row is kept and tried again with backoff until there is
// room, never parked, and the later rows of its key wait behind it.
TEST(OutboxOrderTest, AQuotaRefusalIsRetriedWithBackoffNotParked) {
  auto pool = NewPool();
  const std::string first = EnqueueKeyed(*pool, "start", "project-3");
  const std::string second = EnqueueKeyed(*pool, "start", "project-3");
  int calls = 0;
  bool full = true;
  OutboxRelay relay(pool.get(), {.table = kTable, .base_backoff = absl::Seconds(10)},
                    {{"start", [&](const OutboxRow&) -> absl::Status {
                        ++calls;
                        return full ? absl::ResourceExhaustedError("too many active runs")
                                    : absl::OkStatus();
                      }}});
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_TRUE(relay.RelayOnce().ok());
    RowState state = State(*pool, first);
    EXPECT_FALSE(state.delivered);
    EXPECT_EQ(state.attempts, attempt);
    EXPECT_EQ(state.last_error, "too many active runs");
    EXPECT_GT(state.seconds_until_next, 1.0) << "backs off";
    EXPECT_LT(state.seconds_until_next, 1e9) << "not parked";
    EXPECT_EQ(State(*pool, second).attempts, 0) << "the next row of the key waits";
    MakeDueNow(*pool);
  }
  EXPECT_EQ(calls, 3);
  full = false;
  ASSERT_TRUE(relay.RelayOnce().ok());
  EXPECT_TRUE(State(*pool, first).delivered);
  EXPECT_TRUE(State(*pool, second).delivered);
}

}  // namespace
}  // namespace qai::common

namespace qai::common {
namespace {

void Exec(DbPool& pool, const std::string& sql) {
  absl::Status s = pool.Run([&](DbConnection& conn) {
    conn.session() << sql;
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s << "\n" << sql;
}

// ExecForId: a statement on one row, `:id` bound to it.
void ExecForId(DbPool& pool, const std::string& sql, const std::string& id) {
  absl::Status s = pool.Run([&](DbConnection& conn) {
    conn.session() << sql, soci::use(id);
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s << "\n" << sql;
}

// ExecForIdAgo: a statement on one row, `:id` bound to it and `:ago` to an interval such as
// "2 hours".
void ExecForIdAgo(DbPool& pool, const std::string& sql, const std::string& id,
                  const std::string& ago) {
  absl::Status s = pool.Run([&](DbConnection& conn) {
    conn.session() << sql, soci::use(id, "id"), soci::use(ago, "ago");
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s << "\n" << sql;
}

// Rows in the outbox of each kind, delivered or created `ago`.
std::string EnqueueDelivered(DbPool& pool, const std::string& delivered_ago) {
  const std::string id = Enqueue(pool, "t", "p");
  ExecForIdAgo(
      pool,
      "UPDATE projects.outbox SET attempts = 1, deliver_time = now() - CAST(:ago AS interval)"
      " WHERE id = CAST(:id AS uuid)",
      id, delivered_ago);
  return id;
}

std::string EnqueueCreated(DbPool& pool, const std::string& created_ago) {
  const std::string id = Enqueue(pool, "t", "p");
  ExecForIdAgo(pool,
               "UPDATE projects.outbox SET create_time = now() - CAST(:ago AS interval) WHERE id = "
               "CAST(:id AS uuid)",
               id, created_ago);
  return id;
}

std::string EnqueueParked(DbPool& pool, const std::string& created_ago) {
  const std::string id = EnqueueCreated(pool, created_ago);
  ExecForId(pool,
            "UPDATE projects.outbox SET attempts = 1, last_error = 'refused', next_attempt_time = "
            "'infinity'"
            " WHERE id = CAST(:id AS uuid)",
            id);
  return id;
}

// IndexScans: the scans PostgreSQL has counted on an index so far (-1: no such index). Called
// on a pool of one connection, so that the statements being measured ran on the same backend:
// a backend publishes its counters when idle, at once after pg_stat_force_next_flush().
int64_t IndexScans(DbPool& pool, const std::string& index) {
  int64_t scans = -1;
  EXPECT_TRUE(pool.Run([](DbConnection& conn) {
                    conn.session() << "SELECT pg_stat_force_next_flush()";
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_TRUE(pool.Run([&](DbConnection& conn) {
                    conn.session()
                        << "SELECT COALESCE((SELECT idx_scan FROM pg_stat_user_indexes"
                           " WHERE schemaname = 'projects' AND indexrelname = :name), -1)",
                        soci::use(index), soci::into(scans);
                    return absl::OkStatus();
                  })
                  .ok());
  return scans;
}

TEST(OutboxPruneTest, DeletesOnlyOldDeliveredRowsInBatches) {
  auto pool = NewPool();
  std::vector<std::string> old_delivered;
  for (int i = 0; i < 5; ++i) old_delivered.push_back(EnqueueDelivered(*pool, "2 hours"));
  const std::string recent = EnqueueDelivered(*pool, "10 minutes");
  const std::string just_delivered = EnqueueDelivered(*pool, "0 seconds");
  // Undelivered and parked rows stay however old they are.
  const std::string old_pending = EnqueueCreated(*pool, "3 days");
  const std::string old_parked = EnqueueParked(*pool, "3 days");

  OutboxRelay relay(pool.get(), {.table = kTable, .prune_after = absl::Hours(1), .prune_batch = 2},
                    {});
  EXPECT_EQ(relay.PruneOnce().value(), 2);
  EXPECT_EQ(relay.PruneOnce().value(), 2);
  EXPECT_EQ(relay.PruneOnce().value(), 1);
  EXPECT_EQ(relay.PruneOnce().value(), 0);
  for (const std::string& id : old_delivered) EXPECT_FALSE(State(*pool, id).exists) << id;
  EXPECT_TRUE(State(*pool, recent).exists);
  EXPECT_TRUE(State(*pool, just_delivered).exists);
  EXPECT_TRUE(State(*pool, old_pending).exists);
  EXPECT_TRUE(State(*pool, old_parked).exists);

  // A shorter prune_after takes the recent one too, still not the one delivered just now.
  OutboxRelay eager(pool.get(), {.table = kTable, .prune_after = absl::Minutes(5)}, {});
  EXPECT_EQ(eager.PruneOnce().value(), 1);
  EXPECT_FALSE(State(*pool, recent).exists);
  EXPECT_TRUE(State(*pool, just_delivered).exists);
  EXPECT_TRUE(State(*pool, old_pending).exists);
  EXPECT_TRUE(State(*pool, old_parked).exists);

  // A maintenance pass prunes batch after batch until nothing old is left.
  for (int i = 0; i < 7; ++i) EnqueueDelivered(*pool, "2 hours");
  ASSERT_TRUE(relay.MaintainOnce().ok());
  EXPECT_EQ(relay.PruneOnce().value(), 0);
  int rows = -1;
  ASSERT_TRUE(pool->Run([&](DbConnection& conn) {
                    conn.session() << "SELECT count(*)::int FROM projects.outbox", soci::into(rows);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(rows, 3);  // just_delivered, old_pending, old_parked

  OutboxRelay bad(pool.get(), {.table = "projects.outbox x"}, {});
  EXPECT_EQ(bad.PruneOnce().status().code(), absl::StatusCode::kInternal);
}

// Pruning finds old delivered rows through outbox_delivered (migration 0002), not by reading
// the whole table: a day of delivered rows is far bigger than what a pass deletes.
TEST(OutboxPruneTest, PruneReadsTheDeliveredRowsIndex) {
  auto pool = NewPool(/*size=*/1);
  Exec(*pool,
       "INSERT INTO projects.outbox (id, topic, payload, attempts, deliver_time)"
       " SELECT gen_random_uuid(), 't', '\\x00'::bytea, 1, now() - interval '10 minutes'"
       " FROM generate_series(1, 5000)");
  EnqueueDelivered(*pool, "2 days");
  Exec(*pool, "ANALYZE projects.outbox");
  OutboxRelay relay(pool.get(), {.table = kTable}, {});

  const int64_t delivered_before = IndexScans(*pool, "outbox_delivered");
  ASSERT_GE(delivered_before, 0) << "no index outbox_delivered";
  EXPECT_EQ(relay.PruneOnce().value(), 1);
  EXPECT_GT(IndexScans(*pool, "outbox_delivered"), delivered_before);
}

// The relay loop itself prunes once per maintenance_interval.
TEST(OutboxPruneTest, StartedRelayPrunesEveryMaintenanceInterval) {
  auto pool = NewPool();
  OutboxRelay relay(pool.get(),
                    {.table = kTable,
                     .poll_interval = absl::Milliseconds(20),
                     .maintenance_interval = absl::Milliseconds(50),
                     .prune_after = absl::Hours(1)},
                    {});
  relay.Start();
  for (int round = 0; round < 2; ++round) {
    const std::string old_delivered = EnqueueDelivered(*pool, "2 hours");
    const std::string recent = EnqueueDelivered(*pool, "1 minute");
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (State(*pool, old_delivered).exists && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(10));
    EXPECT_FALSE(State(*pool, old_delivered).exists) << "round " << round;
    EXPECT_TRUE(State(*pool, recent).exists) << "round " << round;
  }
  relay.Stop();
}

TEST(OutboxStatsTest, CountsPendingParkedAndTheOldestPendingAge) {
  auto pool = NewPool();
  OutboxRelay relay(pool.get(), {.table = kTable}, {});
  absl::StatusOr<OutboxStats> stats = relay.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pending, 0);
  EXPECT_EQ(stats->parked, 0);
  EXPECT_EQ(stats->oldest_pending_age, absl::ZeroDuration());

  Enqueue(*pool, "t", "due now");
  EnqueueCreated(*pool, "90 seconds");
  // Waiting for a retry is still pending.
  const std::string retrying = EnqueueCreated(*pool, "30 seconds");
  ExecForId(*pool,
            "UPDATE projects.outbox SET attempts = 3, next_attempt_time = now() + interval '1 hour'"
            " WHERE id = CAST(:id AS uuid)",
            retrying);
  // Older rows that are parked or delivered count as pending no more.
  EnqueueParked(*pool, "2 hours");
  EnqueueParked(*pool, "3 hours");
  const std::string delivered = EnqueueCreated(*pool, "4 hours");
  ExecForId(*pool, "UPDATE projects.outbox SET deliver_time = now() WHERE id = CAST(:id AS uuid)",
            delivered);

  stats = relay.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pending, 3);
  EXPECT_EQ(stats->parked, 2);
  EXPECT_GE(stats->oldest_pending_age, absl::Seconds(90));
  EXPECT_LT(stats->oldest_pending_age, absl::Seconds(100));

  // Parked rows alone: no pending age.
  Exec(*pool, "DELETE FROM projects.outbox WHERE next_attempt_time <> 'infinity'");
  stats = relay.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pending, 0);
  EXPECT_EQ(stats->parked, 2);
  EXPECT_EQ(stats->oldest_pending_age, absl::ZeroDuration());
}

// Stats reads the undelivered rows through a partial index of them (outbox_pending or
// outbox_undelivered_seq), not the whole table: a day of delivered rows is far bigger than the
// backlog.
TEST(OutboxStatsTest, StatsReadsThePendingRowsIndex) {
  auto pool = NewPool(/*size=*/1);
  Exec(*pool,
       "INSERT INTO projects.outbox (id, topic, payload, attempts, deliver_time)"
       " SELECT gen_random_uuid(), 't', '\\x00'::bytea, 1, now() - interval '10 minutes'"
       " FROM generate_series(1, 5000)");
  for (int i = 0; i < 3; ++i) Enqueue(*pool, "t", "p");
  Exec(*pool, "ANALYZE projects.outbox");
  OutboxRelay relay(pool.get(), {.table = kTable}, {});

  auto partial_index_scans = [&] {
    return IndexScans(*pool, "outbox_pending") + IndexScans(*pool, "outbox_undelivered_seq");
  };
  ASSERT_GE(IndexScans(*pool, "outbox_pending"), 0) << "no index outbox_pending";
  ASSERT_GE(IndexScans(*pool, "outbox_undelivered_seq"), 0) << "no index outbox_undelivered_seq";
  const int64_t before = partial_index_scans();
  absl::StatusOr<OutboxStats> stats = relay.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pending, 3);
  EXPECT_GT(partial_index_scans(), before);
}

TEST(OutboxHealthTest, UnhealthyWhileAPendingRowIsOlderThanStaleAfter) {
  auto pool = NewPool();
  Recorder recorder;
  recorder.result = absl::UnavailableError("receiver down");
  OutboxRelay relay(pool.get(), {.table = kTable, .stale_after = absl::Minutes(1)},
                    {{"t", recorder.Deliverer()}});
  EXPECT_TRUE(relay.Healthy()) << "before the first pass";
  ASSERT_TRUE(relay.MaintainOnce().ok());
  EXPECT_TRUE(relay.Healthy()) << "empty";

  // Parked rows are an operator's business, not a backlog: healthy.
  EnqueueParked(*pool, "1 hour");
  const std::string young = Enqueue(*pool, "t", "p");
  ASSERT_TRUE(relay.MaintainOnce().ok());
  EXPECT_TRUE(relay.Healthy());

  ExecForId(*pool,
            "UPDATE projects.outbox SET create_time = now() - interval '2 minutes' WHERE id = "
            "CAST(:id AS uuid)",
            young);
  EXPECT_TRUE(relay.Healthy()) << "changes with the next pass only";
  ASSERT_TRUE(relay.MaintainOnce().ok());
  EXPECT_FALSE(relay.Healthy());
  // Retrying does not make it younger.
  ASSERT_EQ(relay.RelayOnce().value(), 0);
  ASSERT_TRUE(relay.MaintainOnce().ok());
  EXPECT_FALSE(relay.Healthy());

  // Delivered: healthy again.
  {
    std::lock_guard lock(recorder.mu);
    recorder.result = absl::OkStatus();
  }
  MakeDue(*pool, young);
  ASSERT_EQ(relay.RelayOnce().value(), 1);
  ASSERT_TRUE(relay.MaintainOnce().ok());
  EXPECT_TRUE(relay.Healthy());

  // Stats that cannot be read do not count as a backlog (the database health reports that).
  EnqueueCreated(*pool, "10 minutes");
  ASSERT_TRUE(relay.MaintainOnce().ok());
  EXPECT_FALSE(relay.Healthy());
  Exec(*pool, "ALTER TABLE projects.outbox RENAME TO outbox_elsewhere");
  EXPECT_FALSE(relay.MaintainOnce().ok());
  EXPECT_TRUE(relay.Healthy());
}

// The relay loop itself reads the backlog once per maintenance_interval (and prunes).
TEST(OutboxHealthTest, StartedRelayTracksItsBacklog) {
  auto pool = NewPool();
  const std::string old_delivered = EnqueueDelivered(*pool, "2 hours");
  const std::string stale = EnqueueCreated(*pool, "10 minutes");
  Recorder recorder;
  recorder.result = absl::UnavailableError("receiver down");
  OutboxRelay relay(pool.get(),
                    {.table = kTable,
                     .poll_interval = absl::Milliseconds(20),
                     .base_backoff = absl::Milliseconds(10),
                     .max_backoff = absl::Milliseconds(20),
                     .maintenance_interval = absl::Milliseconds(50),
                     .prune_after = absl::Hours(1),
                     .stale_after = absl::Minutes(1)},
                    {{"t", recorder.Deliverer()}});
  relay.Start();
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while ((relay.Healthy() || State(*pool, old_delivered).exists) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_FALSE(relay.Healthy());
  EXPECT_FALSE(State(*pool, old_delivered).exists);
  EXPECT_GE(recorder.count(), 1u);

  {
    std::lock_guard lock(recorder.mu);
    recorder.result = absl::OkStatus();
  }
  deadline = absl::Now() + absl::Seconds(5);
  while (!relay.Healthy() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  relay.Stop();
  EXPECT_TRUE(relay.Healthy());
  EXPECT_TRUE(State(*pool, stale).delivered);
}

// A row its receiver keeps refusing with UNAVAILABLE backs off, each wait within the jitter of
// base * 2^attempt and never beyond max_backoff, while every other row (other keys, no key)
// is delivered.
TEST(OutboxTest, PoisonRowBacksOffUpToTheCapWhileOthersAreDelivered) {
  auto pool = NewPool();
  const std::string poison = EnqueueKeyed(*pool, "poison", "project-poison");
  std::set<std::string> others;
  for (int i = 0; i < 50; ++i)
    others.insert(EnqueueKeyed(*pool, "t", "project-" + std::to_string(i)));
  std::mutex mu;
  std::map<std::string, int> delivered;
  int poison_calls = 0;
  const absl::Duration base = absl::Seconds(1);
  const absl::Duration max = absl::Seconds(8);
  OutboxRelay relay(pool.get(),
                    {.table = kTable, .batch_size = 16, .base_backoff = base, .max_backoff = max},
                    {{"poison",
                      [&](const OutboxRow&) {
                        std::lock_guard lock(mu);
                        ++poison_calls;
                        return absl::UnavailableError("receiver keeps failing");
                      }},
                     {"t", [&](const OutboxRow& row) {
                        std::lock_guard lock(mu);
                        ++delivered[row.id];
                        return absl::OkStatus();
                      }}});
  constexpr double kTolerance = 0.5;  // seconds between the relay's now() and the check's
  std::vector<double> waits;
  int attempts_seen = 0;
  for (int pass = 0; pass < 60 && (attempts_seen < 8 || delivered.size() < 100); ++pass) {
    if (pass == 2) {  // rows without a key, written while the poison row is failing
      for (int i = 0; i < 50; ++i) others.insert(EnqueueKeyed(*pool, "t", ""));
    }
    // Time passes: the poison row is due again.
    MakeDue(*pool, poison);
    ASSERT_TRUE(relay.RelayOnce().ok());
    RowState state = State(*pool, poison);
    ASSERT_FALSE(state.delivered);
    if (state.attempts == attempts_seen) continue;  // not in this pass's batch
    ASSERT_EQ(state.attempts, attempts_seen + 1);
    attempts_seen = state.attempts;
    const absl::Duration full = std::min(base * std::ldexp(1.0, attempts_seen - 1), max);
    EXPECT_GE(state.seconds_until_next, absl::ToDoubleSeconds(full / 2) - kTolerance)
        << "attempt " << attempts_seen;
    EXPECT_LE(state.seconds_until_next, absl::ToDoubleSeconds(full) + kTolerance)
        << "attempt " << attempts_seen;
    EXPECT_LE(state.seconds_until_next, absl::ToDoubleSeconds(max) + kTolerance)
        << "attempt " << attempts_seen;
    waits.push_back(state.seconds_until_next);
  }
  EXPECT_GE(attempts_seen, 8);
  ASSERT_GE(waits.size(), 4u);
  EXPECT_GT(waits[3], waits[0]) << "the wait grows";
  EXPECT_EQ(poison_calls, attempts_seen);
  EXPECT_EQ(State(*pool, poison).last_error, "receiver keeps failing");
  ASSERT_EQ(others.size(), 100u);
  EXPECT_EQ(delivered.size(), 100u);
  for (const std::string& id : others) {
    EXPECT_EQ(delivered[id], 1) << id;
    EXPECT_TRUE(State(*pool, id).delivered) << id;
  }
}

}  // namespace
}  // namespace qai::common

namespace qai::common {
namespace {

absl::StatusOr<Config> ParseServiceArgs(std::vector<std::string> args,
                                        std::map<std::string, std::string> env = {}) {
  std::vector<const char*> argv = {"service", "--database-url=host=nowhere"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return Config::Parse(
      ServiceOptions(), static_cast<int>(argv.size()), argv.data(),
      [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
      });
}

TEST(OutboxOptionsTest, FromServiceConfiguration) {
  absl::StatusOr<Config> config = ParseServiceArgs({});
  ASSERT_TRUE(config.ok()) << config.status();
  OutboxRelay::Options options = OutboxOptionsFrom(*config, "projects.outbox");
  EXPECT_EQ(options.table, "projects.outbox");
  EXPECT_EQ(options.max_backoff, absl::Seconds(60));
  EXPECT_EQ(options.prune_after, absl::Hours(24));
  EXPECT_EQ(options.stale_after, absl::Minutes(5));
  EXPECT_EQ(options.batch_size, OutboxRelay::Options().batch_size)
      << "the rest keep their defaults";

  config = ParseServiceArgs({"--outbox-max-backoff=5s", "--outbox-prune-after", "2h"},
                            {{"QAI_OUTBOX_STALE_AFTER", "90s"}});
  ASSERT_TRUE(config.ok()) << config.status();
  options = OutboxOptionsFrom(*config, "messages.outbox");
  EXPECT_EQ(options.table, "messages.outbox");
  EXPECT_EQ(options.max_backoff, absl::Seconds(5));
  EXPECT_EQ(options.prune_after, absl::Hours(2));
  EXPECT_EQ(options.stale_after, absl::Seconds(90));

  for (const char* bad :
       {"--outbox-max-backoff=soon", "--outbox-prune-after=-1h", "--outbox-stale-after=5"}) {
    absl::StatusOr<Config> refused = ParseServiceArgs({bad});
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace qai::common

namespace qai::common {
namespace {

TEST(OutboxMetricsTest, CountsDeliveriesAndFailuresAndShowsTheBacklog) {
  auto pool = NewPool();
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Create("");
  ASSERT_TRUE(metrics.ok());
  Enqueue(*pool, "good", "a");
  Enqueue(*pool, "good", "b");
  Enqueue(*pool, "bad", "c");
  Recorder good;
  Recorder bad;
  bad.result = absl::UnavailableError("receiver down");
  OutboxRelay::Options options{.table = kTable, .base_backoff = absl::Seconds(10)};
  options.metrics = metrics->get();
  OutboxRelay relay(pool.get(), options, {{"good", good.Deliverer()}, {"bad", bad.Deliverer()}});
  ASSERT_TRUE(relay.RelayOnce().ok());
  ASSERT_TRUE(relay.MaintainOnce().ok());

  const std::string text = (*metrics)->Render();
  const std::map<std::string, std::string> table = {{"table", kTable}};
  EXPECT_EQ(testing::SampleValue(text, "qai_outbox_delivered_total", table), 2);
  EXPECT_EQ(testing::SampleValue(text, "qai_outbox_delivery_failures_total", table), 1);
  EXPECT_EQ(testing::SampleValue(text, "qai_outbox_pending", table), 1);
  EXPECT_EQ(testing::SampleValue(text, "qai_outbox_parked", table), 0);
  std::optional<double> age =
      testing::SampleValue(text, "qai_outbox_oldest_pending_age_seconds", table);
  ASSERT_TRUE(age.has_value());
  EXPECT_GE(*age, 0);
  EXPECT_LT(*age, 60);
}

}  // namespace
}  // namespace qai::common
