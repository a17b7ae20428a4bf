#include "common/db_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "soci/postgresql/soci-postgresql.h"
#include "tests/support/pg_server.h"

namespace qai::common {
namespace {

using qai::testing::PgServer;

std::unique_ptr<DbPool> NewPool(int size = 4, absl::Duration acquire_timeout = absl::Seconds(5)) {
  absl::StatusOr<std::unique_ptr<DbPool>> pool =
      DbPool::Create({.url = PgServer::Shared().CreateDatabase(),
                      .size = size,
                      .acquire_timeout = acquire_timeout});
  if (!pool.ok()) throw std::runtime_error(pool.status().ToString());
  return std::move(*pool);
}

void CreateItems(DbPool& pool);

// Health must not turn NOT_SERVING just because every pooled connection is busy.
TEST(DbPoolPingTest, PingWorksWhileThePoolIsExhausted) {
  std::unique_ptr<DbPool> pool = NewPool(/*size=*/2, absl::Milliseconds(200));
  auto a = pool->Acquire();
  auto b = pool->Acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(pool->Acquire().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(pool->Ping().ok());
}

// A statement blocked on a lock gives up after lock_timeout (kSessionSetup) instead of holding
// its caller, and the caller may retry.
TEST(DbPoolPingTest, LockWaitsAreBounded) {
  std::unique_ptr<DbPool> pool = NewPool(2);
  CreateItems(*pool);
  auto holder = pool->Acquire();
  ASSERT_TRUE(holder.ok());
  (*holder)->session().begin();
  (*holder)->session() << "LOCK TABLE items IN ACCESS EXCLUSIVE MODE";
  const absl::Time start = absl::Now();
  absl::Status s = pool->Run([](DbConnection& conn) {
    int n = 0;
    conn.session() << "SELECT count(*) FROM items", soci::into(n);
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  (*holder)->session().rollback();
}

void CreateItems(DbPool& pool) {
  ASSERT_TRUE(pool.Run([](DbConnection& conn) {
                    conn.session()
                        << "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)";
                    return absl::OkStatus();
                  })
                  .ok());
}

void Insert(DbConnection& conn, int id, const std::string& name) {
  conn.session() << "INSERT INTO items (id, name) VALUES (:id, :name)", soci::use(id),
      soci::use(name);
}

long long CountItems(DbPool& pool) {
  long long count = -1;
  absl::Status s = pool.Run([&](DbConnection& conn) {
    conn.session() << "SELECT count(*) FROM items", soci::into(count);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return count;
}

TEST(DbPoolTest, CreateValidatesOptions) {
  EXPECT_EQ(DbPool::Create({.url = ""}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DbPool::Create({.url = "host=x", .size = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DbPoolTest, UnreachableDatabaseIsUnavailableNotFatal) {
  // Connections open lazily: the pool can be created while the database is down.
  auto pool =
      DbPool::Create({.url = "host=127.0.0.1 port=1 user=postgres dbname=none connect_timeout=2",
                      .size = 1,
                      .acquire_timeout = absl::Seconds(1)});
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ((*pool)->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*pool)->Transaction([](DbConnection&) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kUnavailable);
  // The failed connection does not stay counted as open.
  EXPECT_EQ((*pool)->stats().open, 0);
  EXPECT_EQ((*pool)->stats().in_use, 0);
}

TEST(DbPoolTest, PingWorks) {
  auto pool = NewPool();
  EXPECT_TRUE(pool->Ping().ok());
}

TEST(DbPoolTest, TransactionCommits) {
  auto pool = NewPool();
  CreateItems(*pool);
  absl::Status s = pool->Transaction([](DbConnection& conn) {
    Insert(conn, 1, "one");
    Insert(conn, 2, "two");
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(CountItems(*pool), 2);
}

TEST(DbPoolTest, NonOkStatusRollsBack) {
  auto pool = NewPool();
  CreateItems(*pool);
  absl::Status s = pool->Transaction([](DbConnection& conn) {
    Insert(conn, 1, "one");
    return absl::FailedPreconditionError("etag mismatch");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "etag mismatch");  // the caller's own status comes back unchanged
  EXPECT_EQ(CountItems(*pool), 0);
}

TEST(DbPoolTest, SqlErrorIsInternalRolledBackAndConnectionReusable) {
  auto pool = NewPool(/*size=*/1);
  CreateItems(*pool);
  absl::Status s = pool->Transaction([](DbConnection& conn) {
    Insert(conn, 1, "one");
    conn.session() << "SELECT * FROM no_such_table";
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_EQ(std::string(s.message()).find("no_such_table"), std::string::npos) << s;
  EXPECT_EQ(CountItems(*pool), 0);

  // The one connection is back in the pool, out of the aborted transaction, and usable.
  s = pool->Transaction([](DbConnection& conn) {
    Insert(conn, 1, "one");
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(CountItems(*pool), 1);
  EXPECT_EQ(pool->stats().open, 1);
  EXPECT_EQ(pool->stats().in_use, 0);
}

TEST(DbPoolTest, NonDatabaseExceptionIsInternalAndRolledBack) {
  auto pool = NewPool(1);
  CreateItems(*pool);
  absl::Status s = pool->Transaction([](DbConnection& conn) -> absl::Status {
    Insert(conn, 1, "one");
    throw std::runtime_error("bug in a store");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(CountItems(*pool), 0);
}

TEST(DbPoolTest, UniqueViolationIsAlreadyExists) {
  auto pool = NewPool();
  CreateItems(*pool);
  ASSERT_TRUE(pool->Transaction([](DbConnection& conn) {
                    Insert(conn, 1, "one");
                    return absl::OkStatus();
                  })
                  .ok());
  absl::Status s = pool->Transaction([](DbConnection& conn) {
    Insert(conn, 2, "two");
    Insert(conn, 1, "again");
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_EQ(CountItems(*pool), 1);  // row 2 rolled back with the failed statement
}

TEST(DbPoolTest, MapDbErrorBySqlState) {
  auto code = [](const char* state) {
    return MapDbError(soci::postgresql_soci_error("msg", state)).code();
  };
  EXPECT_EQ(code("23505"), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(code("40001"), absl::StatusCode::kAborted);
  EXPECT_EQ(code("40P01"), absl::StatusCode::kAborted);
  EXPECT_EQ(code("08006"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(code("57P01"), absl::StatusCode::kUnavailable);
  // Timed-out statements and lock waits were rolled back: safe to retry.
  EXPECT_EQ(code("57014"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(code("55P03"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(code("42P01"), absl::StatusCode::kInternal);
  absl::Status internal =
      MapDbError(soci::postgresql_soci_error("relation secret_table does not exist", "42P01"));
  EXPECT_EQ(std::string(internal.message()).find("secret_table"), std::string::npos);
  EXPECT_EQ(MapDbError(std::runtime_error("x")).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(SqlState(soci::postgresql_soci_error("m", "23505")), "23505");
  EXPECT_EQ(SqlState(std::runtime_error("x")), "");
}

TEST(DbPoolTest, PoolSizeBoundsAcquire) {
  auto pool = NewPool(/*size=*/2, /*acquire_timeout=*/absl::Milliseconds(200));
  absl::StatusOr<DbPool::Lease> a = pool->Acquire();
  absl::StatusOr<DbPool::Lease> b = pool->Acquire();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(&**a, &**b);
  DbPool::Stats stats = pool->stats();
  EXPECT_EQ(stats.size, 2);
  EXPECT_EQ(stats.open, 2);
  EXPECT_EQ(stats.in_use, 2);
  EXPECT_EQ(stats.waiting, 0);

  const absl::Time start = absl::Now();
  absl::StatusOr<DbPool::Lease> c = pool->Acquire();
  const absl::Duration waited = absl::Now() - start;
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_GE(waited, absl::Milliseconds(190));
  EXPECT_LT(waited, absl::Seconds(2));
  EXPECT_EQ(pool->stats().in_use, 2);
  EXPECT_EQ(pool->stats().waiting, 0);

  // A Transaction also gives up rather than queueing forever.
  EXPECT_EQ(pool->Transaction([](DbConnection&) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kUnavailable);
}

TEST(DbPoolTest, ReleaseWakesWaitingAcquire) {
  auto pool = NewPool(/*size=*/1, /*acquire_timeout=*/absl::Seconds(10));
  auto held = std::make_unique<absl::StatusOr<DbPool::Lease>>(pool->Acquire());
  ASSERT_TRUE(held->ok()) << held->status();
  DbConnection* first = &***held;

  std::promise<DbConnection*> second_conn;
  std::thread waiter([&] {
    absl::StatusOr<DbPool::Lease> second = pool->Acquire();
    second_conn.set_value(second.ok() ? &**second : nullptr);
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (pool->stats().waiting == 0 && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(1));
  DbPool::Stats stats = pool->stats();
  EXPECT_EQ(stats.waiting, 1);
  EXPECT_EQ(stats.in_use, 1);
  EXPECT_EQ(stats.open, 1);

  const absl::Time released = absl::Now();
  held.reset();
  std::future<DbConnection*> result = second_conn.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_LT(absl::Now() - released, absl::Seconds(2)) << "waiter should not sit out its timeout";
  EXPECT_EQ(result.get(), first) << "the released connection is reused";
  waiter.join();
  stats = pool->stats();
  EXPECT_EQ(stats.waiting, 0);
  EXPECT_EQ(stats.in_use, 0);
  EXPECT_EQ(stats.open, 1);
}

TEST(DbPoolTest, ConcurrentTransactionsShareTheBoundedPool) {
  auto pool = NewPool(/*size=*/3, absl::Seconds(10));
  CreateItems(*pool);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        absl::Status s = pool->Transaction([&](DbConnection& conn) {
          Insert(conn, t * 100 + i, "x");
          return absl::OkStatus();
        });
        if (!s.ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(CountItems(*pool), 80);
  EXPECT_LE(pool->stats().open, 3);
  EXPECT_EQ(pool->stats().in_use, 0);
}

struct AddOne {
  static inline std::atomic<int> constructed{0};
  int in = 0;
  int out = 0;
  soci::statement statement;
  explicit AddOne(soci::session& sql)
      : statement(
            (sql.prepare << "SELECT CAST(:in AS integer) + 1", soci::use(in), soci::into(out))) {
    constructed.fetch_add(1);
  }
  int Run(int value) {
    in = value;
    statement.execute(true);
    return out;
  }
};

TEST(DbPoolTest, PreparedIsOneInstancePerConnection) {
  AddOne::constructed = 0;
  auto pool = NewPool(/*size=*/2);
  AddOne* seen = nullptr;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool->Run([&](DbConnection& conn) {
                      AddOne& add = conn.Prepared<AddOne>();
                      if (seen == nullptr) seen = &add;
                      EXPECT_EQ(&add, seen);
                      EXPECT_EQ(&conn.Prepared<AddOne>(), &add);
                      EXPECT_EQ(add.Run(i), i + 1);
                      return absl::OkStatus();
                    })
                    .ok());
  }
  EXPECT_EQ(AddOne::constructed.load(), 1);

  // Two connections at once: each has its own instance.
  absl::StatusOr<DbPool::Lease> a = pool->Acquire();
  absl::StatusOr<DbPool::Lease> b = pool->Acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  AddOne& from_a = (*a)->Prepared<AddOne>();
  AddOne& from_b = (*b)->Prepared<AddOne>();
  EXPECT_NE(&from_a, &from_b);
  EXPECT_TRUE(&from_a == seen || &from_b == seen);
  EXPECT_EQ(AddOne::constructed.load(), 2);
  EXPECT_EQ(from_a.Run(41), 42);
  EXPECT_EQ(from_b.Run(9), 10);
}

// Restores the shared server if a test below leaves it stopped: later tests need it.
class ServerRunningGuard {
 public:
  ~ServerRunningGuard() {
    PgServer& server = PgServer::Shared();
    if (!server.running()) {
      absl::Status started = server.Start();
      EXPECT_TRUE(started.ok()) << started;
    }
  }
};

void WarmConnections(DbPool& pool, int n) {
  std::vector<std::unique_ptr<absl::StatusOr<DbPool::Lease>>> leases;
  for (int i = 0; i < n; ++i) {
    leases.push_back(std::make_unique<absl::StatusOr<DbPool::Lease>>(pool.Acquire()));
    ASSERT_TRUE(leases.back()->ok()) << leases.back()->status();
    (***leases.back()).session() << "SELECT 1";
  }
  leases.clear();
  ASSERT_EQ(pool.stats().open, n);
}

// These restart the shared server, so they come last in this file.
TEST(DbPoolRestartTest, ReconnectsAfterRestart) {
  ServerRunningGuard guard;
  auto pool = NewPool(/*size=*/1);
  CreateItems(*pool);
  WarmConnections(*pool, 1);
  AddOne::constructed = 0;
  ASSERT_TRUE(pool->Run([](DbConnection& conn) {
                    return conn.Prepared<AddOne>().Run(1) == 2 ? absl::OkStatus()
                                                               : absl::InternalError("bad");
                  })
                  .ok());
  ASSERT_EQ(AddOne::constructed.load(), 1);

  ASSERT_TRUE(PgServer::Shared().Restart().ok());

  absl::Status s = pool->Transaction([](DbConnection& conn) {
    Insert(conn, 1, "after restart");
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(CountItems(*pool), 1);
  // The new session has a fresh prepared bundle (the old statements died with the old session).
  ASSERT_TRUE(pool->Run([](DbConnection& conn) {
                    return conn.Prepared<AddOne>().Run(5) == 6 ? absl::OkStatus()
                                                               : absl::InternalError("bad");
                  })
                  .ok());
  EXPECT_EQ(AddOne::constructed.load(), 2);
  EXPECT_TRUE(pool->Ping().ok());
}

TEST(DbPoolRestartTest, NextTransactionSucceedsWithSeveralStaleConnections) {
  ServerRunningGuard guard;
  auto pool = NewPool(/*size=*/3);
  CreateItems(*pool);
  WarmConnections(*pool, 3);
  ASSERT_TRUE(PgServer::Shared().Restart().ok());
  absl::Status s = pool->Transaction([](DbConnection& conn) {
    Insert(conn, 1, "after restart");
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
}

TEST(DbPoolRestartTest, UnavailableWhileStoppedThenRecovers) {
  ServerRunningGuard guard;
  auto pool = NewPool(/*size=*/2, absl::Seconds(2));
  CreateItems(*pool);
  WarmConnections(*pool, 1);

  ASSERT_TRUE(PgServer::Shared().Stop().ok());
  auto insert = [](DbConnection& conn) {
    Insert(conn, 1, "x");
    return absl::OkStatus();
  };
  EXPECT_EQ(pool->Transaction(insert).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool->Run(insert).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool->Acquire().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool->stats().in_use, 0);
  EXPECT_EQ(pool->stats().open, 0) << "dead connections are discarded, not kept";

  ASSERT_TRUE(PgServer::Shared().Start().ok());
  absl::Status s = pool->Transaction(insert);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(CountItems(*pool), 1);
  EXPECT_TRUE(PgServer::Shared().running());
}

}  // namespace
}  // namespace qai::common
