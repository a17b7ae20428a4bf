#pragma once
// ProjectStore: the `projects` schema behind plain structs. SQL lives here and nowhere else;
// handlers pass in principals' ids and get records or absl::Status errors back.
//
// The two hottest calls, Get and Create, are one self-contained statement each and go through
// a common::PgPipeline (batched, non-blocking; results arrive on a callback). The rest use the
// SOCI pool: they are multi-step transactions, and rarer.
//
// Mutations that carry a request id record it in projects.idempotency inside the same
// transaction, so a repeat (even a concurrent one) finds the first result instead of acting
// twice. Creating and deleting a project also write outbox rows for the messages and
// orchestrator services in that transaction.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/db_pool.h"
#include "common/pg_pipeline.h"

namespace qai::projects {

// ProjectRecord: one row of projects.projects.
struct ProjectRecord {
  std::string id;
  std::string name;
  std::string display_name;
  std::string owner;
  absl::Time create_time;
  absl::Time update_time;
  int64_t version = 0;
  std::string latest_run_id;
  std::string latest_run_state;
};

// Who acts: owner-scoped principals see only their projects.
struct Actor {
  std::string id;
  // False for ADMIN and SERVICE principals, who see every project.
  bool owner_scoped = true;
};

struct CreateParams {
  Actor actor;
  std::string id;  // chosen by the caller, so the outbox payload can name the project
  std::string display_name;
  std::string request_id;  // empty: no idempotency
  // The outbox payload announcing the initial prompt (a serialized CreateMessageRequest);
  // the store does not look inside it.
  std::string initial_message_payload;
  // The x-request-id the outbox row carries downstream.
  std::string trace_request_id;
};

struct ListParams {
  Actor actor;
  int page_size = 20;
  // Keyset cursor: the last row of the previous page (absent on the first page).
  std::optional<std::pair<int64_t, std::string>> after;  // (update_time µs, id)
};

struct ListResult {
  std::vector<ProjectRecord> projects;
  bool more = false;
};

struct UpdateParams {
  Actor actor;
  std::string id;
  std::optional<std::string> display_name;
  std::optional<int64_t> expected_version;
  std::string request_id;
};

struct DeleteParams {
  Actor actor;
  std::string id;
  std::optional<int64_t> expected_version;
  std::string request_id;
  // Payloads announcing the deletion downstream (PurgeProjectMessages, CancelProjectRuns).
  std::string purge_payload;
  std::string cancel_payload;
};

// One piece of news of a run, as the orchestrator reports it (RecordLatestRun).
struct LatestRun {
  std::string project_id;
  std::string run_id;
  std::string state;               // "STATE_QUEUED", ...
  int64_t run_create_time_us = 0;  // microseconds since the epoch
  int64_t sequence = 0;
};

using RecordCallback = std::function<void(absl::StatusOr<ProjectRecord>)>;

class ProjectStore {
 public:
  // Open: a store over `db` (SOCI: lists, updates, deletes, run news) and a pipeline of its own
  // (libpq pipeline mode: the hot Get and Create, each one prepared statement), whose
  // connections `pipeline` describes (its statements are the store's).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ProjectStore>> Open(
      common::DbPool* db, common::PgPipeline::Options pipeline);
  // Stop: finishes the pipeline's statements in flight; the asynchronous calls then fail.
  void Stop();

  // PipelineStatements: the statements the store's pipeline prepares.
  static std::vector<common::PgStatement> PipelineStatements();

  // CreateAsync: inserts the project, its request-id record and the outbox row announcing
  // the initial prompt in one statement; a repeated request id yields the first project.
  // `done` runs on a pipeline thread.
  void CreateAsync(CreateParams params, RecordCallback done);
  // FindCreatedAsync: the project an earlier CreateAsync with params' actor and request id
  // made, as a repeat of it would answer; `absent` when there was none.
  void FindCreatedAsync(const CreateParams& params, absl::Status absent, RecordCallback done);
  // GetAsync: NOT_FOUND when unknown, deleted, or not visible to the actor.
  void GetAsync(const Actor& actor, const std::string& id, RecordCallback done);

  // Blocking forms of the two above, for callers that may block.
  [[nodiscard]] absl::StatusOr<ProjectRecord> Create(const CreateParams& params);
  [[nodiscard]] absl::StatusOr<ProjectRecord> Get(const Actor& actor, const std::string& id);
  [[nodiscard]] absl::StatusOr<ListResult> List(const ListParams& params);
  // Update: ABORTED when expected_version no longer matches.
  [[nodiscard]] absl::StatusOr<ProjectRecord> Update(const UpdateParams& params);
  [[nodiscard]] absl::Status Delete(const DeleteParams& params);
  // RecordLatestRuns: makes each project's newest news of `runs` its latest_run, unless the
  // project shows newer news already (a later run, or this run at a higher sequence); neither
  // the version (etag) nor the update time changes. Unknown and deleted projects are left
  // alone. One statement; answers how many projects changed.
  [[nodiscard]] absl::StatusOr<int> RecordLatestRuns(const std::vector<LatestRun>& runs);

 private:
  ProjectStore(common::DbPool* db, std::unique_ptr<common::PgPipeline> pipeline)
      : db_(db), pipeline_(std::move(pipeline)) {}
  std::string NewSlug();
  void CreateAttempt(std::shared_ptr<const CreateParams> params, int attempt, RecordCallback done);

  common::DbPool* const db_;
  const std::unique_ptr<common::PgPipeline> pipeline_;
  absl::Mutex rng_mu_;
  absl::BitGen rng_ ABSL_GUARDED_BY(rng_mu_);
};

}  // namespace qai::projects
