#include "tools/orchbench/run_batch.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qai::orchbench {
namespace {

using soci::into;
using soci::use;

#define US(col) "(EXTRACT(EPOCH FROM " col ") * 1000000)::bigint"

// UuidArray: ids as a PostgreSQL array literal, to bind as one text parameter.
std::string UuidArray(const std::vector<std::string>& ids) {
  return absl::StrCat("{", absl::StrJoin(ids, ","), "}");
}

}  // namespace

absl::StatusOr<BatchResult> RunBatch(const Orchestrator& orchestrator, common::DbPool& db,
                                     const BatchOptions& options) {
  BatchResult result;
  std::vector<std::string> run_ids;
  std::mutex mu;
  std::atomic<size_t> next{0};
  const absl::Time started = absl::Now();
  std::vector<std::thread> callers;
  for (int c = 0; c < std::max(1, options.callers); ++c) {
    callers.emplace_back([&] {
      for (size_t i = next++; i < options.prompts.size(); i = next++) {
        absl::StatusOr<orchestrator::v1::Run> run = orchestrator.StartRun(options.prompts[i]);
        std::lock_guard lock(mu);
        if (run.ok()) {
          run_ids.push_back(run->id());
        } else {
          ++result.start_errors;
          if (result.first_error.empty()) result.first_error = run.status().ToString();
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  result.start_seconds = absl::ToDoubleSeconds(absl::Now() - started);
  result.runs = static_cast<int>(run_ids.size());
  if (run_ids.empty()) return result;

  const std::string ids = UuidArray(run_ids);
  const absl::Time until = started + options.timeout;
  for (;;) {
    int active = 0;
    absl::Status s = db.Run([&](common::DbConnection& conn) -> absl::Status {
      conn.session() << "SELECT count(*) FROM orchestrator.runs WHERE id = ANY(CAST(:ids AS "
                        "uuid[])) AND state IN (1, 2)",
          into(active), use(ids);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    if (active == 0 || absl::Now() > until) {
      result.unfinished = active;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::vector<int64_t> queued, worked, total;
  int64_t first_create = INT64_MAX, last_end = 0;
  absl::Status s = db.Run([&](common::DbConnection& conn) -> absl::Status {
    soci::rowset<soci::row> rows =
        (conn.session().prepare << "SELECT state::int, " US("create_time") ", COALESCE(" US("start_time") ", 0),"
                                   " COALESCE(" US("end_time") ", 0) FROM orchestrator.runs"
                                   " WHERE id = ANY(CAST(:ids AS uuid[]))",
         use(ids));
    for (const soci::row& r : rows) {
      const int state = r.get<int>(0);
      const int64_t create = r.get<long long>(1), start = r.get<long long>(2),
                    end = r.get<long long>(3);
      result.succeeded += state == 3;
      result.failed += state == 4;
      result.cancelled += state == 5;
      first_create = std::min(first_create, create);
      if (start != 0) queued.push_back((start - create) * 1000);
      if (end != 0) {
        last_end = std::max(last_end, end);
        total.push_back((end - create) * 1000);
        if (start != 0) worked.push_back((end - start) * 1000);
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (last_end > first_create) {
    result.seconds = static_cast<double>(last_end - first_create) / 1e6;
    result.rate =
        static_cast<double>(result.succeeded + result.failed + result.cancelled) / result.seconds;
  }
  result.queued = chainbench::Summarize(std::move(queued));
  result.worked = chainbench::Summarize(std::move(worked));
  result.total = chainbench::Summarize(std::move(total));
  return result;
}

}  // namespace qai::orchbench
