#include "common/pg_pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <latch>
#include <mutex>
#include <set>

#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/support/pg_server.h"

namespace qai::common {
namespace {

const std::vector<PgStatement> kStatements = {
    {"insert", "INSERT INTO t (k, v) VALUES (CAST($1 AS int), $2) RETURNING k"},
    {"get", "SELECT v FROM t WHERE k = CAST($1 AS int)"},
    {"sleep", "SELECT pg_sleep(CAST($1 AS float8))"},
    {"count", "SELECT count(*) FROM t"},
    {"backend", "SELECT pg_backend_pid()"},
};

class PgPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::PgServer::Shared().CreateDatabase(/*migrated=*/false);
    soci::session s(soci::postgresql, url_);
    s << "CREATE TABLE t (k int PRIMARY KEY, v text)";
  }

  std::unique_ptr<PgPipeline> Start(int connections, size_t max_queue = 4096) {
    return Start({.url = url_, .connections = connections, .max_queue = max_queue});
  }
  std::unique_ptr<PgPipeline> Start(PgPipeline::Options options) {
    options.url = url_;
    auto p = PgPipeline::Start(std::move(options), kStatements);
    EXPECT_TRUE(p.ok()) << p.status();
    return std::move(*p);
  }

  static absl::StatusOr<PgRows> Run(PgPipeline& p, std::string_view st,
                                    std::vector<PgValue> params) {
    std::promise<absl::StatusOr<PgRows>> done;
    p.Execute(st, std::move(params),
              [&](absl::StatusOr<PgRows> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }

  std::string url_;
};

TEST_F(PgPipelineTest, ExecutesAndReturnsRows) {
  auto p = Start(2);
  auto inserted = Run(*p, "insert", {"1", "one"});
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_EQ(inserted->affected, 1);
  ASSERT_EQ(inserted->rows.size(), 1u);
  EXPECT_EQ(inserted->rows[0][0], "1");
  ASSERT_TRUE(Run(*p, "insert", {"2", std::nullopt}).ok());
  auto got = Run(*p, "get", {"1"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->rows[0][0], "one");
  auto null_value = Run(*p, "get", {"2"});
  ASSERT_TRUE(null_value.ok());
  EXPECT_FALSE(null_value->rows[0][0].has_value());
  EXPECT_TRUE(Run(*p, "get", {"3"})->rows.empty());
}

TEST_F(PgPipelineTest, UnknownStatementIsInternal) {
  auto p = Start(1);
  EXPECT_EQ(Run(*p, "nope", {}).status().code(), absl::StatusCode::kInternal);
}

// One connection busy sleeping lets the next statements queue up into one batch, which
// includes a duplicate key: only that statement fails, the others commit.
TEST_F(PgPipelineTest, OneFailureInABatchFailsOnlyItsOwnStatement) {
  auto p = Start(1);
  ASSERT_TRUE(Run(*p, "insert", {"5", "first"}).ok());
  std::promise<void> slept;
  p->Execute("sleep", {"0.3"}, [&](absl::StatusOr<PgRows>) { slept.set_value(); });
  std::vector<std::promise<absl::StatusOr<PgRows>>> results(10);
  for (int i = 0; i < 10; ++i) {
    p->Execute("insert", {std::to_string(i), "v"},
               [&, i](absl::StatusOr<PgRows> r) { results[i].set_value(std::move(r)); });
  }
  slept.get_future().get();
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<PgRows> r = results[i].get_future().get();
    if (i == 5) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
    } else {
      EXPECT_TRUE(r.ok()) << i << ": " << r.status();
    }
  }
  EXPECT_EQ(Run(*p, "count", {})->rows[0][0], "10");
  EXPECT_EQ(Run(*p, "get", {"5"})->rows[0][0], "first");
}

TEST_F(PgPipelineTest, ManyConcurrentCallersAllAnswered) {
  auto p = Start(3);
  constexpr int kCalls = 2000;
  std::atomic<int> ok{0};
  std::latch done(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    p->Execute("insert", {std::to_string(i), "x"}, [&](absl::StatusOr<PgRows> r) {
      if (r.ok() && r->affected == 1) ok++;
      done.count_down();
    });
  }
  done.wait();
  EXPECT_EQ(ok.load(), kCalls);
  EXPECT_EQ(Run(*p, "count", {})->rows[0][0], std::to_string(kCalls));
}

// Work goes to the first lane while it keeps up: what arrives while it is busy waits for it
// and goes as its next batch, instead of waking another connection per statement.
TEST_F(PgPipelineTest, WorkStaysOnOneConnectionWhileItKeepsUp) {
  auto p = Start({.connections = 4, .spill_after = absl::Hours(1)});
  std::mutex mu;
  std::set<std::string> backends;
  for (int round = 0; round < 20; ++round) {
    std::latch done(8);
    for (int i = 0; i < 8; ++i) {
      p->Execute("backend", {}, [&](absl::StatusOr<PgRows> r) {
        ASSERT_TRUE(r.ok()) << r.status();
        std::lock_guard lock(mu);
        backends.insert(*r->rows[0][0]);
        done.count_down();
      });
    }
    done.wait();
  }
  EXPECT_EQ(backends.size(), 1u);
}

// A statement that holds its lane (a lock wait, a slow disk) does not hold the others: after
// spill_after the oldest waiting statement goes out on another connection.
TEST_F(PgPipelineTest, SlowStatementSpillsToAnotherLane) {
  auto p = Start({.connections = 2, .spill_after = absl::Milliseconds(50)});
  std::atomic<bool> slept{false};
  std::promise<void> sleep_done;
  p->Execute("sleep", {"1.5"}, [&](absl::StatusOr<PgRows> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    slept = true;
    sleep_done.set_value();
  });
  std::this_thread::sleep_for(
      std::chrono::milliseconds(100));  // the first lane has taken the sleep
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<PgRows> count = Run(*p, "count", {});
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_FALSE(slept.load()) << "the count waited for the sleep";
  EXPECT_GE(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(50));  // it waited spill_after
  sleep_done.get_future().get();
}

// A whole batch waiting starts another lane at once, whatever spill_after says.
TEST_F(PgPipelineTest, AFullBatchWaitingSpillsAtOnce) {
  auto p = Start({.connections = 2, .max_batch = 4, .spill_after = absl::Hours(1)});
  std::atomic<bool> slept{false};
  std::promise<void> sleep_done;
  p->Execute("sleep", {"1.5"}, [&](absl::StatusOr<PgRows>) {
    slept = true;
    sleep_done.set_value();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::latch done(4);
  std::atomic<int> answered_before_sleep{0};
  for (int i = 0; i < 4; ++i) {
    p->Execute("count", {}, [&](absl::StatusOr<PgRows> r) {
      if (r.ok() && !slept.load()) answered_before_sleep++;
      done.count_down();
    });
  }
  done.wait();
  EXPECT_EQ(answered_before_sleep.load(), 4);
  sleep_done.get_future().get();
}

TEST_F(PgPipelineTest, FullQueueIsResourceExhausted) {
  auto p = Start(1, /*max_queue=*/2);
  std::promise<void> slept;
  p->Execute("sleep", {"0.3"}, [&](absl::StatusOr<PgRows>) { slept.set_value(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the lane has taken the sleep
  std::vector<absl::StatusCode> codes(4, absl::StatusCode::kUnknown);
  std::latch done(4);
  for (int i = 0; i < 4; ++i) {
    p->Execute("count", {}, [&, i](absl::StatusOr<PgRows> r) {
      codes[i] = r.status().code();
      done.count_down();
    });
  }
  done.wait();
  EXPECT_EQ(codes[0], absl::StatusCode::kOk);
  EXPECT_EQ(codes[1], absl::StatusCode::kOk);
  EXPECT_EQ(codes[2], absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(codes[3], absl::StatusCode::kResourceExhausted);
  slept.get_future().get();
}

TEST_F(PgPipelineTest, StopFinishesQueuedWorkThenRefuses) {
  auto p = Start(1);
  std::atomic<int> answered{0};
  p->Execute("sleep", {"0.2"}, [&](absl::StatusOr<PgRows> r) { answered += r.ok(); });
  for (int i = 0; i < 5; ++i)
    p->Execute("count", {}, [&](absl::StatusOr<PgRows> r) { answered += r.ok(); });
  p->Stop();
  EXPECT_EQ(answered.load(), 6);
  EXPECT_EQ(Run(*p, "count", {}).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(PgPipelineTest, BadUrlIsUnavailableNotAHang) {
  auto p =
      PgPipeline::Start({.url = "host=127.0.0.1 port=1 dbname=x connect_timeout=2"}, kStatements);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Run(**p, "count", {}).status().code(), absl::StatusCode::kUnavailable);
}

// Last: restarts the shared server. Calls fail fast while it is down and work again after,
// on the same pipeline.
TEST_F(PgPipelineTest, SurvivesADatabaseRestart) {
  auto p = Start(2);
  ASSERT_TRUE(Run(*p, "insert", {"1", "a"}).ok());
  ASSERT_TRUE(testing::PgServer::Shared().Stop().ok());
  EXPECT_EQ(Run(*p, "count", {}).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(testing::PgServer::Shared().Start().ok());
  // Every lane sees its old connection is gone before sending into it.
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<PgRows> after = Run(*p, "count", {});
    ASSERT_TRUE(after.ok()) << i << ": " << after.status();
    EXPECT_EQ(after->rows[0][0], "1");
  }
}

}  // namespace
}  // namespace qai::common
